/**
 * Sum over leading axes for the WASM backend: tfjs-wasm reduces only innermost axes, so a sum over
 * axis 0 of [N, C] or axes [0, 1, 2] of [B, H, W, C] — every bias gradient — first transposes the
 * whole tensor to put those axes last (BACKEND-NOTES.md). Here the input, read as [outer, inner],
 * is summed row by row into one accumulator row: out[j] = Σ_i x[i·inner + j], a single sequential
 * pass, no transpose. The accumulator is float64 (as the `cpu` backend's sum) so that summing many
 * rows, e.g. B·H·W pixels, loses no precision. Float32 only, and only when some axis is kept;
 * every other sum (other axes, full reductions, other dtypes) keeps the original kernel.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, f32, originalKernel, overrideWasmKernel, sizeOf } from "./_wasm.ts";

/** How many leading axes `axis` reduces (sorted, normalised), or 0 when it is not exactly [0, …, k − 1]. */
const leadingAxes = (axis: number | number[] | null | undefined, shape: number[]): number => {
  if (axis === null || axis === undefined) return shape.length; // no axis: every axis
  const axes = tf.util.parseAxisParam(axis, shape).slice().sort((p, q) => p - q);
  return axes.every((a, i) => a === i) ? axes.length : 0;
};

/** x [outer, inner] → Σ over rows, as float64. */
const sumRows = (x: Float32Array, outer: number, inner: number): Float64Array => {
  const acc = new Float64Array(inner);
  for (let i = 0; i < outer; i++) {
    const row = i * inner;
    for (let j = 0; j < inner; j++) acc[j] = (acc[j] as number) + (x[row + j] as number);
  }
  return acc;
};

export const registerSum = (): void => {
  const original = originalKernel(tf.Sum);
  if (original === undefined) throw new Error("tfjs-wasm has no Sum kernel to wrap");
  overrideWasmKernel({
    ...original,
    kernelFunc: (args) => {
      const { x } = args.inputs as { x: tf.TensorInfo };
      const axis = args.attrs?.axis as number | number[] | null | undefined;
      const k = x.dtype === "float32" ? leadingAxes(axis, x.shape) : 0;
      // k = rank is a full reduction: the original needs no transpose there
      if (k === 0 || k === x.shape.length) return original.kernelFunc(args);
      const wasm = asWasm(args.backend);
      const kept = x.shape.slice(k); // [inner…]
      const shape = args.attrs?.keepDims === true ? [...x.shape.slice(0, k).map(() => 1), ...kept] : kept;
      const acc = sumRows(f32(wasm, x), sizeOf(x.shape.slice(0, k)), sizeOf(kept));
      const out = wasm.makeOutput(shape, "float32");
      f32(wasm, out).set(acc);
      return out;
    },
  });
};
