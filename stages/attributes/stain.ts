/**
 * Tile-wide stain channels of the nucleus features (features spec §A4.8–A4.9):
 *  - `hematoxylin(rgb, height, width)`: Ruifrok–Johnston colour deconvolution, the H channel of
 *    skimage `rgb2hed(img)[..., 0]`, from 8-bit RGB `[H, W, 3]` to float64 `[H, W]`;
 *  - `sobel(channel, height, width)`: skimage 0.19 `filters.sobel` magnitude of a float64 `[H, W]`
 *    channel (¼½¼ smoothing, half-sample-symmetric "reflect" border, `sqrt((Gr² + Gc²) / 2)`);
 *  - `sobelAt(channel, height, width, r, c)`: the same magnitude at one pixel (bit-identical);
 *  - `stainChannels(rgb, height, width)`: both, `{ h, g }` with `g = sobel(h)`.
 *
 * Gotchas:
 * - Each sample becomes `v * (1/255)` (skimage's `img_as_float`), not `v / 255` (differs in the
 *   last bit for some v); 0 is clamped to 1e-6 before the log.
 * - H depends on one channel value per term, so the three per-channel terms `(log(g)/L)·M_k` are
 *   tabulated once (256 entries each): the same float64 operations as the formula, in the same
 *   order, so the result is bit-identical to evaluating it per pixel, at a fraction of the cost.
 * - Sobel runs on the whole tile (other objects and background take part) and border pixels are
 *   not zeroed (skimage < 0.19 zeroed them).
 */

/** `repr()` of skimage's `hed_from_rgb[:, 0]` (first column of the inverse of `rgb_from_hed`). */
const M_R = 1.8779827368521356;
const M_G = -0.06590806222356334;
const M_B = -0.6019073634392891;

/** `(log(max(v·(1/255), 1e-6)) / log(1e-6)) · m` for v = 0..255. */
const term = (m: number): Float64Array => {
  const L = Math.log(1e-6);
  const table = new Float64Array(256);
  for (let v = 0; v < 256; v++) table[v] = (Math.log(Math.max(v * (1 / 255), 1e-6)) / L) * m;
  return table;
};
const TERM_R = term(M_R), TERM_G = term(M_G), TERM_B = term(M_B);

const checkRgb = (rgb: Uint8Array, height: number, width: number) => {
  if (!Number.isSafeInteger(height) || !Number.isSafeInteger(width) || height < 1 || width < 1) {
    throw new RangeError(`stain: expected a positive height and width, found ${height}×${width}`);
  }
  if (rgb.length !== height * width * 3) {
    throw new RangeError(`stain: RGB ${height}×${width}×3 needs ${height * width * 3} values, found ${rgb.length}`);
  }
};

/** The hematoxylin density H `[H, W]` (≥ 0) of an 8-bit RGB tile `[H, W, 3]`. */
export const hematoxylin = (rgb: Uint8Array, height: number, width: number): Float64Array => {
  checkRgb(rgb, height, width);
  const n = height * width;
  const out = new Float64Array(n); // [H, W]
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    // R + G + B in this order, as the formula; negatives clamp to 0
    const h = (TERM_R[rgb[j] as number] as number) + (TERM_G[rgb[j + 1] as number] as number) +
      (TERM_B[rgb[j + 2] as number] as number);
    out[i] = h > 0 ? h : 0;
  }
  return out;
};

/**
 * The Sobel gradient magnitude at one pixel (r, c) of a float64 channel `[H, W]`: the expression
 * `sobel` evaluates at every pixel, so the two agree bit for bit. maskFeatures needs G only on the
 * boundary pixels (a few % of a tile), each once.
 */
export const sobelAt = (channel: Float64Array, height: number, width: number, r: number, c: number): number => {
  // half-sample-symmetric reflect: index −1 → 0, height → height − 1 (the edge row is repeated)
  const up = (r === 0 ? 0 : r - 1) * width, mid = r * width, down = (r === height - 1 ? r : r + 1) * width;
  const left = c === 0 ? 0 : c - 1, right = c === width - 1 ? c : c + 1;
  const a = channel[up + left] as number, b = channel[up + c] as number, d = channel[up + right] as number;
  const e = channel[mid + left] as number, f = channel[mid + right] as number;
  const g = channel[down + left] as number, h = channel[down + c] as number, k = channel[down + right] as number;
  // Gr: difference along rows (down − up), smoothed ¼½¼ along columns; Gc: the transpose
  const gr = 0.25 * (g - a) + 0.5 * (h - b) + 0.25 * (k - d);
  const gc = 0.25 * (d - a) + 0.5 * (f - e) + 0.25 * (k - g);
  return Math.sqrt(gr * gr + gc * gc) / Math.SQRT2;
};

/** The Sobel gradient magnitude `[H, W]` of a float64 channel `[H, W]` (skimage 0.19 `filters.sobel`). */
export const sobel = (channel: Float64Array, height: number, width: number): Float64Array => {
  if (!Number.isSafeInteger(height) || !Number.isSafeInteger(width) || height < 1 || width < 1) {
    throw new RangeError(`sobel: expected a positive height and width, found ${height}×${width}`);
  }
  if (channel.length !== height * width) {
    throw new RangeError(`sobel: ${height}×${width} needs ${height * width} values, found ${channel.length}`);
  }
  const out = new Float64Array(height * width); // [H, W]
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) out[r * width + c] = sobelAt(channel, height, width, r, c);
  }
  return out;
};

/** H and its Sobel magnitude G, both `[H, W]`, for an 8-bit RGB tile `[H, W, 3]`. */
export const stainChannels = (
  rgb: Uint8Array,
  height: number,
  width: number,
): { readonly h: Float64Array; readonly g: Float64Array } => {
  const h = hematoxylin(rgb, height, width);
  return { h, g: sobel(h, height, width) };
};
