/**
 * TopK for the WASM backend by selection, not sorting: the importance sampling of the Mask2Former
 * loss keeps the 3,072 most uncertain of 12,288 candidate points per mask (losses.ts), where
 * tfjs-wasm's kernel takes ≈ 1 ms a row. Per row: find the k-th largest value by quickselect on a
 * copy (O(n)), collect the k winners, ties at the threshold by lowest index, and sort only those.
 * Same contract as tfjs: values descending, equal values by ascending index. float32 rows without
 * NaN only; anything else keeps the original kernel.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, originalKernel, overrideWasmKernel, sizeOf } from "./_wasm.ts";

/** Rearranges `a` so that a[k] holds the value of rank k in descending order; returns it. */
const selectDescending = (a: Float32Array, k: number): number => {
  let lo = 0, hi = a.length - 1;
  while (hi > lo) {
    const mid = (lo + hi) >> 1;
    // median of three as the pivot, against sorted and constant inputs
    const x = a[lo] as number, y = a[mid] as number, z = a[hi] as number;
    const pivot = x > y ? (y > z ? y : x > z ? z : x) : (x > z ? x : y > z ? z : y);
    let i = lo, j = hi;
    while (i <= j) {
      while ((a[i] as number) > pivot) i++;
      while ((a[j] as number) < pivot) j--;
      if (i <= j) {
        const t = a[i] as number;
        a[i++] = a[j] as number;
        a[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return a[k] as number;
};

/** The k largest of `row` as [values, indices]: descending, equal values by ascending index. */
export const topKRow = (row: Float32Array, k: number): [Float32Array, Int32Array] => {
  const n = row.length;
  const picked = new Int32Array(k);
  if (k > 0) {
    const threshold = selectDescending(row.slice(), k - 1);
    let above = 0;
    for (let i = 0; i < n; i++) if ((row[i] as number) > threshold) above++;
    let p = 0, ties = k - above;
    for (let i = 0; i < n && p < k; i++) {
      const v = row[i] as number;
      if (v > threshold) picked[p++] = i;
      else if (v === threshold && ties > 0) {
        picked[p++] = i;
        ties--;
      }
    }
    picked.sort((a, b) => (row[b] as number) - (row[a] as number) || a - b);
  }
  return [Float32Array.from(picked, (i) => row[i] as number), picked];
};

export const registerTopK = (): void => {
  const original = originalKernel(tf.TopK);
  if (original === undefined) throw new Error("tfjs-wasm has no TopK kernel to wrap");
  overrideWasmKernel({
    ...original,
    kernelFunc: (args) => {
      const { x } = args.inputs as { x: tf.TensorInfo };
      const k = Number(args.attrs?.k ?? 1);
      if (x.dtype !== "float32" || x.shape.length === 0) return original.kernelFunc(args);
      const wasm = asWasm(args.backend);
      const n = x.shape[x.shape.length - 1] as number, rows = sizeOf(x.shape.slice(0, -1));
      const data = wasm.typedArrayFromHeap(x) as Float32Array;
      for (let i = 0; i < data.length; i++) if (Number.isNaN(data[i])) return original.kernelFunc(args);
      const shape = [...x.shape.slice(0, -1), k];
      const values = wasm.makeOutput(shape, "float32"), indices = wasm.makeOutput(shape, "int32");
      for (let r = 0; r < rows; r++) {
        // views re-read each row: the heap may have moved since the outputs were made
        const row = (wasm.typedArrayFromHeap(x) as Float32Array).subarray(r * n, (r + 1) * n);
        const [v, i] = topKRow(row, k);
        (wasm.typedArrayFromHeap(values) as Float32Array).set(v, r * k);
        (wasm.typedArrayFromHeap(indices) as Int32Array).set(i, r * k);
      }
      return [values, indices];
    },
  });
};
