/**
 * UnsortedSegmentSum for the WASM backend (missing in tfjs-wasm; it is the gradient of gather,
 * e.g. of embedding lookups): out[s, …] = Σ_{i: ids[i] = s} x[i, …], a scatter-add on the heap.
 * Ids outside [0, numSegments) are dropped, as TensorFlow does.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, f32, overrideWasmKernel, sizeOf } from "./_wasm.ts";

export const registerUnsortedSegmentSum = (): void =>
  overrideWasmKernel({
    kernelName: tf.UnsortedSegmentSum,
    backendName: "wasm",
    kernelFunc: ({ inputs, backend, attrs }) => {
      const wasm = asWasm(backend);
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const numSegments = Number(attrs?.numSegments);
      if (x.dtype !== "float32") {
        throw new Error(`UnsortedSegmentSum (wasm): only float32 data is supported, found ${x.dtype}`);
      }
      const rows = sizeOf(segmentIds.shape), inner = sizeOf(x.shape) / rows;
      const out = wasm.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], "float32");
      const o = f32(wasm, out), data = f32(wasm, x), ids = wasm.typedArrayFromHeap(segmentIds);
      o.fill(0);
      for (let i = 0; i < rows; i++) {
        const s = ids[i] as number;
        if (s < 0 || s >= numSegments) continue;
        for (let j = 0; j < inner; j++) {
          o[s * inner + j] = (o[s * inner + j] as number) + (data[i * inner + j] as number);
        }
      }
      return out;
    },
  });
