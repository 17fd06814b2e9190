/**
 * Conv2DBackpropInput for the WASM backend at stride 1: tfjs-wasm's own kernel is a scalar loop
 * (≈ 10× slower than the forward conv, BACKEND-NOTES.md). At stride 1 the input gradient is a plain
 * convolution of dy, padded by (k − 1 − pad) on each side, with the filter rotated by 180° and its
 * in/out channels swapped — which runs on the fast XNNPACK Conv2D. Other strides keep the original.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, f32, originalKernel, overrideWasmKernel } from "./_wasm.ts";

export const registerConv2DBackpropInput = (): void => {
  const original = originalKernel(tf.Conv2DBackpropInput);
  if (original === undefined) throw new Error("tfjs-wasm has no Conv2DBackpropInput kernel to wrap");
  overrideWasmKernel({
    kernelName: tf.Conv2DBackpropInput,
    backendName: "wasm",
    ...(original.setupFunc === undefined ? {} : { setupFunc: original.setupFunc }),
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const wasm = asWasm(backend);
      const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
      const a = attrs as unknown as tf.Conv2DBackpropInputAttrs;
      const [sh, sw] = typeof a.strides === "number" ? [a.strides, a.strides] : a.strides;
      if (sh !== 1 || sw !== 1 || a.dataFormat !== "NHWC") return original.kernelFunc(args);
      const [kh, kw] = filter.shape as [number, number, number, number];
      const info = tf.backend_util.computeConv2DInfo(
        a.inputShape,
        filter.shape as [number, number, number, number],
        1,
        1,
        a.pad,
        a.dimRoundingMode,
      );
      const { top, left, bottom, right } = info.padInfo;
      const result = tf.tidy(() => {
        // copies: tensors made from the kernel's TensorInfos would share (and free) the caller's data
        const g = tf.tensor4d(f32(wasm, dy).slice(), dy.shape as [number, number, number, number]); // [B, OH, OW, Co]
        const w = tf.tensor4d(f32(wasm, filter).slice(), filter.shape as [number, number, number, number]); // [KH, KW, Ci, Co]
        const rotated = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D; // [KH, KW, Co, Ci]
        const padded = tf.pad(g, [[0, 0], [kh - 1 - top, kh - 1 - bottom], [kw - 1 - left, kw - 1 - right], [0, 0]]); // [B, OH + KH − 1 + …, …, Co]
        return tf.conv2d(padded as tf.Tensor4D, rotated, 1, "valid"); // [B, H, W, Ci]
      });
      const out = wasm.makeOutput([...a.inputShape], "float32");
      f32(wasm, out).set(result.dataSync() as Float32Array);
      result.dispose();
      return out;
    },
  });
};
