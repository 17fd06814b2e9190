/**
 * Transpose for the WASM backend as copy loops on the heap. tfjs-wasm's kernel moves one element
 * at a time through generic index arithmetic, ≈ 35 ns an element for the 5-D permutations of
 * attention (`[B, T, 3, heads, d] → [3, B, heads, T, d]`: ≈ 30 ms each, 0.16 s of a training step).
 * Here axes of size 1 are dropped and axes that stay neighbours are merged first; when the last
 * axis stays last (attention's head dimension), the copy moves whole contiguous runs, otherwise it
 * walks the output in order and the input by strides. Any dtype stored as 4-byte or 1-byte typed
 * arrays (float32, int32, bool); other dtypes keep the original kernel.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, originalKernel, overrideWasmKernel } from "./_wasm.ts";

/**
 * `shape` and `perm` with axes of size 1 dropped and runs of input axes that stay adjacent and in
 * order merged into one: the same permutation of the same data, at the smallest rank.
 */
export const simplifyPermutation = (
  shape: ReadonlyArray<number>,
  perm: ReadonlyArray<number>,
): { shape: number[]; perm: number[] } => {
  const kept = perm.filter((a) => shape[a] !== 1); // output order, input axis ids
  // runs of consecutive input axes, in output order
  const runs: number[][] = [];
  for (const a of kept) {
    const last = runs.at(-1);
    const prev = last?.at(-1);
    // axes of size 1 between two kept axes do not break adjacency: skip them when comparing
    if (last !== undefined && prev !== undefined && nextKept(shape, prev) === a) last.push(a);
    else runs.push([a]);
  }
  const byInput = runs.map((r, i) => ({ first: r[0] as number, i })).sort((p, q) => p.first - q.first);
  const inputIndex = new Array<number>(runs.length);
  byInput.forEach(({ i }, j) => inputIndex[i] = j);
  return {
    shape: byInput.map(({ i }) => (runs[i] as number[]).reduce((s, a) => s * (shape[a] as number), 1)),
    perm: runs.map((_, i) => inputIndex[i] as number),
  };
};

/** The next input axis after `a` whose size is not 1. */
const nextKept = (shape: ReadonlyArray<number>, a: number): number => {
  let b = a + 1;
  while (b < shape.length && shape[b] === 1) b++;
  return b;
};

/** `dst` ← `src` [shape] permuted by `perm` (already simplified). */
export const permuteInto = (
  src: tf.TypedArray,
  dst: tf.TypedArray,
  shape: ReadonlyArray<number>,
  perm: ReadonlyArray<number>,
): void => {
  const r = shape.length;
  if (r <= 1) {
    dst.set(src);
    return;
  }
  const inStride = new Array<number>(r);
  for (let j = r - 1, s = 1; j >= 0; j--) [inStride[j], s] = [s, s * (shape[j] as number)];
  const outShape = perm.map((a) => shape[a] as number);
  const stride = perm.map((a) => inStride[a] as number); // input step per output axis
  // the last output axis is copied as one run: contiguous when it is the last input axis too
  const n = outShape[r - 1] as number, step = stride[r - 1] as number;
  const outer = outShape.slice(0, r - 1).reduce((a, b) => a * b, 1);
  const index = new Array<number>(r - 1).fill(0);
  let from = 0, to = 0;
  for (let o = 0; o < outer; o++) {
    if (step === 1 && n >= 16) dst.set(src.subarray(from, from + n), to);
    else for (let k = 0, f = from; k < n; k++, f += step) dst[to + k] = src[f] as number;
    to += n;
    // odometer over the outer output axes, keeping `from` in step
    for (let a = r - 2; a >= 0; a--) {
      from += stride[a] as number;
      if (++(index[a] as number) < (outShape[a] as number)) break;
      from -= (stride[a] as number) * (outShape[a] as number);
      index[a] = 0;
    }
  }
};

export const registerTranspose = (): void => {
  const original = originalKernel(tf.Transpose);
  if (original === undefined) throw new Error("tfjs-wasm has no Transpose kernel to wrap");
  overrideWasmKernel({
    ...original,
    kernelFunc: (args) => {
      const { x } = args.inputs as { x: tf.TensorInfo };
      const perm = args.attrs?.perm as number[];
      if (x.dtype !== "float32" && x.dtype !== "int32" && x.dtype !== "bool") return original.kernelFunc(args);
      const wasm = asWasm(args.backend);
      const out = wasm.makeOutput(perm.map((a) => x.shape[a] as number), x.dtype);
      const simple = simplifyPermutation(x.shape, perm);
      permuteInto(wasm.typedArrayFromHeap(x), wasm.typedArrayFromHeap(out), simple.shape, simple.perm);
      return out;
    },
  });
};
