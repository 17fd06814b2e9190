/**
 * Identity for the WASM backend without the copy: tfjs-wasm allocates a new buffer and copies the
 * whole tensor, and gradient bookkeeping calls Identity on every upstream gradient (≈ 1,700 calls
 * a training step). Tensors are immutable and every WASM kernel writes only to outputs it
 * allocates, so the output can share the input's buffer with its reference count raised — what
 * tfjs-wasm's own Reshape and the `cpu` backend's Identity do. Strings keep the original kernel.
 */
import * as tf from "@tensorflow/tfjs";
import { originalKernel, overrideWasmKernel } from "./_wasm.ts";

interface RefCounting {
  incRef(dataId: tf.TensorInfo["dataId"]): void;
}

export const registerIdentity = (): void => {
  const original = originalKernel(tf.Identity);
  if (original === undefined) throw new Error("tfjs-wasm has no Identity kernel to wrap");
  overrideWasmKernel({
    ...original,
    kernelFunc: (args) => {
      const { x } = args.inputs as { x: tf.TensorInfo };
      const backend = args.backend as Partial<RefCounting>;
      if (x.dtype === "string" || typeof backend.incRef !== "function") return original.kernelFunc(args);
      backend.incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
};
