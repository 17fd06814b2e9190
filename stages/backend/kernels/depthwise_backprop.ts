/**
 * DepthwiseConv2dNativeBackpropFilter and …BackpropInput for the WASM backend: tfjs-wasm has
 * neither, so `tf.grad` of `tf.depthwiseConv2d` (and any depthwise layer) throws there.
 *
 * NHWC, x [B, H, W, C], filter [KH, KW, C, M] (M the channel multiplier), dy [B, OH, OW, C·M];
 * output channel c·M + m reads input channel c only. Both gradients are direct loops on the heap
 * whose innermost loop runs over the contiguous channels of one pixel. Geometry (padding, output
 * size) comes from tfjs's own computeConv2DInfo with depthwise = true, as the `cpu` backend does;
 * strides, dilations, 'same'/'valid', explicit pads and dimRoundingMode follow from it. Sums are
 * taken in float64, as the `cpu` backend does.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, f32, outputFrom, overrideWasmKernel } from "./_wasm.ts";

type Shape4 = [number, number, number, number];

/** The attributes both backprops share (tfjs-core's depthwise gradient always passes dilations [1, 1]). */
type DepthwiseAttrs = Omit<tf.DepthwiseConv2dNativeBackpropInputAttrs, "inputShape">;

/** tfjs's conv geometry for x [B, H, W, C] and filter [KH, KW, C, M], checked against dy. */
const geometryOf = (kernel: string, xShape: Shape4, filterShape: Shape4, dy: tf.TensorInfo, a: DepthwiseAttrs) => {
  const info = tf.backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    true, // depthwise: out channels = C·M
  );
  const expected = [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
  if (dy.shape.length !== 4 || expected.some((d, i) => d !== dy.shape[i])) {
    throw new Error(`${kernel} (wasm): dy must be [${expected}], found [${dy.shape}]`);
  }
  return info;
};

/** dW [KH, KW, C, M] = Σ_{b, oy, ox} x[b, oy·sh + ky·dh − top, ox·sw + kx·dw − left, c] · dy[b, oy, ox, c·M + m]. */
const filterGradient = (x: Float32Array, dy: Float32Array, info: tf.backend_util.Conv2DInfo): Float64Array => {
  const { batchSize, inHeight, inWidth, inChannels: C, outHeight, outWidth, outChannels: CM } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const { dilationHeight: dh, dilationWidth: dw } = info, { top, left } = info.padInfo;
  const M = CM / C, dW = new Float64Array(KH * KW * CM);
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const g = ((b * outHeight + oy) * outWidth + ox) * CM; // dy[b, oy, ox, :]
        for (let ky = 0; ky < KH; ky++) {
          const iy = oy * sh + ky * dh - top;
          if (iy < 0 || iy >= inHeight) continue;
          for (let kx = 0; kx < KW; kx++) {
            const ix = ox * sw + kx * dw - left;
            if (ix < 0 || ix >= inWidth) continue;
            const p = ((b * inHeight + iy) * inWidth + ix) * C, w = (ky * KW + kx) * CM; // x[b, iy, ix, :], dW[ky, kx, :, :]
            for (let c = 0; c < C; c++) {
              const v = x[p + c] as number;
              for (let m = c * M, end = m + M; m < end; m++) {
                dW[w + m] = (dW[w + m] as number) + v * (dy[g + m] as number);
              }
            }
          }
        }
      }
    }
  }
  return dW;
};

/**
 * dx [B, H, W, C] = Σ_{ky, kx, m} dy[b, oy, ox, c·M + m] · W[ky, kx, c, m] over the outputs (oy, ox)
 * that read pixel (iy, ix) through tap (ky, kx): iy = oy·sh + ky·dh − top. Written as a gather, one
 * input pixel at a time, so that no scratch of the size of dx is needed.
 */
const inputGradient = (
  dy: Float32Array,
  filter: Float32Array,
  info: tf.backend_util.Conv2DInfo,
  dx: Float32Array,
): void => {
  const { batchSize, inHeight, inWidth, inChannels: C, outHeight, outWidth, outChannels: CM } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const { dilationHeight: dh, dilationWidth: dw } = info, { top, left } = info.padInfo;
  const M = CM / C, acc = new Float64Array(C);
  for (let b = 0; b < batchSize; b++) {
    for (let iy = 0; iy < inHeight; iy++) {
      for (let ix = 0; ix < inWidth; ix++) {
        acc.fill(0);
        for (let ky = 0; ky < KH; ky++) {
          const ty = iy + top - ky * dh; // = oy·sh
          if (ty < 0 || ty % sh !== 0 || ty / sh >= outHeight) continue;
          for (let kx = 0; kx < KW; kx++) {
            const tx = ix + left - kx * dw; // = ox·sw
            if (tx < 0 || tx % sw !== 0 || tx / sw >= outWidth) continue;
            const g = ((b * outHeight + ty / sh) * outWidth + tx / sw) * CM, w = (ky * KW + kx) * CM; // dy[b, oy, ox, :], W[ky, kx, :, :]
            for (let c = 0; c < C; c++) {
              let s = acc[c] as number;
              for (let m = c * M, end = m + M; m < end; m++) s += (dy[g + m] as number) * (filter[w + m] as number);
              acc[c] = s;
            }
          }
        }
        dx.set(acc, ((b * inHeight + iy) * inWidth + ix) * C);
      }
    }
  }
};

const assertFloat32 = (kernel: string, ...infos: tf.TensorInfo[]): void => {
  const other = infos.find((t) => t.dtype !== "float32");
  if (other !== undefined) throw new Error(`${kernel} (wasm): only float32 data is supported, found ${other.dtype}`);
};

export const registerDepthwiseConv2dNativeBackpropFilter = (): void =>
  overrideWasmKernel({
    kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
    backendName: "wasm",
    kernelFunc: ({ inputs, backend, attrs }) => {
      const kernel = tf.DepthwiseConv2dNativeBackpropFilter;
      const wasm = asWasm(backend);
      const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const a = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
      assertFloat32(kernel, x, dy);
      const info = geometryOf(kernel, x.shape as Shape4, a.filterShape, dy, a);
      const dW = filterGradient(f32(wasm, x), f32(wasm, dy), info); // [KH, KW, C, M]
      return outputFrom(wasm, [...a.filterShape], Float32Array.from(dW));
    },
  });

export const registerDepthwiseConv2dNativeBackpropInput = (): void =>
  overrideWasmKernel({
    kernelName: tf.DepthwiseConv2dNativeBackpropInput,
    backendName: "wasm",
    kernelFunc: ({ inputs, backend, attrs }) => {
      const kernel = tf.DepthwiseConv2dNativeBackpropInput;
      const wasm = asWasm(backend);
      const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
      const a = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
      assertFloat32(kernel, dy, filter);
      const info = geometryOf(kernel, a.inputShape, filter.shape as Shape4, dy, a);
      const out = wasm.makeOutput([...a.inputShape], "float32"); // [B, H, W, C]
      // views taken after the allocation: growing the heap detaches older ones
      inputGradient(f32(wasm, dy), f32(wasm, filter), info, f32(wasm, out));
      return out;
    },
  });
