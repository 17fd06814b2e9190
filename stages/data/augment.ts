/**
 * Training augmentation as pure functions of a sample and a seeded RNG: random crop, horizontal and
 * vertical flips, rotation by a multiple of 90°, and HED stain jitter. Geometry moves the image and
 * the instance map together; a crop relabels the surviving instances 1..n and keeps their classes.
 *
 * HED jitter (Tellez et al., 2018): optical density OD = −ln((I + 1) / 256) is unmixed into
 * hematoxylin, eosin and DAB with Ruifrok & Johnston's stain vectors, each stain is scaled by
 * α ∈ [1 − σ, 1 + σ] and shifted by β ∈ [−σ, σ], and the result is mixed back.
 */
import { type Rng } from "./random.ts";
import { relabelContiguous, type Sample } from "./sample.ts";

export interface AugmentOptions {
  /** crop to this square size (when the sample is larger); undefined = no crop */
  readonly crop?: number;
  readonly flips?: boolean;
  readonly rot90?: boolean;
  /** HED jitter strength σ (0 = off; Tellez et al. use 0.05) */
  readonly hedSigma?: number;
  /** crops placed on a nucleus (`focusedCrop`) with this probability, uniform otherwise (default 0) */
  readonly focus?: FocusOptions;
}

export interface FocusOptions {
  readonly probability: number;
  /** a nucleus of class c is drawn with weight `classWeights[c]` (1 where missing) */
  readonly classWeights: ArrayLike<number>;
}

/**
 * The top-left of an h × w crop of `s` that holds a nucleus drawn by class weight (its centroid at
 * a uniform position in the crop), or undefined when `s` has none of positive weight. Why: uniform
 * crops of CoNSeP spend many steps on stroma and glass while touching nuclei and the rare classes
 * (the merged "other") are where PQ and type F1 are lost; HoVer-Net-style patch extraction and
 * class-balanced sampling put the training views there.
 */
export const focusedCrop = (
  s: Sample,
  rng: Rng,
  h: number,
  w: number,
  classWeights: ArrayLike<number>,
): { top: number; left: number } | undefined => {
  const n = s.classOf.length - 1,
    sy = new Float64Array(n + 1),
    sx = new Float64Array(n + 1),
    count = new Int32Array(n + 1);
  for (let p = 0; p < s.instances.length; p++) {
    const id = s.instances[p] as number;
    if (id <= 0 || id > n) continue;
    sy[id] = (sy[id] as number) + Math.floor(p / s.width), sx[id] = (sx[id] as number) + p % s.width;
    count[id] = (count[id] as number) + 1;
  }
  const weight = new Float64Array(n + 1);
  let total = 0;
  for (let id = 1; id <= n; id++) {
    if (count[id] === 0) continue;
    const c = s.classOf[id] as number;
    weight[id] = c >= 0 && c < classWeights.length ? Math.max(0, classWeights[c] as number) : 1;
    total += weight[id] as number;
  }
  if (!(total > 0)) return undefined;
  let r = rng() * total, id = 0, last = 0;
  for (let i = 1; i <= n && id === 0; i++) {
    if (!((weight[i] as number) > 0)) continue;
    last = i, r -= weight[i] as number;
    if (r < 0) id = i;
  }
  if (id === 0) id = last; // r rounded past the last weight
  const cy = Math.round((sy[id] as number) / (count[id] as number)),
    cx = Math.round((sx[id] as number) / (count[id] as number));
  const clamp = (v: number, hi: number) => Math.min(hi, Math.max(0, v));
  return {
    top: clamp(cy - Math.floor(rng() * h), s.height - h),
    left: clamp(cx - Math.floor(rng() * w), s.width - w),
  };
};

/** Crops [top, top + h) × [left, left + w), relabelling instances. */
export const crop = (s: Sample, top: number, left: number, h: number, w: number): Sample => {
  if (top < 0 || left < 0 || top + h > s.height || left + w > s.width) {
    throw new RangeError(`crop: ${h}×${w} at (${top}, ${left}) does not fit in ${s.height}×${s.width}`);
  }
  const image = new Uint8Array(h * w * 3), map = new Int32Array(h * w);
  for (let y = 0; y < h; y++) {
    const src = (top + y) * s.width + left;
    image.set(s.image.subarray(src * 3, (src + w) * 3), y * w * 3);
    map.set(s.instances.subarray(src, src + w), y * w);
  }
  const { instances, oldIds } = relabelContiguous(map);
  const classOf = Int32Array.from([-1, ...oldIds.map((old) => s.classOf[old] as number)]);
  return { ...s, height: h, width: w, image, instances, classOf };
};

/** Mirrors left–right (`horizontal`) or top–bottom. */
export const flip = (s: Sample, horizontal: boolean): Sample => {
  const { height: h, width: w } = s;
  const image = new Uint8Array(s.image.length), instances = new Int32Array(s.instances.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const from = horizontal ? y * w + (w - 1 - x) : (h - 1 - y) * w + x, to = y * w + x;
      instances[to] = s.instances[from] as number;
      image[to * 3] = s.image[from * 3] as number;
      image[to * 3 + 1] = s.image[from * 3 + 1] as number;
      image[to * 3 + 2] = s.image[from * 3 + 2] as number;
    }
  }
  return { ...s, image, instances };
};

/** Rotates by 90° counter-clockwise `k` times (as numpy's rot90): [H, W] → [W, H] for odd k. */
export const rot90 = (s: Sample, k: number): Sample => {
  let out = s;
  for (let t = 0; t < ((k % 4) + 4) % 4; t++) {
    const { height: h, width: w } = out;
    const image = new Uint8Array(out.image.length), instances = new Int32Array(out.instances.length);
    // new[y'][x'] = old[x'][w - 1 - y'], new shape [w, h]
    for (let y2 = 0; y2 < w; y2++) {
      for (let x2 = 0; x2 < h; x2++) {
        const from = x2 * w + (w - 1 - y2), to = y2 * h + x2;
        instances[to] = out.instances[from] as number;
        image[to * 3] = out.image[from * 3] as number;
        image[to * 3 + 1] = out.image[from * 3 + 1] as number;
        image[to * 3 + 2] = out.image[from * 3 + 2] as number;
      }
    }
    out = { ...out, height: w, width: h, image, instances };
  }
  return out;
};

// Ruifrok & Johnston stain OD vectors (rows: hematoxylin, eosin, DAB), each normalised; row-major 3×3
const STAINS = Float64Array.from([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]].flatMap((v) => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}));

/** The inverse of a row-major 3×3 matrix (adjugate / determinant). */
const invert3 = (m: Float64Array): Float64Array => {
  const [a, b, c, d, e, f, g, h, i] = Array.from(m, (x) => x) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
  return Float64Array.from([
    e * i - f * h,
    c * h - b * i,
    b * f - c * e,
    f * g - d * i,
    a * i - c * g,
    c * d - a * f,
    d * h - e * g,
    b * g - a * h,
    a * e - b * d,
  ].map((x) => x / det));
};
const UNMIX = invert3(STAINS); // [r, g, b] OD (row) · UNMIX = [H, E, DAB] concentrations

/** Scales and shifts each stain's concentration: `alpha[k]`, `beta[k]` for H, E, DAB. */
export const hedJitter = (
  s: Sample,
  alpha: readonly [number, number, number],
  beta: readonly [number, number, number],
): Sample => {
  const odOf = new Float64Array(256);
  for (let v = 0; v < 256; v++) odOf[v] = -Math.log((v + 1) / 256);
  const image = new Uint8Array(s.image.length);
  const od = new Float64Array(3), conc = new Float64Array(3);
  for (let p = 0; p < s.height * s.width; p++) {
    for (let ch = 0; ch < 3; ch++) od[ch] = odOf[s.image[p * 3 + ch] as number] as number;
    for (let k = 0; k < 3; k++) {
      let c = 0;
      for (let ch = 0; ch < 3; ch++) c += (od[ch] as number) * (UNMIX[ch * 3 + k] as number);
      conc[k] = c * (alpha[k] as number) + (beta[k] as number);
    }
    for (let ch = 0; ch < 3; ch++) {
      let o = 0;
      for (let k = 0; k < 3; k++) o += (conc[k] as number) * (STAINS[k * 3 + ch] as number);
      image[p * 3 + ch] = Math.min(255, Math.max(0, Math.round(256 * Math.exp(-o) - 1)));
    }
  }
  return { ...s, image };
};

/** One random augmentation of `s` (the RNG is consumed in a fixed order, so it is reproducible). */
export const augment = (s: Sample, rng: Rng, options: AugmentOptions = {}): Sample => {
  let out = s;
  if (options.crop !== undefined && (s.height > options.crop || s.width > options.crop)) {
    const h = Math.min(options.crop, s.height), w = Math.min(options.crop, s.width);
    // the focus draws only when asked for, so runs without it keep their random stream
    const focus = options.focus !== undefined && options.focus.probability > 0 && rng() < options.focus.probability
      ? focusedCrop(s, rng, h, w, options.focus.classWeights)
      : undefined;
    out = focus !== undefined
      ? crop(out, focus.top, focus.left, h, w)
      : crop(out, Math.floor(rng() * (s.height - h + 1)), Math.floor(rng() * (s.width - w + 1)), h, w);
  }
  if (options.flips ?? true) {
    if (rng() < 0.5) out = flip(out, true);
    if (rng() < 0.5) out = flip(out, false);
  }
  if (options.rot90 ?? true) out = rot90(out, Math.floor(rng() * 4));
  const sigma = options.hedSigma ?? 0;
  if (sigma > 0) {
    const a = () => 1 - sigma + 2 * sigma * rng(), b = () => -sigma + 2 * sigma * rng();
    out = hedJitter(out, [a(), a(), a()], [b(), b(), b()]);
  }
  return out;
};
