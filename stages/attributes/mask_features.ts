/**
 * The 11 per-nucleus features of the IVAAN attribute words (features spec v1.0, Part A), exactly as
 * specified so that they match the Python + scikit-image 0.19.3 oracle to 1e-6 relative.
 *
 *   maskFeatures(image [H, W, 3] uint8 RGB, instances [H, W] int32, H, W) → FeatureRecord[] (ids ascending)
 *   featuresJson(records, { image, inst, height, width }) → the §A6 top-level JSON object
 *   squaredDepthMap(mask [H, W], H, W) → d² [H, W] (exact integers; for tests and debugging)
 *
 * An instance is the set of all pixels carrying its id (0 = background): it may have holes or
 * several components; nothing is split, filled or relabelled. Pixels of other instances and the
 * virtual pixels beyond the tile edge are non-object.
 *
 * How (one tile): one pass over the map collects every instance's bbox and pixel list (raster
 * order); H is computed once for the tile and its Sobel magnitude G once per boundary pixel (the only
 * place it is used; the same arithmetic as the tile-wide `sobel`, stain.ts); then each instance
 * is processed on its bbox padded by one non-object pixel, which makes every neighbour lookup and
 * the distance transform border-free:
 *  - exact squared depth d² by Meijster's integer EDT (identical to brute force, never approximate);
 *  - boundary B = {d² = 1}; core = {4·d² > D²max}, rim = the rest (integer comparisons only);
 *  - inertia ellipse from exact integer moment sums; A, Q, D exactly (BigInt when they could
 *    exceed 2⁵³, plain numbers when they provably cannot — the same values);
 *  - convex area: hull of the pixel-edge-midpoint diamonds in doubled integer coordinates, only the
 *    leftmost/rightmost pixel of each row contributing (the other diamonds are translates between
 *    them); pixel centres counted row by row from the hull's exact integer half-plane bounds;
 *  - perimeter: skimage's 4-neighbourhood lookup table over border-pixel codes.
 *
 * Gotchas:
 * - The instance map must be non-negative (a negative id throws a RangeError); a map of all zeros
 *   gives no records.
 * - Values are computed for objects touching the tile edge too (flag `touches_border`).
 */
import { hematoxylin, sobelAt } from "./stain.ts";

/** The 11 features in canonical order (§A3). */
export const FEATURE_NAMES = [
  "area",
  "equivalent_diameter",
  "eccentricity",
  "aspect_ratio",
  "solidity",
  "extent",
  "perimeter_ratio",
  "mean_boundary_gradient",
  "hematoxylin_mean",
  "hematoxylin_var",
  "core_rim_diff",
] as const;

/** One of the 11 feature keys. */
export type FeatureName = typeof FEATURE_NAMES[number];

/** Flags of a record, in this order when present (§A4.13). */
export type FeatureFlag = "collinear" | "rim_empty" | "touches_border" | "single_pixel";

/** Auxiliary values of one instance (§A3), for debugging and the worked examples. */
export interface FeatureAux {
  /** `[r0, c0, r1, c1]`, end-exclusive, tile coordinates */
  readonly bbox: readonly [number, number, number, number];
  /** `[mean r, mean c]`, tile coordinates */
  readonly centroid: readonly [number, number];
  readonly major_axis_length: number;
  readonly minor_axis_length: number;
  /** P of §A4.6 */
  readonly perimeter: number;
  readonly convex_area: number;
  readonly bbox_area: number;
  /** D²max */
  readonly max_depth_sq: number;
  /** |B| */
  readonly n_boundary: number;
  readonly n_core: number;
  readonly n_rim: number;
}

/** The features of one instance (§A6): `id`, the 11 features in canonical order, `aux`, `flags`. */
export interface FeatureRecord {
  readonly id: number;
  readonly area: number;
  readonly equivalent_diameter: number;
  readonly eccentricity: number;
  /** null when the pixel centres are collinear (flag `collinear`) */
  readonly aspect_ratio: number | null;
  readonly solidity: number;
  readonly extent: number;
  readonly perimeter_ratio: number;
  readonly mean_boundary_gradient: number;
  readonly hematoxylin_mean: number;
  readonly hematoxylin_var: number;
  /** null when the rim is empty, i.e. D²max ≤ 2 (flag `rim_empty`) */
  readonly core_rim_diff: number | null;
  readonly aux: FeatureAux;
  readonly flags: ReadonlyArray<FeatureFlag>;
}

/** Where a tile came from, for the §A6 header. */
export interface FeaturesMeta {
  readonly image: string;
  readonly inst: string;
  readonly height: number;
  readonly width: number;
}

/** The §A6 top-level JSON object. */
export interface FeaturesJson {
  readonly spec_version: "1.0";
  readonly image: string;
  readonly inst: string;
  readonly height: number;
  readonly width: number;
  readonly feature_names: ReadonlyArray<FeatureName>;
  readonly n_instances: number;
  readonly instances: ReadonlyArray<FeatureRecord>;
}

/** The §A6 output object of one tile. */
export const featuresJson = (records: ReadonlyArray<FeatureRecord>, meta: FeaturesMeta): FeaturesJson => ({
  spec_version: "1.0",
  image: meta.image,
  inst: meta.inst,
  height: meta.height,
  width: meta.width,
  feature_names: FEATURE_NAMES,
  n_instances: records.length,
  instances: records,
});

/** Perimeter weight by border-pixel code `1 + 2·(4-neighbours in E) + 10·(diagonal neighbours in E)` (§A4.6). */
const PERIMETER_WEIGHT: Float64Array = (() => {
  const w = new Float64Array(50); // codes 1..49
  for (const c of [5, 7, 15, 17, 25, 27]) w[c] = 1;
  for (const c of [21, 33]) w[c] = Math.SQRT2;
  for (const c of [13, 23]) w[c] = (1 + Math.SQRT2) / 2;
  return w;
})();

/** Ids up to this many times the pixel count (+ 1024) index the per-id tables directly; larger ones are compacted first. */
const DENSE_FACTOR = 1;

/** Every instance's id, pixel count, bbox and pixel list (CSR: `pixels[offset[k]..offset[k+1])`, raster order). */
interface Collected {
  readonly ids: Int32Array; // [K] ascending
  readonly offset: Int32Array; // [K + 1]
  readonly pixels: Int32Array; // [Σn] tile index r·W + c
  readonly box: Int32Array; // [K, 4] r0, c0, r1, c1
}

/** One pass for counts, one for bboxes and pixel lists. */
const collect = (instances: Int32Array, height: number, width: number): Collected => {
  const n = height * width;
  let maxId = 0;
  for (let i = 0; i < n; i++) {
    const v = instances[i] as number;
    if (v < 0) {
      throw new RangeError(`maskFeatures: negative instance id ${v} at (r=${Math.floor(i / width)}, c=${i % width})`);
    }
    if (v > maxId) maxId = v;
  }
  // per-id tables are indexed by the id itself; huge ids are first compacted to 1..K through a Map
  // (a copy of the map), so that the tables stay O(pixels)
  let map = instances, size = maxId + 1, original: Int32Array | undefined;
  if (maxId > DENSE_FACTOR * n + 1024) {
    const present = new Set<number>();
    for (let i = 0; i < n; i++) if ((instances[i] as number) !== 0) present.add(instances[i] as number);
    original = Int32Array.from([...present].sort((a, b) => a - b));
    const compact = new Map<number, number>();
    original.forEach((v, k) => compact.set(v, k + 1));
    map = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      if ((instances[i] as number) !== 0) map[i] = compact.get(instances[i] as number) as number;
    }
    size = original.length + 1;
  }
  // pixel counts and bboxes per table index, in one raster pass
  const count = new Int32Array(size); // [size]
  const bb = new Int32Array(4 * size); // [size, 4] r0, c0, r1, c1 (valid where count > 0)
  for (let r = 0, i = 0; r < height; r++) {
    for (let c = 0; c < width; c++, i++) {
      const v = map[i] as number;
      if (v === 0) continue;
      const b = 4 * v, m = count[v] as number;
      count[v] = m + 1;
      if (m === 0) {
        bb[b] = r, bb[b + 1] = c, bb[b + 2] = r + 1, bb[b + 3] = c + 1;
        continue;
      }
      // rows only grow in raster order
      if (c < (bb[b + 1] as number)) bb[b + 1] = c;
      bb[b + 2] = r + 1;
      if (c >= (bb[b + 3] as number)) bb[b + 3] = c + 1;
    }
  }
  let K = 0;
  for (let v = 1; v < size; v++) if ((count[v] as number) > 0) K++;
  const ids = new Int32Array(K), offset = new Int32Array(K + 1), box = new Int32Array(4 * K);
  const next = new Int32Array(size); // [size] next free position of each id's pixel list
  for (let v = 1, k = 0; v < size; v++) {
    const m = count[v] as number;
    if (m === 0) continue;
    ids[k] = original === undefined ? v : original[v - 1] as number;
    box.set(bb.subarray(4 * v, 4 * v + 4), 4 * k);
    next[v] = offset[k] as number;
    offset[k + 1] = (offset[k] as number) + m;
    k++;
  }
  const pixels = new Int32Array(offset[K] as number); // raster order within each id
  for (let i = 0; i < n; i++) {
    const v = map[i] as number;
    if (v === 0) continue;
    const at = next[v] as number;
    pixels[at] = i;
    next[v] = at + 1;
  }
  return { ids, offset, pixels, box };
};

/** Scratch buffers sized for the largest padded crop of a tile, reused by every instance. */
class Scratch {
  readonly inside: Uint8Array; // [ph, pw] 1 = object pixel
  readonly border: Uint8Array; // [ph, pw] 1 = boundary pixel
  readonly colDist: Int32Array; // [ph, pw] Meijster phase 1: distance to the nearest non-object pixel in the column
  readonly d2: Int32Array; // [ph, pw] squared depth (object pixels only)
  readonly s: Int32Array; // [pw] Meijster phase 2 parabola sites
  readonly t: Int32Array; // [pw] Meijster phase 2 segment starts
  readonly sg: Int32Array; // [pw] Meijster phase 2 g(s)² of each site
  readonly local: Int32Array; // [n] padded-crop index of each pixel of the instance
  readonly rowMin: Int32Array; // [bh] leftmost local x per row
  readonly rowMax: Int32Array; // [bh] rightmost local x per row
  readonly levelMin: Int32Array; // [2·bh + 1] min doubled X per doubled level Y + 1
  readonly levelMax: Int32Array; // [2·bh + 1]
  readonly hullY: Int32Array; // [4·bh + 2] points, then hull vertices
  readonly hullX: Int32Array;
  readonly ptY: Int32Array;
  readonly ptX: Int32Array;
  constructor(crop: number, side: number, height: number, pixels: number) {
    this.inside = new Uint8Array(crop);
    this.border = new Uint8Array(crop);
    this.colDist = new Int32Array(crop);
    this.d2 = new Int32Array(crop);
    this.s = new Int32Array(side);
    this.t = new Int32Array(side);
    this.sg = new Int32Array(side);
    this.local = new Int32Array(pixels);
    this.rowMin = new Int32Array(height);
    this.rowMax = new Int32Array(height);
    this.levelMin = new Int32Array(2 * height + 1);
    this.levelMax = new Int32Array(2 * height + 1);
    this.ptY = new Int32Array(4 * height + 2);
    this.ptX = new Int32Array(4 * height + 2);
    this.hullY = new Int32Array(8 * height + 4);
    this.hullX = new Int32Array(8 * height + 4);
  }
}

/**
 * Meijster's exact EDT on the padded crop `[ph, pw]` (the pad ring is non-object, so every column
 * and row contains a non-object pixel and all distances are finite): d² of every object pixel.
 */
const squaredDepth = (sc: Scratch, ph: number, pw: number): void => {
  const { inside, colDist: g, d2, s, t, sg } = sc;
  // phase 1: per column, the distance to the nearest non-object pixel in that column (row-major
  // sweeps down then up, so memory is read in order)
  g.fill(0, 0, pw); // pad row
  for (let i = pw, end = ph * pw; i < end; i++) g[i] = inside[i] === 1 ? (g[i - pw] as number) + 1 : 0;
  for (let i = (ph - 1) * pw - 1; i >= 0; i--) {
    const below = (g[i + pw] as number) + 1;
    if (below < (g[i] as number)) g[i] = below;
  }
  // phase 2: per inner row, the lower envelope of the parabolas (x − i)² + g(i)², integers only;
  // sg[q] caches g(s[q])²
  for (let y = 1; y < ph - 1; y++) {
    const row = y * pw;
    let q = 0;
    s[0] = 0, t[0] = 0, sg[0] = (g[row] as number) ** 2;
    for (let u = 1; u < pw; u++) {
      const gu = g[row + u] as number, gu2 = gu * gu;
      while (q >= 0) {
        const sq = s[q] as number, tq = t[q] as number;
        if ((tq - sq) * (tq - sq) + (sg[q] as number) <= (tq - u) * (tq - u) + gu2) break;
        q--;
      }
      if (q < 0) {
        q = 0, s[0] = u, sg[0] = gu2;
      } else {
        const sq = s[q] as number;
        // Sep(s_q, u) = ⌊(u² − s_q² + g(u)² − g(s_q)²) / (2(u − s_q))⌋; small integers, so the
        // float quotient never rounds across an integer
        const w = 1 + Math.floor((u * u - sq * sq + gu2 - (sg[q] as number)) / (2 * (u - sq)));
        if (w < pw) q++, s[q] = u, t[q] = w, sg[q] = gu2;
      }
    }
    for (let u = pw - 1; u >= 0; u--) {
      const sq = s[q] as number;
      d2[row + u] = (u - sq) * (u - sq) + (sg[q] as number);
      if (u === t[q]) q--;
    }
  }
};

/**
 * The exact squared depth d² `[H, W]` of a binary mask `[H, W]` (non-zero = object; 0 on non-object
 * pixels), the world beyond the edge counting as non-object — the §A2 quantity, for tests and debugging.
 */
export const squaredDepthMap = (mask: Uint8Array, height: number, width: number): Int32Array => {
  if (mask.length !== height * width) {
    throw new RangeError(`squaredDepthMap: ${height}×${width} needs ${height * width} values, found ${mask.length}`);
  }
  const ph = height + 2, pw = width + 2;
  const sc = new Scratch(ph * pw, pw, ph, 0);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) sc.inside[(r + 1) * pw + c + 1] = mask[r * width + c] === 0 ? 0 : 1;
  }
  squaredDepth(sc, ph, pw);
  const out = new Int32Array(height * width); // [H, W]
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const li = (r + 1) * pw + c + 1;
      out[r * width + c] = sc.inside[li] === 1 ? sc.d2[li] as number : 0;
    }
  }
  return out;
};

/** ⌊p / q⌋ for integers, q > 0, exact. */
const floorDiv = (p: number, q: number): number => {
  let f = Math.floor(p / q);
  if (f * q > p) f--;
  else if ((f + 1) * q <= p) f++;
  return f;
};

/**
 * §A4.4 convex area: pixel centres of the bbox `[bh, bw]` inside or on the hull of the edge-midpoint
 * diamonds, given the leftmost/rightmost local x of each row (`rowMin > rowMax` for empty rows).
 */
const convexArea = (sc: Scratch, bh: number, bw: number): number => {
  const { rowMin, rowMax, levelMin, levelMax, ptY, ptX, hullY, hullX } = sc;
  // doubled level Y = 2y − 1, 2y, 2y + 1 at index Y + 1; per level only the extreme X matter
  const levels = 2 * bh + 1;
  levelMin.fill(0x7fffffff, 0, levels);
  levelMax.fill(-0x7fffffff, 0, levels);
  const put = (l: number, lo: number, hi: number) => {
    if (lo < (levelMin[l] as number)) levelMin[l] = lo;
    if (hi > (levelMax[l] as number)) levelMax[l] = hi;
  };
  for (let y = 0; y < bh; y++) {
    const lo = rowMin[y] as number, hi = rowMax[y] as number;
    if (lo > hi) continue;
    put(2 * y, 2 * lo, 2 * hi); // (2y − 1, 2x)
    put(2 * y + 1, 2 * lo - 1, 2 * hi + 1); // (2y, 2x ± 1)
    put(2 * y + 2, 2 * lo, 2 * hi); // (2y + 1, 2x)
  }
  // points in (Y, X) lexicographic order, as the monotone chain needs
  let m = 0;
  for (let l = 0; l < levels; l++) {
    const lo = levelMin[l] as number, hi = levelMax[l] as number;
    if (lo > hi) continue;
    ptY[m] = l - 1, ptX[m++] = lo;
    if (hi !== lo) ptY[m] = l - 1, ptX[m++] = hi;
  }
  // Andrew's monotone chain; cross(o, a, b) > 0 at every kept turn; collinear points dropped
  let h = 0;
  const cross = (oy: number, ox: number, ay: number, ax: number, by: number, bx: number) =>
    (ay - oy) * (bx - ox) - (ax - ox) * (by - oy);
  const push = (y: number, x: number, floor: number) => {
    while (
      h >= floor + 2 &&
      cross(hullY[h - 2] as number, hullX[h - 2] as number, hullY[h - 1] as number, hullX[h - 1] as number, y, x) <= 0
    ) h--;
    hullY[h] = y, hullX[h++] = x;
  };
  for (let i = 0; i < m; i++) push(ptY[i] as number, ptX[i] as number, 0);
  const lower = h - 1;
  for (let i = m - 2; i >= 0; i--) push(ptY[i] as number, ptX[i] as number, lower);
  h--; // the last point repeats the first
  // per row Y = 2y: each edge v_i → v_{i+1} gives a·X + b ≥ 0, an exact integer half-line of X
  let count = 0;
  for (let y = 0; y < bh; y++) {
    const Y = 2 * y;
    let lo = 0, hi = 2 * (bw - 1), empty = false;
    for (let i = 0; i < h && !empty; i++) {
      const j = i + 1 === h ? 0 : i + 1;
      const vy = hullY[i] as number, vx = hullX[i] as number;
      const a = (hullY[j] as number) - vy, ex = (hullX[j] as number) - vx;
      const b = -a * vx - ex * (Y - vy);
      if (a > 0) {
        const bound = -floorDiv(b, a); // X ≥ ⌈−b/a⌉
        if (bound > lo) lo = bound;
      } else if (a < 0) {
        const bound = floorDiv(b, -a); // X ≤ ⌊b/(−a)⌋
        if (bound < hi) hi = bound;
      } else if (b < 0) empty = true;
    }
    if (empty || lo > hi) continue;
    // pixel centres are the even X = 2x
    const xlo = -floorDiv(-lo, 2), xhi = floorDiv(hi, 2);
    if (xhi >= xlo) count += xhi - xlo + 1;
  }
  return count;
};

const TWO53 = 2 ** 53, TWO24 = 2 ** 24;

/** §A4.3 from the exact integer moment sums: λ1, λ2 (n² × eigenvalues), Δ, and whether D = 0. */
const inertia = (n: number, Sr: number, Sc: number, Srr: number, Scc: number, Src: number) => {
  let A: number, Q: number, D: number;
  if (n * Math.max(Srr, Scc) < TWO53) {
    const Crr = n * Srr - Sr * Sr, Ccc = n * Scc - Sc * Sc, Crc = n * Src - Sr * Sc;
    if (Math.max(Crr, Ccc, Math.abs(Crc)) < TWO24) {
      // every product < 2⁴⁸ and every sum < 2⁵³: plain numbers give the BigInt values exactly
      A = Crr + Ccc, Q = (Crr - Ccc) * (Crr - Ccc) + 4 * Crc * Crc, D = Crr * Ccc - Crc * Crc;
    } else [A, Q, D] = exact(BigInt(Crr), BigInt(Ccc), BigInt(Crc));
  } else {
    const bn = BigInt(n), bSr = BigInt(Sr), bSc = BigInt(Sc);
    [A, Q, D] = exact(bn * BigInt(Srr) - bSr * bSr, bn * BigInt(Scc) - bSc * bSc, bn * BigInt(Src) - bSr * bSc);
  }
  const delta = Math.sqrt(Q);
  const l1 = (A + delta) / 2;
  const l2 = l1 > 0 ? D / l1 : 0; // avoids the cancellation of (A − Δ)/2
  return { l1, l2, delta, collinear: D === 0 };
};

/** A, Q, D with BigInt, converted with correct rounding (`Number(bigint)`, like Python's float(int)). */
const exact = (Crr: bigint, Ccc: bigint, Crc: bigint): [number, number, number] => [
  Number(Crr + Ccc),
  Number((Crr - Ccc) * (Crr - Ccc) + 4n * Crc * Crc),
  Number(Crr * Ccc - Crc * Crc),
];

/**
 * The features of every instance of a tile, ids ascending.
 * `image` is 8-bit RGB `[H, W, 3]`, `instances` the instance map `[H, W]` (0 = background, ids ≥ 1).
 */
export const maskFeatures = (
  image: Uint8Array,
  instances: Int32Array,
  height: number,
  width: number,
): FeatureRecord[] => {
  if (!Number.isSafeInteger(height) || !Number.isSafeInteger(width) || height < 1 || width < 1) {
    throw new RangeError(`maskFeatures: expected a positive height and width, found ${height}×${width}`);
  }
  if (instances.length !== height * width) {
    throw new RangeError(
      `maskFeatures: instance map ${height}×${width} needs ${height * width} values, found ${instances.length}`,
    );
  }
  if (image.length !== height * width * 3) {
    throw new RangeError(
      `maskFeatures: RGB ${height}×${width}×3 needs ${height * width * 3} values, found ${image.length}`,
    );
  }
  const { ids, offset, pixels, box } = collect(instances, height, width);
  const K = ids.length;
  if (K === 0) return [];
  // H once for the tile; G (which needs H's 3×3 neighbourhood) only on boundary pixels, each once
  const H = hematoxylin(image, height, width); // [H, W]

  let maxCrop = 0, maxSide = 0, maxRows = 0, maxPixels = 0;
  for (let k = 0; k < K; k++) {
    const ph = (box[4 * k + 2] as number) - (box[4 * k] as number) + 2;
    const pw = (box[4 * k + 3] as number) - (box[4 * k + 1] as number) + 2;
    maxCrop = Math.max(maxCrop, ph * pw), maxSide = Math.max(maxSide, pw), maxRows = Math.max(maxRows, ph);
    maxPixels = Math.max(maxPixels, (offset[k + 1] as number) - (offset[k] as number));
  }
  const sc = new Scratch(maxCrop, maxSide, maxRows, maxPixels);
  const { inside, border, d2, local, rowMin, rowMax } = sc;

  const records: FeatureRecord[] = [];
  for (let k = 0; k < K; k++) {
    const r0 = box[4 * k] as number, c0 = box[4 * k + 1] as number;
    const r1 = box[4 * k + 2] as number, c1 = box[4 * k + 3] as number;
    const bh = r1 - r0, bw = c1 - c0, ph = bh + 2, pw = bw + 2;
    const start = offset[k] as number, n = (offset[k + 1] as number) - start;
    inside.fill(0, 0, ph * pw);
    border.fill(0, 0, ph * pw);
    rowMin.fill(bw, 0, bh);
    rowMax.fill(-1, 0, bh);

    // pixels → padded crop, exact integer moment sums, row extents for the hull
    let Sr = 0, Sc = 0, Srr = 0, Scc = 0, Src = 0;
    for (let j = 0; j < n; j++) {
      const p = pixels[start + j] as number;
      const r = Math.floor(p / width), y = r - r0, x = p - r * width - c0;
      const li = (y + 1) * pw + x + 1;
      local[j] = li;
      inside[li] = 1;
      Sr += y, Sc += x, Srr += y * y, Scc += x * x, Src += y * x;
      if (x < (rowMin[y] as number)) rowMin[y] = x;
      if (x > (rowMax[y] as number)) rowMax[y] = x;
    }

    // depth, boundary, H mean and G mean over B
    squaredDepth(sc, ph, pw);
    let maxD2 = 0, nB = 0, sumG = 0, sumH = 0;
    for (let j = 0; j < n; j++) {
      const li = local[j] as number, p = pixels[start + j] as number, dd = d2[li] as number;
      if (dd > maxD2) maxD2 = dd;
      if (dd === 1) {
        border[li] = 1, nB++;
        const r = Math.floor(p / width);
        sumG += sobelAt(H, height, width, r, p - r * width);
      }
      sumH += H[p] as number;
    }
    const mean = sumH / n;

    // variance (two-pass), core/rim means, perimeter codes over the border pixels
    let sq = 0, sumCore = 0, nCore = 0, sumRim = 0, P = 0;
    for (let j = 0; j < n; j++) {
      const li = local[j] as number, h = H[pixels[start + j] as number] as number, dd = d2[li] as number;
      const dh = h - mean;
      sq += dh * dh;
      if (4 * dd > maxD2) sumCore += h, nCore++;
      else sumRim += h;
      if (dd === 1) {
        const n4 = (border[li - pw] as number) + (border[li + pw] as number) + (border[li - 1] as number) +
          (border[li + 1] as number);
        const nd = (border[li - pw - 1] as number) + (border[li - pw + 1] as number) +
          (border[li + pw - 1] as number) + (border[li + pw + 1] as number);
        P += PERIMETER_WEIGHT[1 + 2 * n4 + 10 * nd] as number;
      }
    }
    const nRim = n - nCore;

    const { l1, l2, delta, collinear } = inertia(n, Sr, Sc, Srr, Scc, Src);
    const convex = convexArea(sc, bh, bw);
    const bboxArea = bh * bw;
    const touches = r0 === 0 || c0 === 0 || r1 === height || c1 === width;
    const flags: FeatureFlag[] = [];
    if (collinear) flags.push("collinear");
    if (nRim === 0) flags.push("rim_empty");
    if (touches) flags.push("touches_border");
    if (n === 1) flags.push("single_pixel");

    records.push({
      id: ids[k] as number,
      area: n,
      equivalent_diameter: Math.sqrt(4 * n / Math.PI),
      eccentricity: l1 > 0 ? Math.sqrt(delta / l1) : 0,
      aspect_ratio: collinear ? null : Math.sqrt(l1 / l2),
      solidity: n / convex,
      extent: n / bboxArea,
      perimeter_ratio: P * P / (4 * Math.PI * n),
      mean_boundary_gradient: sumG / nB,
      hematoxylin_mean: mean,
      hematoxylin_var: sq / n,
      core_rim_diff: nRim === 0 ? null : sumCore / nCore - sumRim / nRim,
      aux: {
        bbox: [r0, c0, r1, c1],
        centroid: [r0 + Sr / n, c0 + Sc / n],
        major_axis_length: 4 * Math.sqrt(l1) / n,
        minor_axis_length: 4 * Math.sqrt(l2) / n,
        perimeter: P,
        convex_area: convex,
        bbox_area: bboxArea,
        max_depth_sq: maxD2,
        n_boundary: nB,
        n_core: nCore,
        n_rim: nRim,
      },
      flags,
    });
  }
  return records;
};
