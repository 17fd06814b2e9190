/**
 * A new float32 tensor whose values plain JavaScript writes, in place where the backend keeps
 * tensors in memory JavaScript can see (tfjs-wasm's heap); elsewhere through `tf.tensor`.
 *
 * Why: the loss's point-sampling gradient is a whole [B·Q, h, w] tensor (≈ 16 MB a decoder layer)
 * that is zero but for the sampled taps; built in a JS array it costs fresh pages, then a copy
 * into the heap.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, f32 } from "./kernels/_wasm.ts";

/** The kernel behind `tensorFrom` on wasm: an output written in place by a callback. */
export const WRITE_KERNEL = "IvaanWrite";

/** A new float32 tensor of `shape`: zeros, then `write` fills in its values (in place on wasm). */
export const tensorFrom = (shape: number[], write: (values: Float32Array) => void): tf.Tensor => {
  if (tf.getBackend() === "wasm" && tf.getKernel(WRITE_KERNEL, "wasm") !== undefined) {
    return tf.engine().runKernel(WRITE_KERNEL, {}, { shape, write } as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  const values = new Float32Array(tf.util.sizeFromShape(shape));
  write(values);
  return tf.tensor(values, shape);
};

/** Registers WRITE_KERNEL for wasm (idempotent). */
export const registerWriteKernel = (): void => {
  if (tf.getKernel(WRITE_KERNEL, "wasm") !== undefined) return;
  tf.registerKernel({
    kernelName: WRITE_KERNEL,
    backendName: "wasm",
    kernelFunc: ({ backend, attrs }) => {
      const { shape, write } = attrs as unknown as { shape: number[]; write: (values: Float32Array) => void };
      const wasm = asWasm(backend);
      const out = wasm.makeOutput(shape, "float32");
      const values = f32(wasm, out); // a heap view: valid while nothing else is allocated
      values.fill(0);
      write(values);
      return out;
    },
  });
};
