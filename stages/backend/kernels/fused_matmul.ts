/**
 * _FusedMatMul (matMul + bias + activation, what tf.fused.matMul and dense layers run) for the WASM
 * backend: tfjs-wasm's fused kernel computes the product in the same scalar loop as its BatchMatMul
 * whenever there is a transpose or a batch (BACKEND-NOTES.md: 1–2 GFLOP/s). Here the product runs
 * on our BatchMatMul's fast path (`fastBatchMatMul`: native BLAS, or XNNPACK on plain 2-D slices),
 * then the bias is added and the activation applied in place on the product's output on the heap.
 * Bias and PReLU weights broadcast against the output as in tfjs. Every activation tfjs fuses is
 * supported; non-float32 data and operands that do not broadcast keep the original kernel.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, f32, originalKernel, overrideWasmKernel, sizeOf } from "./_wasm.ts";
import { fastBatchMatMul } from "./batch_matmul.ts";

type Activation = "linear" | "relu" | "relu6" | "prelu" | "leakyrelu" | "sigmoid" | "elu";

/** Each activation tfjs fuses, with a per-element `alpha` (leaky ReLU's constant or PReLU's weight). */
const ACTIVATIONS: Record<Activation, (v: number, alpha: number) => number> = {
  linear: (v) => v,
  relu: (v) => v < 0 ? 0 : v,
  relu6: (v) => Math.min(Math.max(0, v), 6),
  prelu: (v, alpha) => v < 0 ? alpha * v : v,
  leakyrelu: (v, alpha) => v < 0 ? alpha * v : v,
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  elu: (v) => v >= 0 ? v : Math.exp(v) - 1,
};

const isActivation = (name: string): name is Activation => Object.hasOwn(ACTIVATIONS, name);

/** An operand broadcast against the output rows: its values, each row's offset, its last-axis stride. */
interface Broadcast {
  readonly values: Float32Array;
  readonly offsets: Int32Array;
  readonly step: number;
}

/**
 * Where each row (all but the last axis) of `outShape` [..., n] starts in an operand of `shape`
 * broadcast against it, and the operand's stride along the last axis (0 when broadcast); undefined
 * when it does not broadcast to exactly `outShape`.
 */
const rowsOf = (shape: number[], outShape: number[]): { offsets: Int32Array; step: number } | undefined => {
  const rank = outShape.length;
  if (shape.length > rank) return undefined;
  const padded = [...Array(rank - shape.length).fill(1), ...shape] as number[];
  if (padded.some((d, i) => d !== 1 && d !== outShape[i])) return undefined;
  // the operand's strides, 0 along its broadcast (size-1) axes
  const strides = padded.map((d, i) => d === 1 ? 0 : sizeOf(padded.slice(i + 1)));
  const rows = sizeOf(outShape.slice(0, -1)), offsets = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let rest = r, offset = 0;
    for (let axis = rank - 2; axis >= 0; axis--) {
      const d = outShape[axis] as number;
      offset += (rest % d) * (strides[axis] as number);
      rest = Math.floor(rest / d);
    }
    offsets[r] = offset;
  }
  return { offsets, step: strides[rank - 1] as number };
};

/** o [rows, n] += bias, in place. */
const addBias = (o: Float32Array, n: number, bias: Broadcast): void => {
  const { values, offsets, step } = bias;
  for (let r = 0; r < offsets.length; r++) {
    const row = r * n, at = offsets[r] as number;
    for (let j = 0; j < n; j++) o[row + j] = (o[row + j] as number) + (values[at + j * step] as number);
  }
};

/** o [rows, n] ← f(o, alpha), in place; alpha one constant or PReLU's broadcast weights. */
const activateRows = (
  o: Float32Array,
  n: number,
  f: (v: number, alpha: number) => number,
  alpha: Broadcast | number,
) => {
  const rows = n === 0 ? 0 : o.length / n;
  for (let r = 0; r < rows; r++) {
    const row = r * n;
    if (typeof alpha === "number") {
      for (let j = 0; j < n; j++) o[row + j] = f(o[row + j] as number, alpha);
    } else {
      const at = alpha.offsets[r] as number;
      for (let j = 0; j < n; j++) o[row + j] = f(o[row + j] as number, alpha.values[at + j * alpha.step] as number);
    }
  }
};

/** The product's output shape [batch…, m, n], as BatchMatMul computes it. */
const outShapeOf = (a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean): number[] => {
  const ra = a.shape.length, rb = b.shape.length;
  return [
    ...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)),
    a.shape[transposeA ? ra - 1 : ra - 2] as number,
    b.shape[transposeB ? rb - 2 : rb - 1] as number,
  ];
};

export const registerFusedMatMul = (): void => {
  const original = originalKernel(tf._FusedMatMul);
  if (original === undefined) throw new Error("tfjs-wasm has no _FusedMatMul kernel to wrap");
  overrideWasmKernel({
    ...original,
    kernelFunc: (args) => {
      const { a, b, bias, preluActivationWeights: weights } = args.inputs as {
        a: tf.TensorInfo;
        b: tf.TensorInfo;
        bias?: tf.TensorInfo;
        preluActivationWeights?: tf.TensorInfo;
      };
      const attrs = args.attrs ?? {};
      const activation = String(attrs.activation ?? "linear");
      const transposeA = attrs.transposeA === true, transposeB = attrs.transposeB === true;
      const floats = [a, b, bias, weights].every((t) => t === undefined || t.dtype === "float32");
      if (!floats || !isActivation(activation)) return original.kernelFunc(args);
      // checked before the product, so that a bad broadcast leaves no output behind
      const outShape = outShapeOf(a, b, transposeA, transposeB); // [batch…, m, n]
      const biasRows = bias === undefined ? undefined : rowsOf(bias.shape, outShape);
      const alphaRows = weights === undefined ? undefined : rowsOf(weights.shape, outShape);
      const unsupported = (bias !== undefined && biasRows === undefined) ||
        (activation === "prelu" && alphaRows === undefined);
      if (unsupported) return original.kernelFunc(args);
      const wasm = asWasm(args.backend);
      const out = fastBatchMatMul(args.backend, a, b, transposeA, transposeB); // [batch…, m, n]
      // views taken after the product: its allocations may have moved the heap
      const o = f32(wasm, out), n = outShape[outShape.length - 1] as number;
      if (bias !== undefined && biasRows !== undefined) addBias(o, n, { values: f32(wasm, bias), ...biasRows });
      if (activation === "linear") return out;
      const alpha = activation === "prelu" && weights !== undefined && alphaRows !== undefined
        ? { values: f32(wasm, weights), ...alphaRows }
        : Number(attrs.leakyreluAlpha ?? 0.2); // tfjs-core's default
      activateRows(o, n, ACTIVATIONS[activation], alpha);
      return out;
    },
  });
};
