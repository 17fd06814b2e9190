/**
 * MaxPoolGrad for the WASM backend. tfjs-wasm 4.22's kernel routes some window gradients to the
 * wrong element (measured: 17 of 1,024 elements wrong for a 2×2/2 pool of [2, 4, 4, 32], so the
 * gradient reaching the ViT through the pyramid's s32 level was off by ≈ 20 %; `cpu` and `webgpu`
 * agree with a brute-force reference). This one follows `cpu`'s semantics: each window's gradient
 * goes to its first maximum (row-major order), padding is skipped.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, f32, overrideWasmKernel } from "./_wasm.ts";

/** dx [B, H, W, C] of max pooling `x` [B, H, W, C] with dy [B, OH, OW, C] (`info`: tfjs's pool geometry). */
export const maxPoolGradValues = (
  x: Float32Array,
  dy: Float32Array,
  info: tf.backend_util.Conv2DInfo,
  dx: Float32Array,
): void => {
  const { batchSize, inHeight, inWidth, inChannels: C, outHeight, outWidth } = info;
  const { strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const { effectiveFilterHeight, effectiveFilterWidth } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  const best = new Float32Array(C), at = new Int32Array(C);
  dx.fill(0);
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        best.fill(-Infinity);
        at.fill(-1);
        for (let fy = 0; fy < effectiveFilterHeight; fy += dilationHeight) {
          const y = oy * strideHeight - top + fy;
          if (y < 0 || y >= inHeight) continue;
          for (let fx = 0; fx < effectiveFilterWidth; fx += dilationWidth) {
            const xx = ox * strideWidth - left + fx;
            if (xx < 0 || xx >= inWidth) continue;
            const base = ((b * inHeight + y) * inWidth + xx) * C;
            for (let c = 0; c < C; c++) {
              const v = x[base + c] as number;
              // strictly greater: the first maximum wins; a window of NaN or −∞ passes nothing on (as cpu)
              if (v > (best[c] as number)) [best[c], at[c]] = [v, base + c];
            }
          }
        }
        const from = ((b * outHeight + oy) * outWidth + ox) * C;
        for (let c = 0; c < C; c++) {
          const i = at[c] as number;
          if (i >= 0) dx[i] = (dx[i] as number) + (dy[from + c] as number);
        }
      }
    }
  }
};

/** Registers the kernel over tfjs-wasm's MaxPoolGrad (float32). */
export const registerMaxPoolGrad = (): void =>
  overrideWasmKernel({
    kernelName: tf.MaxPoolGrad,
    backendName: "wasm",
    kernelFunc: (args) => {
      const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
      const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as tf.MaxPoolGradAttrs;
      if (input.dtype !== "float32" || dy.dtype !== "float32") {
        throw new Error(`MaxPoolGrad (wasm): ${input.dtype} is not supported`);
      }
      const info = tf.backend_util.computePool2DInfo(
        input.shape as [number, number, number, number],
        filterSize,
        strides,
        1,
        pad,
        dimRoundingMode,
      );
      const wasm = asWasm(args.backend);
      const dx = wasm.makeOutput(input.shape, "float32");
      maxPoolGradValues(f32(wasm, input), f32(wasm, dy), info, f32(wasm, dx));
      return dx;
    },
  });
