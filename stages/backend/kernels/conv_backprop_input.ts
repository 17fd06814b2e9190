/**
 * Conv2DBackpropInput for the WASM backend at stride 1: tfjs-wasm's own kernel is a scalar loop
 * (≈ 10× slower than the forward conv, BACKEND-NOTES.md). At stride 1 the input gradient is a plain
 * convolution of dy, padded by (k − 1 − pad) on each side, with the filter rotated by 180° and its
 * in/out channels swapped — which runs on the fast XNNPACK Conv2D, or straight on the native BLAS
 * (shifted GEMM, conv_blas.ts) when it is loaded. With the native BLAS, 1×1 convs are one product
 * (dy · Wᵀ) and strided ones one product of the patch gradients added back to their pixels
 * (col2im); a conv too large for that spreads dy out by the stride. Without BLAS, other strides keep
 * the original.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, f32, originalKernel, outputFrom, overrideWasmKernel, pairOf } from "./_wasm.ts";
import { activeBlas } from "./batch_matmul.ts";
import { conv2dInputGradIm2col, conv2dStride1, isIm2col, isPointwise } from "./conv_blas.ts";
import { convGeometry } from "./conv2d.ts";

/** dy [B, OH, OW, C] → [B, (OH − 1)·sh + 1, (OW − 1)·sw + 1, C] with zeros between the pixels. */
const dilate = (dy: Float32Array, b: number, oh: number, ow: number, c: number, sh: number, sw: number) => {
  const h = (oh - 1) * sh + 1, w = (ow - 1) * sw + 1;
  const out = new Float32Array(b * h * w * c);
  for (let n = 0; n < b; n++) {
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        const src = ((n * oh + y) * ow + x) * c;
        out.set(dy.subarray(src, src + c), ((n * h + y * sh) * w + x * sw) * c);
      }
    }
  }
  return out;
};

/** [KH, KW, Ci, Co] → rotated by 180° with in/out swapped: [KH, KW, Co, Ci]. */
const rotateFilter = (w: Float32Array, kh: number, kw: number, ci: number, co: number): Float32Array => {
  const r = new Float32Array(w.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      const src = ((kh - 1 - y) * kw + (kw - 1 - x)) * ci * co, dst = (y * kw + x) * co * ci;
      for (let i = 0; i < ci; i++) {
        for (let o = 0; o < co; o++) r[dst + o * ci + i] = w[src + i * co + o] as number;
      }
    }
  }
  return r;
};

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
      const [sh, sw] = pairOf(a.strides);
      if (a.dataFormat !== "NHWC") return original.kernelFunc(args);
      const [kh, kw] = filter.shape as [number, number, number, number];
      const info = tf.backend_util.computeConv2DInfo(
        a.inputShape,
        filter.shape as [number, number, number, number],
        [sh, sw],
        1,
        a.pad,
        a.dimRoundingMode,
      );
      const { top, left, bottom, right } = info.padInfo;
      const blas = activeBlas();
      const fast = blas === undefined || dy.dtype !== "float32"
        ? undefined
        : convGeometry(a.inputShape, filter.shape as [number, number, number, number], a);
      if (fast !== undefined && blas !== undefined && isPointwise(fast)) {
        // 1×1: dx [B·H·W, Ci] = dy · Wᵀ, straight on the heap
        const out = wasm.makeOutput([...a.inputShape], "float32");
        const rows = fast.batch * fast.inHeight * fast.inWidth;
        blas.sgemm(
          false,
          true,
          rows,
          fast.inChannels,
          fast.outChannels,
          f32(wasm, dy),
          f32(wasm, filter),
          f32(wasm, out),
        );
        return out;
      }
      if (fast !== undefined && blas !== undefined && isIm2col(fast)) {
        // strided: patch gradients in one product, added back to their pixels (col2im)
        return outputFrom(wasm, [...a.inputShape], conv2dInputGradIm2col(blas, f32(wasm, dy), f32(wasm, filter), fast));
      }
      if (blas !== undefined && dy.dtype === "float32") {
        // any stride: dy with (stride − 1) zeros between its pixels, then the stride-1 rule
        const [, , ci, co] = filter.shape as [number, number, number, number];
        const [batch, height, width] = a.inputShape;
        const [oh, ow] = [dy.shape[1] as number, dy.shape[2] as number];
        const spread = sh === 1 && sw === 1 ? f32(wasm, dy) : dilate(f32(wasm, dy), batch, oh, ow, co, sh, sw);
        const dx = conv2dStride1(blas, spread, rotateFilter(f32(wasm, filter), kh, kw, ci, co), {
          batch,
          inHeight: (oh - 1) * sh + 1,
          inWidth: (ow - 1) * sw + 1,
          inChannels: co,
          outHeight: height,
          outWidth: width,
          outChannels: ci,
          filterHeight: kh,
          filterWidth: kw,
          top: kh - 1 - top,
          left: kw - 1 - left,
        }); // [B, H, W, Ci]
        return outputFrom(wasm, [...a.inputShape], dx);
      }
      if (sh !== 1 || sw !== 1) return original.kernelFunc(args);
      const result = tf.tidy(() => {
        // copies: tensors made from the kernel's TensorInfos would share (and free) the caller's data
        const g = tf.tensor4d(f32(wasm, dy).slice(), dy.shape as [number, number, number, number]); // [B, OH, OW, Co]
        const w = tf.tensor4d(f32(wasm, filter).slice(), filter.shape as [number, number, number, number]); // [KH, KW, Ci, Co]
        const rotated = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D; // [KH, KW, Co, Ci]
        const padded = tf.pad(g, [[0, 0], [kh - 1 - top, kh - 1 - bottom], [kw - 1 - left, kw - 1 - right], [0, 0]]); // [B, OH + KH − 1 + …, …, Co]
        return tf.conv2d(padded as tf.Tensor4D, rotated, 1, "valid"); // [B, H, W, Ci]
      });
      const out = outputFrom(wasm, [...a.inputShape], result.dataSync() as Float32Array);
      result.dispose();
      return out;
    },
  });
};
