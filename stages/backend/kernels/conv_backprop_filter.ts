/**
 * Conv2DBackpropFilter for the WASM backend (tfjs-wasm has none, so conv layers cannot train).
 *
 * "Conv trick" (BACKEND-NOTES.md: 81 vs 170 ms im2col for 3×3 s1): the filter gradient
 *   dW[kh, kw, ci, co] = Σ_{b, oh, ow} xpad[b, oh·sh + kh, ow·sw + kw, ci] · dy[b, oh, ow, co]
 * is itself a convolution of the padded input, read as [Ci, Hp, Wp, B] (batch as channels), with
 * dy, read as a filter [OH, OW, B, Co], dilated by the stride — which runs on the fast XNNPACK
 * Conv2D kernel. The result [Ci, KH', KW', Co] is cropped to KH×KW and transposed to HWIO.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, f32, outputFrom, overrideWasmKernel } from "./_wasm.ts";
import { activeBlas } from "./batch_matmul.ts";
import { conv2dFilterGradIm2col, conv2dFilterGradStride1, isIm2col, isPointwise, isShifted } from "./conv_blas.ts";
import { convGeometry } from "./conv2d.ts";

export const registerConv2DBackpropFilter = (): void =>
  overrideWasmKernel({
    kernelName: tf.Conv2DBackpropFilter,
    backendName: "wasm",
    kernelFunc: ({ inputs, backend, attrs }) => {
      const wasm = asWasm(backend);
      const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
      if (a.dataFormat !== "NHWC") {
        throw new Error(`Conv2DBackpropFilter (wasm): only NHWC is supported, found ${a.dataFormat}`);
      }
      const [kh, kw, ci, co] = a.filterShape;
      const blas = activeBlas();
      const g = blas === undefined || x.dtype !== "float32" ? undefined : convGeometry(x.shape, a.filterShape, a);
      if (g !== undefined && blas !== undefined) {
        if (isPointwise(g)) {
          // 1×1: dW [Ci, Co] = xᵀ · dy over the pixels, straight on the heap
          const out = wasm.makeOutput([kh, kw, ci, co], "float32");
          const rows = g.batch * g.outHeight * g.outWidth;
          blas.sgemm(true, false, ci, co, rows, f32(wasm, x), f32(wasm, dy), f32(wasm, out));
          return out;
        }
        // stride 1: shifted matrix products; strided: one product over the gathered patches
        if (isShifted(g)) {
          return outputFrom(wasm, [kh, kw, ci, co], conv2dFilterGradStride1(blas, f32(wasm, x), f32(wasm, dy), g));
        }
        if (isIm2col(g)) {
          return outputFrom(wasm, [kh, kw, ci, co], conv2dFilterGradIm2col(blas, f32(wasm, x), f32(wasm, dy), g));
        }
      }
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        a.filterShape,
        a.strides,
        1,
        a.pad,
        a.dimRoundingMode,
      );
      const { top, left, bottom, right } = info.padInfo;
      const result = tf.tidy(() => {
        // copies of the inputs: a tensor made from the kernel's own TensorInfo would share its data,
        // and disposing it would free the caller's input
        const xt = tf.tensor4d(f32(wasm, x).slice(), x.shape as [number, number, number, number]); // [B, H, W, Ci]
        const dyt = tf.tensor4d(f32(wasm, dy).slice(), dy.shape as [number, number, number, number]); // [B, OH, OW, Co]
        const xpad = tf.pad(xt, [[0, 0], [top, Math.max(0, bottom)], [left, Math.max(0, right)], [0, 0]]); // [B, Hp, Wp, Ci]
        const input = tf.transpose(xpad, [3, 1, 2, 0]) as tf.Tensor4D; // [Ci, Hp, Wp, B]
        const filter = tf.transpose(dyt, [1, 2, 0, 3]) as tf.Tensor4D; // [OH, OW, B, Co]
        const conv = tf.conv2d(input, filter, 1, "valid", "NHWC", [info.strideHeight, info.strideWidth]); // [Ci, KH', KW', Co]
        const cropped = tf.slice(conv, [0, 0, 0, 0], [ci, kh, kw, co]); // [Ci, KH, KW, Co]
        return tf.transpose(cropped, [1, 2, 0, 3]); // [KH, KW, Ci, Co]
      });
      // copy into a kernel-owned output so that no intermediate tensor outlives the kernel
      const out = outputFrom(wasm, [kh, kw, ci, co], result.dataSync() as Float32Array);
      result.dispose();
      return out;
    },
  });
