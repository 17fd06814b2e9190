/**
 * BatchMatMul for the WASM backend on its fast path: XNNPACK's matmul is used by tfjs-wasm only for
 * a plain 2-D product without transposes (BACKEND-NOTES.md: any transpose or batch dimension falls
 * into a scalar loop at 1–2 GFLOP/s). This kernel transposes operands on the heap (memory-bound,
 * cheap) and runs the original kernel once per batch on plain 2-D slices. Broadcasting of a batch
 * of size 1 is supported, as in tfjs.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, f32, originalKernel, overrideWasmKernel, sizeOf } from "./_wasm.ts";
import type { Blas } from "./blas.ts";

let nativeBlas: Blas | undefined;

/** Routes every float32 product through `blas` (native sgemm), or back to the WASM path with `undefined`. */
export const useBlas = (blas: Blas | undefined): void => {
  nativeBlas = blas;
};

/** The native BLAS the products currently use, if any. */
export const activeBlas = (): Blas | undefined => nativeBlas;

/** Copies `src` [rows, cols] transposed into `dst` [cols, rows]. */
const transposeInto = (src: Float32Array, srcOffset: number, rows: number, cols: number, dst: Float32Array) => {
  const B = 32; // tile to stay in cache
  for (let r0 = 0; r0 < rows; r0 += B) {
    for (let c0 = 0; c0 < cols; c0 += B) {
      const r1 = Math.min(rows, r0 + B), c1 = Math.min(cols, c0 + B);
      for (let r = r0; r < r1; r++) {
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[srcOffset + r * cols + c] as number;
      }
    }
  }
};

/** Sizes of a (batched, broadcast) product op(A)[…, m, k] · op(B)[…, k, n]. */
interface Product {
  readonly m: number;
  readonly k: number;
  readonly n: number;
  readonly batchA: number;
  readonly batchB: number;
  readonly batch: number;
  readonly outShape: number[];
}

const productOf = (a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean): Product => {
  const ra = a.shape.length, rb = b.shape.length;
  const batchA = sizeOf(a.shape.slice(0, -2)), batchB = sizeOf(b.shape.slice(0, -2));
  const m = a.shape[transposeA ? ra - 1 : ra - 2] as number, k = a.shape[transposeA ? ra - 2 : ra - 1] as number;
  const n = b.shape[transposeB ? rb - 2 : rb - 1] as number;
  const broadcast = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return { m, k, n, batchA, batchB, batch: Math.max(batchA, batchB), outShape: [...broadcast, m, n] };
};

/** Every batch as one sgemm straight on the WASM heap (no copies, no transposes); p has no empty size. */
const blasProduct = (
  blas: Blas,
  wasm: ReturnType<typeof asWasm>,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  p: Product,
): tf.TensorInfo => {
  const { m, k, n } = p;
  const out = wasm.makeOutput(p.outShape, "float32");
  // views taken after the allocation: growing the heap detaches older ones
  const av = f32(wasm, a), bv = f32(wasm, b), cv = f32(wasm, out);
  for (let i = 0; i < p.batch; i++) {
    const ia = p.batchA === 1 ? 0 : i, ib = p.batchB === 1 ? 0 : i;
    blas.sgemm(
      transposeA,
      transposeB,
      m,
      n,
      k,
      av.subarray(ia * m * k, (ia + 1) * m * k),
      bv.subarray(ib * k * n, (ib + 1) * k * n),
      cv.subarray(i * m * n, (i + 1) * m * n),
    );
  }
  return out;
};

/** tfjs-wasm's own BatchMatMul (XNNPACK for plain 2-D products), captured when ours replaces it. */
let xnnpackMatMul: tf.KernelFunc | undefined;

/**
 * op(a)[…, m, k] · op(b)[…, k, n] → a new [...batch, m, n] output on the fastest path: the native
 * BLAS when loaded, else XNNPACK on plain 2-D slices. The body of our BatchMatMul, shared with
 * _FusedMatMul (fused_matmul.ts); needs `registerBatchMatMul` to have run.
 */
export const fastBatchMatMul = (
  backend: object,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): tf.TensorInfo => {
  const plain = xnnpackMatMul;
  if (plain === undefined) throw new Error("fastBatchMatMul: registerBatchMatMul has not run");
  const wasm = asWasm(backend);
  const p = productOf(a, b, transposeA, transposeB);
  const { m, k, n, batchA, batchB, batch } = p;
  if (m === 0 || n === 0 || k === 0) {
    // tfjs-wasm leaves the output of a k = 0 product uninitialised, and cblas rejects empty sizes
    const empty = wasm.makeOutput(p.outShape, a.dtype);
    wasm.typedArrayFromHeap(empty).fill(0);
    return empty;
  }
  if (nativeBlas !== undefined && a.dtype === "float32" && b.dtype === "float32") {
    return blasProduct(nativeBlas, wasm, a, b, transposeA, transposeB, p);
  }
  if (!transposeA && !transposeB && batchA === 1 && batchB === 1 || a.dtype !== "float32") {
    return plain({ inputs: { a, b }, backend, attrs: { transposeA, transposeB } }) as tf.TensorInfo;
  }
  const out = wasm.makeOutput(p.outShape, "float32");
  for (let i = 0; i < batch; i++) {
    // fresh buffers per batch: tfjs-wasm caches the packed right operand by tensor id
    const a2 = wasm.makeOutput([m, k], "float32"), b2 = wasm.makeOutput([k, n], "float32");
    // a slice [m, k] (transposed from [k, m] when asked); b slice [k, n]
    const ia = batchA === 1 ? 0 : i, ib = batchB === 1 ? 0 : i;
    if (transposeA) transposeInto(f32(wasm, a), ia * m * k, k, m, f32(wasm, a2));
    else f32(wasm, a2).set(f32(wasm, a).subarray(ia * m * k, (ia + 1) * m * k));
    if (transposeB) transposeInto(f32(wasm, b), ib * k * n, n, k, f32(wasm, b2));
    else f32(wasm, b2).set(f32(wasm, b).subarray(ib * k * n, (ib + 1) * k * n));
    const product = plain({
      inputs: { a: a2, b: b2 },
      backend,
      attrs: { transposeA: false, transposeB: false },
    }) as tf.TensorInfo;
    f32(wasm, out).set(f32(wasm, product), i * m * n);
    wasm.disposeData(product.dataId);
    wasm.disposeData(a2.dataId);
    wasm.disposeData(b2.dataId);
  }
  return out;
};

export const registerBatchMatMul = (): void => {
  const original = originalKernel(tf.BatchMatMul);
  if (original === undefined) throw new Error("tfjs-wasm has no BatchMatMul kernel to wrap");
  // captured once: a second registration must not take our own kernel for XNNPACK's
  xnnpackMatMul ??= original.kernelFunc;
  overrideWasmKernel({
    kernelName: tf.BatchMatMul,
    backendName: "wasm",
    ...(original.setupFunc === undefined ? {} : { setupFunc: original.setupFunc }),
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      return fastBatchMatMul(backend, a, b, attrs?.transposeA === true, attrs?.transposeB === true);
    },
  });
};
