/**
 * ResizeNearestNeighborGrad for the WASM backend: tfjs-wasm's kernel took ≈ 22 ms for one
 * [2, 128, 128, 128] → [2, 64, 64, 128] gradient of the pixel decoder's ×2 upsampling (≈ 35 ms a
 * training step). The gradient of nearest-neighbour resizing is its adjoint: every output pixel's
 * gradient row (all channels, contiguous) is added to the input pixel it was copied from, found
 * with the forward kernel's own mapping (tfjs's ResizeNearestNeighbor: align corners, half-pixel
 * centres). One sequential pass over dy; float32 only, other dtypes keep the original. The same
 * kernel replaces the `cpu` backend's, which is wrong for batches of more than one image.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasm, f32, originalKernel } from "./_wasm.ts";

/** For each of `newSize` output rows (or columns), the input row it copies, as tfjs maps it. */
export const nearestSources = (
  oldSize: number,
  newSize: number,
  alignCorners: boolean,
  halfPixelCenters: boolean,
): Int32Array => {
  const effectiveIn = alignCorners && newSize > 1 ? oldSize - 1 : oldSize;
  const effectiveOut = alignCorners && newSize > 1 ? newSize - 1 : newSize;
  const ratio = effectiveIn / effectiveOut;
  return Int32Array.from({ length: newSize }, (_, r) => {
    const frac = halfPixelCenters ? ratio * (r + 0.5) : ratio * r;
    const nearest = Math.min(oldSize - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
    return halfPixelCenters ? Math.max(0, nearest) : nearest;
  });
};

/** dx [B, H, W, C] of nearest-neighbour resizing `images` to dy [B, H', W', C]: dy scatter-added. */
const nearestGrad = (
  dy: Float32Array,
  imagesShape: ReadonlyArray<number>,
  dyShape: ReadonlyArray<number>,
  alignCorners: boolean,
  halfPixelCenters: boolean,
  dx: Float32Array,
): void => {
  const [batch, oldH, oldW, channels] = imagesShape as [number, number, number, number];
  const [newH, newW] = [dyShape[1] as number, dyShape[2] as number];
  const rows = nearestSources(oldH, newH, alignCorners, halfPixelCenters);
  const cols = nearestSources(oldW, newW, alignCorners, halfPixelCenters);
  dx.fill(0);
  let from = 0;
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < newH; r++) {
      const row = (b * oldH + (rows[r] as number)) * oldW;
      for (let c = 0; c < newW; c++, from += channels) {
        const to = (row + (cols[c] as number)) * channels;
        for (let k = 0; k < channels; k++) dx[to + k] = (dx[to + k] as number) + (dy[from + k] as number);
      }
    }
  }
};

interface CpuBackend {
  data: { get(dataId: tf.TensorInfo["dataId"]): { values: tf.TypedArray } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: tf.TypedArray): tf.TensorInfo;
}

const replaced = new Set<string>();

/**
 * Registers the kernel for `wasm` (speed) or `cpu`, whose own kernel in tfjs 4.22 reads dy at the
 * wrong offset for every image after the first (batch > 1: wrong gradients; tested). Idempotent.
 */
export const registerResizeNearestNeighborGrad = (backendName: "wasm" | "cpu"): void => {
  if (replaced.has(backendName)) return;
  replaced.add(backendName);
  const original = originalKernel(tf.ResizeNearestNeighborGrad, backendName);
  if (original !== undefined) tf.unregisterKernel(tf.ResizeNearestNeighborGrad, backendName);
  tf.registerKernel({
    kernelName: tf.ResizeNearestNeighborGrad,
    backendName,
    kernelFunc: (args) => {
      const { images, dy } = args.inputs as { images: tf.TensorInfo; dy: tf.TensorInfo };
      const { alignCorners, halfPixelCenters } = args.attrs as unknown as tf.ResizeNearestNeighborGradAttrs;
      if (dy.dtype !== "float32" || images.shape.length !== 4) {
        if (original === undefined) {
          throw new Error(`ResizeNearestNeighborGrad (${backendName}): ${dy.dtype} is not supported`);
        }
        return original.kernelFunc(args);
      }
      if (backendName === "cpu") {
        const cpu = args.backend as unknown as CpuBackend;
        const dx = new Float32Array(tf.util.sizeFromShape(images.shape));
        nearestGrad(
          cpu.data.get(dy.dataId).values as Float32Array,
          images.shape,
          dy.shape,
          alignCorners,
          halfPixelCenters,
          dx,
        );
        return cpu.makeTensorInfo(images.shape, "float32", dx);
      }
      const wasm = asWasm(args.backend);
      const out = wasm.makeOutput(images.shape, "float32");
      nearestGrad(f32(wasm, dy), images.shape, dy.shape, alignCorners, halfPixelCenters, f32(wasm, out));
      return out;
    },
  });
};
