/**
 * The few internals of the tfjs WASM backend that our kernels touch: tensors live on the WASM heap
 * (`typedArrayFromHeap` is a view, valid until the heap grows), `makeOutput` allocates one, and
 * `disposeData` frees it. Kept in one place so a tfjs upgrade breaks here, visibly.
 */
import * as tf from "@tensorflow/tfjs";

/** The part of tfjs-backend-wasm's BackendWasm that the kernels use. */
export interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
  disposeData(dataId: tf.TensorInfo["dataId"]): boolean;
}

/** The backend handed to a kernel, checked to be tfjs-wasm's. */
export const asWasm = (backend: object): WasmBackend => {
  const b = backend as Partial<WasmBackend>;
  if (
    typeof b.makeOutput !== "function" || typeof b.typedArrayFromHeap !== "function" ||
    typeof b.disposeData !== "function"
  ) {
    throw new Error("kernel called on a backend that is not tfjs-wasm");
  }
  return b as WasmBackend;
};

/** The float32 data of a tensor, as a heap view (re-read it after any allocation: the heap may move). */
export const f32 = (backend: WasmBackend, info: tf.TensorInfo): Float32Array =>
  backend.typedArrayFromHeap(info) as Float32Array;

/** The kernel currently registered for (name, backend), to be called from an override. */
export const originalKernel = (name: string, backendName = "wasm"): tf.KernelConfig | undefined => {
  const k = tf.getKernel(name, backendName);
  return k === undefined ? undefined : { ...k };
};

/** Replaces the kernel registered for (name, "wasm"). */
export const overrideWasmKernel = (config: tf.KernelConfig): void => {
  if (tf.getKernel(config.kernelName, "wasm") !== undefined) tf.unregisterKernel(config.kernelName, "wasm");
  tf.registerKernel(config);
};

/** A new float32 kernel output of `shape` holding a copy of `values` (computed off the heap). */
export const outputFrom = (backend: WasmBackend, shape: number[], values: Float32Array): tf.TensorInfo => {
  const out = backend.makeOutput(shape, "float32");
  f32(backend, out).set(values);
  return out;
};

/** A kernel attribute given as one number or a (height, width) pair, as a pair. */
export const pairOf = (v: number | [number, number] | undefined): [number, number] =>
  v === undefined ? [1, 1] : typeof v === "number" ? [v, v] : v;

export const sizeOf = (shape: ReadonlyArray<number>): number => shape.reduce((a, b) => a * b, 1);
