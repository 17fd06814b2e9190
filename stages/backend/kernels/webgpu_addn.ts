/**
 * AddN on `webgpu` for any number of inputs. tfjs-webgpu binds every input of AddN as a storage
 * buffer of one shader; past the device's `maxStorageBuffersPerShaderStage` (8 by default, on
 * lavapipe too: 7 inputs and the output) the pipeline is invalid and the result is silently wrong
 * (measured: the sum of 8 tensors came back as the first one). This wrapper sums in chunks that fit,
 * with tfjs-webgpu's own kernel.
 */
import * as tf from "@tensorflow/tfjs";

interface WebGpuBackendLike extends tf.KernelBackend {
  readonly device: { readonly limits: { readonly maxStorageBuffersPerShaderStage: number } };
}

let registered = false;

/** Replaces tfjs-webgpu's AddN by a chunked one (once; after the backend is set). */
export const registerWebGpuAddN = (): void => {
  if (registered) return;
  const original = tf.getKernel("AddN", "webgpu");
  if (original === undefined) return;
  registered = true;
  tf.unregisterKernel("AddN", "webgpu");
  tf.registerKernel({
    kernelName: "AddN",
    backendName: "webgpu",
    kernelFunc: ({ inputs, backend, attrs }) => {
      const gpu = backend as WebGpuBackendLike;
      const chunk = Math.max(2, gpu.device.limits.maxStorageBuffersPerShaderStage - 1); // one binding is the output
      let list = Object.values(inputs) as tf.TensorInfo[];
      const partials: tf.TensorInfo[] = [];
      const sum = (part: tf.TensorInfo[]) =>
        original.kernelFunc({
          inputs: part as unknown as tf.NamedTensorInfoMap,
          backend,
          ...(attrs === undefined ? {} : { attrs }),
        }) as tf.TensorInfo;
      while (list.length > chunk) {
        const next: tf.TensorInfo[] = [];
        for (let i = 0; i < list.length; i += chunk) {
          const part = list.slice(i, i + chunk);
          if (part.length === 1) next.push(part[0] as tf.TensorInfo);
          else {
            const out = sum(part);
            partials.push(out);
            next.push(out);
          }
        }
        list = next;
      }
      const result = sum(list);
      // the partial sums are ours: tfjs-webgpu frees a buffer only once queued work no longer uses it
      for (const t of partials) gpu.disposeData(t.dataId);
      return result;
    },
  });
};
