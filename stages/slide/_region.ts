/**
 * The checks every `ImageSource.readRegion` makes before it touches a file, shared by the OpenSlide and sharp
 * readers so that both refuse the same calls with the same words.
 */
import type { SlideLevel } from "./source.ts";

/**
 * The most pixels one region may have: 2^28 (a 16384 × 16384 square, 768 MiB of RGB). A caller that asks for more
 * is tiling wrongly; refusing here keeps a typo from allocating gigabytes (OpenSlide itself would try).
 */
export const MAX_REGION_PIXELS = 2 ** 28;

/**
 * Throws a RangeError naming the file, the argument and its value when `readRegion(x, y, level, width, height)`
 * cannot be read: `level` outside `levels`, a non-integer (x, y), or a size that is not an integer ≥ 1 or is over
 * MAX_REGION_PIXELS. A region partly or wholly outside the image is allowed: that part reads as white.
 */
export const checkRegion = (
  file: string,
  levels: ReadonlyArray<SlideLevel>,
  x: number,
  y: number,
  level: number,
  width: number,
  height: number,
): void => {
  const fail = (what: string) => {
    throw new RangeError(`readRegion(${file}): ${what}`);
  };
  if (!Number.isInteger(level) || level < 0 || level >= levels.length) {
    fail(`level must be an integer in 0..${levels.length - 1} (the image has ${levels.length}), got ${level}`);
  }
  for (const [name, value] of [["x", x], ["y", y]] as const) {
    if (!Number.isSafeInteger(value)) fail(`${name} must be an integer (level-0 pixels), got ${value}`);
  }
  for (const [name, value] of [["width", width], ["height", height]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) fail(`${name} must be an integer ≥ 1, got ${value}`);
  }
  if (width * height > MAX_REGION_PIXELS) {
    fail(`a region of ${width} × ${height} pixels is over the limit of ${MAX_REGION_PIXELS} (2^28); read it in tiles`);
  }
};
