/**
 * Where the tissue is on a slide, from a low-resolution RGB thumbnail, so that whole-slide
 * prediction reads and predicts only the tiles that hold tissue (most of a slide is empty glass).
 *
 *   tissueMask(rgb [h, w, 3], h, w, options) → { mask [h, w] 0/1, threshold, fraction }
 *   tissueTiles(mask, h, w, slideHeight, slideWidth, tiles, minFraction) → the tiles worth predicting
 *   tissueOverlayPng(rgb, h, w, mask) → PNG of the thumbnail with the tissue tinted and outlined
 *
 * How: each pixel's score is its HSV saturation (max − min) / max of R, G, B, quantised to 0–255.
 * Background glass is bright and grey (saturation near 0), stained tissue pink to purple (0.1–0.5),
 * whatever its brightness; saturation is what CLAM (create_patches_fp.py, segmentTissue: Otsu on
 * the HSV S channel) and HoVer-Net-era tools threshold, and it needs no stain vectors, unlike
 * optical density, whose threshold moves with the stain and the scanner's white point. The split
 * is Otsu's threshold of the score histogram (Otsu 1979), or a fixed one (`--tissue-threshold`);
 * then tissue specks are removed and small holes filled (`removeSmallObjects`, `fillSmallHoles`).
 *
 * Gotchas:
 * - Black borders, black pen and dark scanner margins are grey too, but dark: a pixel whose
 *   brightest channel is below `blackLevel` (30) is never tissue and is left out of the histogram.
 *   Coloured (blue, green) pen marks are saturated and do count as tissue.
 * - Otsu always splits, even a slide of pure glass (into cleaner and dirtier glass) or a crop of
 *   pure tissue (into paler and darker tissue). So its threshold is clamped into `otsuRange`
 *   ([0.05, 0.25] saturation: above glass noise and JPEG tint, below pale eosin), and a histogram
 *   with a single value, where Otsu has no split, takes the range's lower end: a constant image is
 *   all tissue when its saturation is above 0.05 and no tissue otherwise — never by accident.
 * - Areas are in thumbnail pixels; the defaults suit a thumbnail of roughly 8–16 µm per pixel.
 */
import sharp from "sharp";
import { type TilePlacement, tilePlacements } from "../predict/tiling.ts";

/** Options of `tissueMask`; every field has a default. */
export interface TissueOptions {
  /** a fixed saturation threshold in [0, 1] (`--tissue-threshold`): tissue where saturation > it; Otsu skipped */
  readonly threshold?: number;
  /** Otsu's threshold is clamped into this saturation range (default [0.05, 0.25]) */
  readonly otsuRange?: readonly [number, number];
  /** a pixel whose brightest channel is below this is never tissue (default 30) */
  readonly blackLevel?: number;
  /** tissue components (8-connected) of fewer thumbnail pixels are removed (default 64) */
  readonly minObjectArea?: number;
  /** holes (4-connected background not touching the border) of fewer pixels are filled (default 1024) */
  readonly maxHoleArea?: number;
}

/** The tissue of a thumbnail. */
export interface TissueMask {
  /** [h, w], 1 = tissue */
  readonly mask: Uint8Array;
  /** the saturation threshold used, in [0, 1]: tissue where saturation > threshold (before morphology) */
  readonly threshold: number;
  /** tissue pixels / all pixels, after morphology */
  readonly fraction: number;
}

const check = (name: string, ok: boolean, found: unknown) => {
  if (!ok) throw new RangeError(`tissue: ${name}, found ${found}`);
};

/**
 * Per pixel of an [h, w, 3] RGB image, its HSV saturation quantised to 0–255
 * (round(255 · (max − min) / max), 0 for black), or −1 where the brightest channel is below
 * `blackLevel` (never tissue).
 */
export const saturationScores = (rgb: Uint8Array, height: number, width: number, blackLevel = 30): Int16Array => {
  check(`expected ${height}×${width}×3 RGB values`, rgb.length === height * width * 3, rgb.length);
  const out = new Int16Array(height * width);
  for (let i = 0; i < out.length; i++) {
    const r = rgb[3 * i] as number, g = rgb[3 * i + 1] as number, b = rgb[3 * i + 2] as number;
    const max = Math.max(r, g, b), min = Math.min(r, g, b);
    out[i] = max < blackLevel ? -1 : max === 0 ? 0 : Math.round((255 * (max - min)) / max);
  }
  return out;
};

/**
 * Otsu's threshold of a histogram: the bin k that maximises the between-class variance of
 * bins [0, k] and [k + 1, n), so values > k are the upper class (Otsu 1979). Where several k tie —
 * every k across a run of empty bins between two modes gives the same split — the middle one is
 * taken, so the cut lies between the modes rather than on one of them. Null when fewer than two
 * bins are non-empty: there is nothing to split.
 *
 * @example
 * ```ts
 * import { otsuThreshold } from "./tissue.ts";
 * console.assert(otsuThreshold([2, 1, 0, 1]) === 1); // {0, 0, 1} | {3}
 * console.assert(otsuThreshold([0, 5, 0]) === null);
 * ```
 */
export const otsuThreshold = (histogram: ArrayLike<number>): number | null => {
  let total = 0, sum = 0, filled = 0;
  for (let i = 0; i < histogram.length; i++) {
    const h = histogram[i] as number;
    check(`histogram[${i}] must be a finite count ≥ 0`, Number.isFinite(h) && h >= 0, h);
    total += h, sum += i * h, filled += h > 0 ? 1 : 0;
  }
  if (filled < 2) return null;
  const between = new Float64Array(histogram.length).fill(-1);
  let n0 = 0, s0 = 0, best = 0;
  for (let k = 0; k < histogram.length - 1; k++) {
    const h = histogram[k] as number;
    n0 += h, s0 += k * h;
    const n1 = total - n0;
    if (n0 === 0 || n1 === 0) continue;
    const d = s0 / n0 - (sum - s0) / n1, v = (n0 * n1 * d * d) / (total * total); // ω0 ω1 (μ0 − μ1)²
    between[k] = v;
    if (v > best) best = v;
  }
  let first = -1, last = -1;
  between.forEach((v, k) => {
    if (v < 0 || v < best * (1 - 1e-12)) return;
    if (first < 0) first = k;
    last = k;
  });
  return Math.floor((first + last) / 2);
};

/** Connected components of the pixels equal to `value`: a label per pixel (0 = other), areas, border contact. */
const components = (mask: Uint8Array, height: number, width: number, value: number, eight: boolean) => {
  const labels = new Int32Array(mask.length), stack = new Int32Array(mask.length);
  const areas: number[] = [0], border: boolean[] = [false];
  const steps = eight
    ? [[-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 1], [1, -1], [1, 0], [1, 1]]
    : [[-1, 0], [0, -1], [0, 1], [1, 0]];
  for (let seed = 0; seed < mask.length; seed++) {
    if (mask[seed] !== value || labels[seed] !== 0) continue;
    const label = areas.length;
    let top = 0, area = 0, touches = false;
    stack[top++] = seed, labels[seed] = label;
    while (top > 0) {
      const p = stack[--top] as number, y = Math.floor(p / width), x = p - y * width;
      area++;
      if (y === 0 || x === 0 || y === height - 1 || x === width - 1) touches = true;
      for (const [dy, dx] of steps as Array<[number, number]>) {
        const yy = y + dy, xx = x + dx, q = yy * width + xx;
        if (yy < 0 || xx < 0 || yy >= height || xx >= width || mask[q] !== value || labels[q] !== 0) continue;
        labels[q] = label, stack[top++] = q;
      }
    }
    areas.push(area), border.push(touches);
  }
  return { labels, areas, border };
};

/** The mask without its tissue components (8-connected) of fewer than `minArea` pixels. */
export const removeSmallObjects = (mask: Uint8Array, height: number, width: number, minArea: number): Uint8Array => {
  const { labels, areas } = components(mask, height, width, 1, true);
  return mask.map((m, i) => (m === 1 && (areas[labels[i] as number] as number) >= minArea ? 1 : 0));
};

/**
 * The mask with its holes of fewer than `maxArea` pixels filled. A hole is a 4-connected
 * background component that does not touch the image border (4-connected background is the dual
 * of 8-connected tissue: a diagonal chain of tissue pixels closes a hole).
 */
export const fillSmallHoles = (mask: Uint8Array, height: number, width: number, maxArea: number): Uint8Array => {
  const { labels, areas, border } = components(mask, height, width, 0, false);
  return mask.map((m, i) => {
    const l = labels[i] as number;
    return m === 1 || (!border[l] && (areas[l] as number) < maxArea) ? 1 : 0;
  });
};

/**
 * The tissue of an [h, w, 3] RGB thumbnail (see the module comment): saturation > threshold
 * (fixed, or Otsu's clamped into `otsuRange`), not near-black, then specks below `minObjectArea`
 * removed and holes below `maxHoleArea` filled.
 *
 * @example
 * ```ts
 * import { tissueMask } from "./tissue.ts";
 * const white = new Uint8Array(4 * 4 * 3).fill(255);
 * console.assert(tissueMask(white, 4, 4).fraction === 0);
 * ```
 */
export const tissueMask = (
  rgb: Uint8Array,
  height: number,
  width: number,
  options: TissueOptions = {},
): TissueMask => {
  const { threshold: fixedThreshold, otsuRange = [0.05, 0.25], blackLevel = 30 } = options;
  const { minObjectArea = 64, maxHoleArea = 1024 } = options;
  const [lo, hi] = otsuRange;
  if (fixedThreshold !== undefined) {
    check("threshold must be a saturation in [0, 1]", fixedThreshold >= 0 && fixedThreshold <= 1, fixedThreshold);
  }
  check("otsuRange must be [lo, hi] with 0 ≤ lo ≤ hi ≤ 1", lo >= 0 && lo <= hi && hi <= 1, `[${lo}, ${hi}]`);
  const scores = saturationScores(rgb, height, width, blackLevel);
  let threshold = fixedThreshold;
  if (threshold === undefined) {
    const histogram = new Float64Array(256);
    for (const s of scores) if (s >= 0) histogram[s] = (histogram[s] as number) + 1;
    const k = otsuThreshold(histogram);
    threshold = k === null ? lo : Math.min(hi, Math.max(lo, k / 255));
  }
  const cut = Math.floor(threshold * 255 + 1e-9); // score/255 > threshold ⇔ score > cut (scores are integers)
  const raw = Uint8Array.from(scores, (s) => (s > cut ? 1 : 0));
  const mask = fillSmallHoles(removeSmallObjects(raw, height, width, minObjectArea), height, width, maxHoleArea);
  let tissue = 0;
  for (const m of mask) tissue += m;
  return { mask, threshold, fraction: mask.length === 0 ? 0 : tissue / mask.length };
};

/** A tile with the fraction of its owned region that is tissue. */
export interface TissueTile extends TilePlacement {
  readonly tissue: number;
}

/**
 * The tiles of a level-0 tiling (`tilePlacements` of tiling.ts, or placements given) whose owned
 * region holds at least `minFraction` tissue (and some tissue at all, so 0 means "any"). The owned
 * region, not the whole tile, is measured, because the stitcher keeps only the nuclei centred in it:
 * a tile with tissue only in its overlap contributes nothing. Mask cell (r, c) covers slide pixels
 * [r·sy, (r+1)·sy) × [c·sx, (c+1)·sx), sy = slideHeight / maskHeight (likewise sx), and a region's
 * fraction weights each cell by the area it shares with the region.
 */
export const tissueTiles = (
  mask: Uint8Array,
  maskHeight: number,
  maskWidth: number,
  slideHeight: number,
  slideWidth: number,
  tiles: ReadonlyArray<TilePlacement> | { readonly tile: number; readonly overlap: number },
  minFraction: number,
): TissueTile[] => {
  check(`expected a ${maskHeight}×${maskWidth} mask`, mask.length === maskHeight * maskWidth, mask.length);
  check("minFraction must be in [0, 1]", minFraction >= 0 && minFraction <= 1, minFraction);
  const sy = slideHeight / maskHeight, sx = slideWidth / maskWidth;
  const places = "tile" in tiles ? tilePlacements(slideHeight, slideWidth, tiles.tile, tiles.overlap) : tiles;
  // cells [first, …] overlapping [a, b) on an axis of cell size s and n cells, with the length each shares
  const shares = (a: number, b: number, s: number, n: number) => {
    const first = Math.max(0, Math.floor(a / s)), end = Math.min(n, Math.ceil(b / s));
    const lengths = Array.from({ length: Math.max(0, end - first) }, (_, j) => {
      const c = first + j;
      return Math.max(0, Math.min(b, (c + 1) * s) - Math.max(a, c * s));
    });
    return { first, lengths };
  };
  const out: TissueTile[] = [];
  for (const p of places) {
    const [y0, y1] = p.own.y, [x0, x1] = p.own.x, area = (y1 - y0) * (x1 - x0);
    if (area <= 0) continue;
    const rows = shares(y0, y1, sy, maskHeight), cols = shares(x0, x1, sx, maskWidth);
    let covered = 0;
    rows.lengths.forEach((ly, j) => {
      const at = (rows.first + j) * maskWidth + cols.first;
      cols.lengths.forEach((lx, k) => (covered += mask[at + k] === 1 ? ly * lx : 0));
    });
    const tissue = covered / area;
    if (tissue > 0 && tissue >= minFraction) out.push({ ...p, tissue });
  }
  return out;
};

/** Tint of tissue pixels (green at 35 % opacity) and colour of the mask's outline. */
const TINT = [0, 255, 0] as const, ALPHA = 0.35, OUTLINE = [0, 120, 0] as const;

/**
 * The thumbnail as PNG with the tissue tinted green (35 %) and its outline — tissue pixels with a
 * 4-neighbour outside the tissue — drawn in dark green, to check a detection by eye.
 */
export const tissueOverlayPng = async (
  rgb: Uint8Array,
  height: number,
  width: number,
  mask: Uint8Array,
): Promise<Uint8Array> => {
  check(`expected ${height}×${width}×3 RGB values`, rgb.length === height * width * 3, rgb.length);
  check(`expected a ${height}×${width} mask`, mask.length === height * width, mask.length);
  const out = Uint8Array.from(rgb);
  const inside = (y: number, x: number) => y < 0 || x < 0 || y >= height || x >= width || mask[y * width + x] === 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (mask[i] !== 1) continue;
      const edge = !(inside(y - 1, x) && inside(y + 1, x) && inside(y, x - 1) && inside(y, x + 1));
      for (let ch = 0; ch < 3; ch++) {
        const v = rgb[3 * i + ch] as number;
        out[3 * i + ch] = edge ? OUTLINE[ch] as number : Math.round((1 - ALPHA) * v + ALPHA * (TINT[ch] as number));
      }
    }
  }
  const png = await sharp(out, { raw: { width, height, channels: 3 } }).png().toBuffer();
  return new Uint8Array(png);
};
