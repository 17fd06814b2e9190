/**
 * GatherV2 for the WASM backend as a plain copy loop on the heap: tfjs-wasm's kernel spends
 * ≈ 12 ns per element (38 ms for the 3 M-element point samples of one Mask2Former loss), while
 * the gather is a memory copy — rows of `inner` contiguous values when gathering along an outer
 * axis. Supports batchDims = 0 and float32/int32 data; anything else keeps the original kernel.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, originalKernel, overrideWasmKernel, sizeOf } from "./_wasm.ts";

export const registerGather = (): void => {
  const original = originalKernel(tf.GatherV2);
  if (original === undefined) throw new Error("tfjs-wasm has no GatherV2 kernel to wrap");
  overrideWasmKernel({
    kernelName: tf.GatherV2,
    backendName: "wasm",
    ...(original.setupFunc === undefined ? {} : { setupFunc: original.setupFunc }),
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const { x, indices } = inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
      const batchDims = Number(attrs?.batchDims ?? 0);
      if (batchDims !== 0 || (x.dtype !== "float32" && x.dtype !== "int32") || indices.dtype !== "int32") {
        return original.kernelFunc(args);
      }
      const wasm = asWasm(backend);
      const axis = tf.util.parseAxisParam(Number(attrs?.axis ?? 0), x.shape)[0] as number;
      const outer = sizeOf(x.shape.slice(0, axis)),
        dim = x.shape[axis] as number,
        inner = sizeOf(x.shape.slice(axis + 1));
      const count = sizeOf(indices.shape);
      const out = wasm.makeOutput([...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)], x.dtype);
      const src = wasm.typedArrayFromHeap(x),
        idx = wasm.typedArrayFromHeap(indices),
        dst = wasm.typedArrayFromHeap(out);
      for (let j = 0; j < count; j++) {
        const i = idx[j] as number;
        if (i < 0 || i >= dim) throw new RangeError(`GatherV2: index ${i} is not in [0, ${dim})`);
      }
      for (let o = 0; o < outer; o++) {
        const srcBase = o * dim * inner, dstBase = o * count * inner;
        if (inner === 1) {
          for (let j = 0; j < count; j++) dst[dstBase + j] = src[srcBase + (idx[j] as number)] as number;
        } else {
          for (let j = 0; j < count; j++) {
            const from = srcBase + (idx[j] as number) * inner;
            dst.set(src.subarray(from, from + inner), dstBase + j * inner);
          }
        }
      }
      return out;
    },
  });
};
