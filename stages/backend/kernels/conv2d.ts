/**
 * Conv2D for the WASM backend: stride-1, undilated NHWC convolutions with at least 16 input channels
 * run as shifted matrix products on the native BLAS when it is loaded (conv_blas.ts); everything
 * else — strided stems, the 16×16 patch embedding, few-channel convs, no BLAS — keeps tfjs-wasm's
 * XNNPACK kernel.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, f32, originalKernel, outputFrom, overrideWasmKernel, pairOf } from "./_wasm.ts";
import { activeBlas } from "./batch_matmul.ts";
import { type Conv2DGeometry, conv2dStride1 } from "./conv_blas.ts";

/** The stride-1 geometry of a conv, or undefined when the shifted-GEMM path does not apply. */
export const stride1Geometry = (
  xShape: number[],
  filterShape: [number, number, number, number],
  attrs: {
    strides: number | [number, number];
    dilations?: number | [number, number];
    pad: tf.Conv2DAttrs["pad"];
    dataFormat?: string;
    dimRoundingMode?: tf.Conv2DAttrs["dimRoundingMode"];
  },
): Conv2DGeometry | undefined => {
  const [sh, sw] = pairOf(attrs.strides), [dh, dw] = pairOf(attrs.dilations);
  const [kh, kw, ci, co] = filterShape;
  if (sh !== 1 || sw !== 1 || dh !== 1 || dw !== 1 || (attrs.dataFormat ?? "NHWC") !== "NHWC") return undefined;
  if (kh * kw > 49 || xShape.length !== 4) return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape,
    1,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  return {
    batch: xShape[0] as number,
    inHeight: xShape[1] as number,
    inWidth: xShape[2] as number,
    inChannels: ci,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: co,
    filterHeight: kh,
    filterWidth: kw,
    top: info.padInfo.top,
    left: info.padInfo.left,
  };
};

export const registerConv2D = (): void => {
  const original = originalKernel(tf.Conv2D);
  if (original === undefined) throw new Error("tfjs-wasm has no Conv2D kernel to wrap");
  overrideWasmKernel({
    ...original,
    kernelFunc: (args) => {
      const blas = activeBlas();
      const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
      const a = args.attrs as unknown as tf.Conv2DAttrs;
      const g = blas === undefined || x.dtype !== "float32" || (filter.shape[2] as number) < 16
        ? undefined
        : stride1Geometry(x.shape, filter.shape as [number, number, number, number], a);
      if (g === undefined || blas === undefined) return original.kernelFunc(args);
      const wasm = asWasm(args.backend);
      const result = conv2dStride1(blas, f32(wasm, x), f32(wasm, filter), g);
      return outputFrom(wasm, [g.batch, g.outHeight, g.outWidth, g.outChannels], result);
    },
  });
};
