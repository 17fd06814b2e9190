/**
 * An ordinary image file (PNG, JPEG, TIFF, WebP, … whatever sharp decodes) as a one-level ImageSource, so that
 * `predict` reads a photo-sized tile and a whole slide through the same interface.
 *
 * Each `readRegion` decodes only the region (sharp's `extract`), the file is never held decoded; alpha is composited
 * on white, like OpenSlide's transparent pixels, and the part of a region outside the image is white. `mpp` comes
 * from the file's resolution (PNG pHYs, TIFF/JPEG resolution, which sharp reports as `density` in pixels per inch)
 * only when it could be a microscope's: the 72 or 300 dpi that ordinary software writes is not taken (_resolution.ts).
 */
import sharp from "sharp";
import { checkRegion } from "./_region.ts";
import { mppFromResolution } from "./_resolution.ts";
import { type ImageSource, ImageSourceError } from "./source.ts";

const message = (e: unknown) => e instanceof Error ? e.message : String(e);

// a flat image may be larger than sharp's default limit (2^28 pixels in the file): a region of it is what is decoded
const decoder = (path: string) => sharp(path, { limitInputPixels: false });

/**
 * Opens `path` as one level through sharp. Rejects with ImageSourceError naming the file when it cannot be decoded.
 *
 * @example
 * ```ts ignore
 * const image = await flatImage("tile.png");
 * const rgb = await image.readRegion(0, 0, 0, 256, 256); // [256, 256, 3]
 * ```
 */
export const flatImage = async (path: string): Promise<ImageSource> => {
  const fail = (reason: string) => new ImageSourceError({ file: path, reason });
  const meta = await decoder(path).metadata()
    .catch((e) => Promise.reject(fail(`cannot decode image (${message(e)})`)));
  const { width, height } = meta;
  if (width === undefined || height === undefined || width < 1 || height < 1) {
    throw fail(`cannot decode image (sharp reports no size for this ${meta.format ?? "unknown"} file)`);
  }
  const levels = [{ width, height, downsample: 1 }];
  const mpp = meta.density === undefined ? undefined : mppFromResolution(meta.density, "inch");
  const properties: Record<string, string> = {
    "sharp.format": String(meta.format),
    "sharp.width": String(width),
    "sharp.height": String(height),
    "sharp.channels": String(meta.channels),
    "sharp.space": String(meta.space),
    "sharp.depth": String(meta.depth),
    ...(meta.density === undefined ? {} : { "sharp.density": String(meta.density) }),
    ...(meta.resolutionUnit === undefined ? {} : { "sharp.resolutionUnit": String(meta.resolutionUnit) }),
  };
  let closed = false;
  return {
    path,
    reader: "sharp",
    levels,
    ...(mpp === undefined ? {} : { mpp: { x: mpp, y: mpp } }),
    properties,
    associated: [],
    readRegion: async (x, y, level, w, h) => {
      if (closed) throw fail("the image is closed (close() was called); open it again to read");
      checkRegion(path, levels, x, y, level, w, h);
      const rgb = new Uint8Array(w * h * 3).fill(255); // [h, w, 3], white where the region leaves the image
      const left = Math.max(0, x), top = Math.max(0, y);
      const right = Math.min(width, x + w), bottom = Math.min(height, y + h);
      if (right <= left || bottom <= top) return rgb;
      const { data, info } = await decoder(path)
        .extract({ left, top, width: right - left, height: bottom - top })
        .flatten({ background: "#ffffff" })
        .toColourspace("srgb")
        .raw({ depth: "uchar" })
        .toBuffer({ resolveWithObject: true })
        .catch((e) => Promise.reject(fail(`cannot decode image (${message(e)})`)));
      if (info.channels !== 3) throw fail(`expected RGB, decoded ${info.channels} channels`);
      const rowBytes = (right - left) * 3;
      for (let row = 0; row < bottom - top; row++) {
        rgb.set(data.subarray(row * rowBytes, (row + 1) * rowBytes), ((top - y + row) * w + (left - x)) * 3);
      }
      return rgb;
    },
    readAssociated: (name) =>
      Promise.reject(fail(`no associated image "${name}" (a flat image read by sharp has none)`)),
    close: () => {
      closed = true;
    },
  };
};
