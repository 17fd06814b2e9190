/**
 * Images at another resolution than the model's: read rescaled to the model's microns per pixel,
 * and label maps mapped back to the original pixel grid.
 */
import sharp from "sharp";
import { readRgb } from "../data/image.ts";
import { DatasetError } from "../data/sample.ts";

/** Microns per pixel of every bundled dataset (PanNuke, CoNSeP, MoNuSeg: 40×) and of the synthetic one. */
export const DEFAULT_MODEL_MPP = 0.25;

/** Microns per pixel of a magnification, by the usual 40× ≈ 0.25 µm/px convention. */
export const mppOfMagnification = (magnification: number): number => 10 / magnification;

/** An image read at `scale` × its size: [h, w, 3] RGB and its original size. */
export interface ScaledImage {
  readonly height: number;
  readonly width: number;
  readonly rgb: Uint8Array;
  readonly originalHeight: number;
  readonly originalWidth: number;
}

/** The scaled size of a side (at least 1 pixel). */
export const scaledSide = (side: number, scale: number): number => Math.max(1, Math.round(side * scale));

/** A decoded image (of `file`, named in errors) resized by `scale` (Lanczos; 1 = as is). */
export const scaleImage = async (
  original: { readonly height: number; readonly width: number; readonly rgb: Uint8Array },
  scale: number,
  file: string,
): Promise<ScaledImage> => {
  const sides = { originalHeight: original.height, originalWidth: original.width };
  if (scale === 1) return { height: original.height, width: original.width, rgb: original.rgb, ...sides };
  const height = scaledSide(original.height, scale), width = scaledSide(original.width, scale);
  const { data, info } = await sharp(original.rgb, {
    raw: { width: original.width, height: original.height, channels: 3 },
  }).resize(width, height, { fit: "fill", kernel: "lanczos3" }).raw().toBuffer({ resolveWithObject: true })
    .catch((e) => Promise.reject(new DatasetError({ file, reason: `cannot rescale (${e}))` })));
  if (info.channels !== 3 || info.width !== width || info.height !== height) {
    throw new DatasetError({ file, reason: `rescaling gave ${info.width}×${info.height}×${info.channels}` });
  }
  return { height, width, rgb: new Uint8Array(data), ...sides };
};

/** Reads `file` as RGB resized by `scale` (Lanczos; 1 = as is). */
export const readScaled = async (file: string, scale: number): Promise<ScaledImage> =>
  scaleImage(await readRgb(file), scale, file);

/**
 * A label map [h, w] resampled to [H, W] by nearest neighbour (each target pixel centre looks up
 * the source pixel under it); ids that vanish (tiny nuclei when shrinking) are left out by the
 * caller's relabelling.
 */
export const resizeLabels = (labels: Int32Array, h: number, w: number, height: number, width: number): Int32Array => {
  if (h === height && w === width) return labels;
  const out = new Int32Array(height * width);
  const xs = Int32Array.from({ length: width }, (_, x) => Math.min(w - 1, Math.floor(((x + 0.5) * w) / width)));
  for (let y = 0; y < height; y++) {
    const row = Math.min(h - 1, Math.floor(((y + 0.5) * h) / height)) * w;
    for (let x = 0; x < width; x++) out[y * width + x] = labels[row + (xs[x] as number)] as number;
  }
  return out;
};
