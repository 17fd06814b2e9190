/**
 * Conv2D for the WASM backend: with the native BLAS loaded (conv_blas.ts), stride-1 undilated NHWC
 * convolutions run as one product (1×1) or shifted matrix products (at least 16 input channels), strided ones (the
 * stem's stride-2 layers, the 16×16 patch embedding) as one product over gathered patches (im2col);
 * everything else — stride-1 few-channel convs, dilations, no BLAS — keeps tfjs-wasm's XNNPACK kernel.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, f32, originalKernel, outputFrom, overrideWasmKernel, pairOf } from "./_wasm.ts";
import { activeBlas } from "./batch_matmul.ts";
import { type Conv2DGeometry, conv2dIm2col, conv2dStride1, isIm2col, isPointwise, isShifted } from "./conv_blas.ts";

type ConvAttrs = {
  strides: number | [number, number];
  dilations?: number | [number, number];
  pad: tf.Conv2DAttrs["pad"];
  dataFormat?: string;
  dimRoundingMode?: tf.Conv2DAttrs["dimRoundingMode"];
};

/** The geometry of an undilated NHWC conv at any stride, or undefined when it is dilated or not NHWC. */
export const convGeometry = (
  xShape: number[],
  filterShape: [number, number, number, number],
  attrs: ConvAttrs,
): Conv2DGeometry | undefined => {
  const [sh, sw] = pairOf(attrs.strides), [dh, dw] = pairOf(attrs.dilations);
  const [kh, kw, ci, co] = filterShape;
  if (dh !== 1 || dw !== 1 || (attrs.dataFormat ?? "NHWC") !== "NHWC" || xShape.length !== 4) return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape,
    [sh, sw],
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
    strideHeight: sh,
    strideWidth: sw,
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
      if (blas === undefined || x.dtype !== "float32") return original.kernelFunc(args);
      const g = convGeometry(x.shape, filter.shape as [number, number, number, number], a);
      const wasm = asWasm(args.backend);
      if (g !== undefined && isPointwise(g)) {
        // 1×1: one product of the pixels [B·H·W, Ci] with the filter [Ci, Co], straight on the heap
        const out = wasm.makeOutput([g.batch, g.outHeight, g.outWidth, g.outChannels], "float32");
        const rows = g.batch * g.outHeight * g.outWidth;
        blas.sgemm(false, false, rows, g.outChannels, g.inChannels, f32(wasm, x), f32(wasm, filter), f32(wasm, out));
        return out;
      }
      const shifted = g !== undefined && isShifted(g) && g.inChannels >= 16;
      if (g === undefined || (!shifted && !isIm2col(g))) return original.kernelFunc(args);
      const result = shifted
        ? conv2dStride1(blas, f32(wasm, x), f32(wasm, filter), g)
        : conv2dIm2col(blas, f32(wasm, x), f32(wasm, filter), g);
      return outputFrom(wasm, [g.batch, g.outHeight, g.outWidth, g.outChannels], result);
    },
  });
};
