/**
 * From one image's predictions to instances (Mask2Former's panoptic inference): a query is kept
 * when its most likely class is a real class with probability > `scoreThreshold` (`score: "class"`,
 * Mask2Former's rule) or when it is an object with probability 1 − p(no object) > `scoreThreshold`
 * (`score: "objectness"`: a nucleus whose class is uncertain between look-alike classes is still a
 * nucleus; its label is the most likely real class); every pixel goes
 * to the kept query with the largest score × mask probability (so instances never overlap); a
 * query's segment is dropped when it keeps less than `overlapThreshold` of its own mask
 * (probability ≥ `maskThreshold`), or nothing. Masks are upsampled bilinearly to the image size.
 *
 * With a foreground map (models with dense supervision, dense.ts) and `foregroundThreshold`, a
 * pixel the map calls background (σ < threshold) is owned by no query, and a segment that loses
 * more than half of its pixels that way is dropped (a query on background, not a nucleus).
 */
import * as tf from "@tensorflow/tfjs";
import { centreInstances, type DenseDecodeOptions, denseInstances } from "./dense_decoding.ts";

export interface DecodeOptions {
  /** what the threshold and the per-pixel argmax read: the best class probability, or 1 − p(no object) */
  readonly score: "class" | "objectness";
  readonly scoreThreshold: number;
  readonly maskThreshold: number;
  readonly overlapThreshold: number;
  /** with dense maps: pixels below this foreground probability are background (absent: the map is unused) */
  readonly foregroundThreshold?: number;
  /**
   * with dense maps: `dense` takes the instances from the dense maps (dense_decoding.ts, HoVer-Net's
   * way), `hybrid` grows the queries' instances over the dense foreground (and adds foreground no
   * query reaches), `centers` grows the centre head's peaks over the dense foreground; each
   * instance's class comes from the queries' decoding (its pixels' majority)
   */
  readonly instances?: "queries" | "dense" | "hybrid" | "centers";
  readonly dense?: DenseDecodeOptions;
  /**
   * a query's class is the argmax over the real classes of log p(c) + classBias[c] (absent: of p(c)); whether it is a
   * nucleus, and its score, do not change. Shifts the classes' decision boundaries, e.g. towards classes the model
   * under-predicts (chosen on validation images)
   */
  readonly classBias?: ReadonlyArray<number>;
}

/**
 * Mask2Former's panoptic_inference uses the class rule, object_mask_threshold 0.8 and
 * overlap_threshold 0.8. For dense nuclei we default to objectness > 0.5 and overlap 0.5: on the
 * training tiles of a synthetic run (step 900, tiny) that raised bPQ from 0.30 to 0.38 and
 * detection F1 from 0.68 to 0.90 — at 0.8, touching nuclei whose masks still bleed into each other
 * were dropped. Mask2Former's rule is `{ score: "class", overlapThreshold: 0.8 }`.
 */
export const defaultDecodeOptions: DecodeOptions = {
  score: "objectness",
  scoreThreshold: 0.5,
  maskThreshold: 0.5,
  overlapThreshold: 0.5,
};

/** The foreground threshold of `deno task predict` for models with dense supervision. */
export const DEFAULT_FOREGROUND = 0.5;

/** One image's dense maps: `dense` [h·w·3] on the mask grid, the centre logits [ch·cw] on the stride-4 grid. */
export interface DenseMaps {
  readonly dense: ArrayLike<number>;
  readonly centers?: ArrayLike<number>;
  /** models with a type map: `[h·w·(C+1)]` type logits on the dense maps' grid (channel 0 background) */
  readonly types?: ArrayLike<number>;
  readonly ch?: number;
  readonly cw?: number;
}

export interface DecodedInstances {
  readonly instances: Int32Array; // [H, W], 0 = background, ids 1..n
  readonly classOf: Int32Array; // [n + 1], classOf[0] = −1
  readonly scores: Float32Array; // [n + 1], scores[0] = 0
  /** the query each instance came from: [n + 1], queries[0] = −1 */
  readonly queries: Int32Array;
}

/**
 * Source rows (or columns) of a bilinear resize from `size` to `out` pixels, as tf.image.resizeBilinear
 * with alignCorners and halfPixelCenters false: output i reads input i·size/out.
 */
export const bilinearAxis = (size: number, out: number) => {
  const lo = new Int32Array(out), hi = new Int32Array(out), frac = new Float64Array(out), ratio = size / out;
  for (let i = 0; i < out; i++) {
    const source = ratio * i, floor = Math.max(0, Math.floor(source));
    lo[i] = floor, hi[i] = Math.min(size - 1, Math.ceil(source)), frac[i] = source - floor;
  }
  return { lo, hi, frac };
};

/**
 * The value at fractions (`fx`, `fy`) between four neighbouring grid values, in the order of
 * tf.image.resizeBilinear's arithmetic: across the top and bottom rows first, then down.
 */
export const bilinearMix = (
  topLeft: number,
  topRight: number,
  bottomLeft: number,
  bottomRight: number,
  fx: number,
  fy: number,
): number => {
  const top = topLeft + (topRight - topLeft) * fx, bottom = bottomLeft + (bottomRight - bottomLeft) * fx;
  return top + (bottom - top) * fy;
};

/** Decodes logits [Q, C+1] and mask logits [Q, h, w] into an H×W instance map. */
export const decodeInstances = (
  logits: tf.Tensor2D,
  masks: tf.Tensor3D,
  height: number,
  width: number,
  options: DecodeOptions = defaultDecodeOptions,
): DecodedInstances => {
  const [q, c1] = logits.shape, [, h, w] = masks.shape;
  return decodeValues(
    logits.dataSync(),
    masks.dataSync(),
    { queries: q, classes: c1 - 1, h, w },
    height,
    width,
    options,
  );
};

/** The shape of one image's predictions: Q queries, C classes, h × w mask logits. */
export interface PredictionShape {
  readonly queries: number;
  readonly classes: number;
  readonly h: number;
  readonly w: number;
}

/** The softmax of each row of `logits` `[rows, cols]` (float64 inside, as float32). */
const softmaxRows = (logits: ArrayLike<number>, rows: number, cols: number): Float32Array => {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity, sum = 0;
    for (let c = 0; c < cols; c++) max = Math.max(max, logits[r * cols + c] as number);
    for (let c = 0; c < cols; c++) sum += Math.exp((logits[r * cols + c] as number) - max);
    for (let c = 0; c < cols; c++) out[r * cols + c] = Math.exp((logits[r * cols + c] as number) - max) / sum;
  }
  return out;
};

/**
 * `decodeInstances` from values: logits `[Q·(C+1)]` and mask logits `[Q·h·w]` (views of a batch's
 * values do: nothing is copied).
 */
export const decodeValues = (
  logitValues: ArrayLike<number>,
  maskValues: ArrayLike<number>,
  shape: PredictionShape,
  height: number,
  width: number,
  options: DecodeOptions = defaultDecodeOptions,
  maps?: DenseMaps,
): DecodedInstances => {
  const { h, w } = shape, dense = maps?.dense;
  if (dense !== undefined && dense.length !== h * w * 3) {
    throw new RangeError(`decodeValues: expected ${h}×${w}×3 dense values, got ${dense.length}`);
  }
  const decoded = decodeQueries(logitValues, maskValues, shape, height, width, options, dense);
  if (options.instances === undefined || options.instances === "queries" || dense === undefined) return decoded;
  // dense instances, classed by the queries' pixels (an instance without any: by its centroid's query)
  const classified = (instances: Int32Array) => {
    const fallback = (ids: ReadonlyArray<number>) =>
      centroidQueryClasses(instances, ids, logitValues, maskValues, shape, height, width, options.classBias);
    return typed(classifiedDense(instances, decoded, fallback), maps?.types, shape, height, width);
  };
  if (options.instances === "centers") {
    // a model without a centre head decodes its queries
    if (maps?.centers === undefined || maps.ch === undefined || maps.cw === undefined) return decoded;
    const centers = { logits: maps.centers, ch: maps.ch, cw: maps.cw };
    return classified(centreInstances(dense, h, w, centers, height, width, options.dense));
  }
  const seeds = options.instances === "hybrid" ? decoded.instances : undefined;
  return classified(denseInstances(dense, h, w, height, width, options.dense, seeds));
};

/**
 * The classes of instances no kept query owns a pixel of (a centre peak whose query scored below the threshold, or
 * whose pixels a stronger neighbour took): each takes the most likely real class (with `bias`, as decodeQueries) of
 * the query whose mask logit is highest at the instance's centroid — every query, kept or not. Centre queries start
 * at the centre peaks with a locality prior, so that is the query of the instance's own peak. (Before, such an
 * instance took the tile's most frequent class: a sixth of CoNSeP's held-out nuclei, mostly "epithelial".)
 */
export const centroidQueryClasses = (
  instances: Int32Array,
  ids: ReadonlyArray<number>,
  logitValues: ArrayLike<number>,
  maskValues: ArrayLike<number>,
  shape: PredictionShape,
  height: number,
  width: number,
  bias?: ReadonlyArray<number>,
): Map<number, number> => {
  const { queries: q, classes, h, w } = shape, c1 = classes + 1;
  const wanted = new Map(ids.map((id, i) => [id, i]));
  const sy = new Float64Array(ids.length), sx = new Float64Array(ids.length), count = new Float64Array(ids.length);
  for (let p = 0; p < instances.length; p++) {
    const i = wanted.get(instances[p] as number);
    if (i === undefined) continue;
    sy[i] = (sy[i] as number) + Math.floor(p / width), sx[i] = (sx[i] as number) + (p % width);
    count[i] = (count[i] as number) + 1;
  }
  const probs = softmaxRows(logitValues, q, c1); // [Q·(C+1)]
  const rows = bilinearAxis(h, height), cols = bilinearAxis(w, width), out = new Map<number, number>();
  ids.forEach((id, i) => {
    if ((count[i] as number) === 0) return;
    const y = Math.round((sy[i] as number) / (count[i] as number)),
      x = Math.round((sx[i] as number) / (count[i] as number));
    const r0 = (rows.lo[y] as number) * w, r1 = (rows.hi[y] as number) * w, fy = rows.frac[y] as number;
    const k0 = cols.lo[x] as number, k1 = cols.hi[x] as number, fx = cols.frac[x] as number;
    let query = -1, best = -Infinity;
    for (let j = 0; j < q; j++) {
      const base = j * h * w;
      const logit = bilinearMix(
        maskValues[base + r0 + k0] as number,
        maskValues[base + r0 + k1] as number,
        maskValues[base + r1 + k0] as number,
        maskValues[base + r1 + k1] as number,
        fx,
        fy,
      );
      if (logit > best) best = logit, query = j;
    }
    if (query >= 0) out.set(id, realClass(probs, query, classes, bias));
  });
  return out;
};

/**
 * The most likely real class of row `row` of `probs` [Q·(C+1)] (the last column: no object): the argmax over the C
 * classes of p(c), or with `bias` of log p(c) + bias[c] (DecodeOptions.classBias); ties go to the lower class.
 */
const realClass = (probs: Float32Array, row: number, classes: number, bias?: ReadonlyArray<number>): number => {
  let label = 0, top = -Infinity;
  for (let c = 0; c < classes; c++) {
    const pc = probs[row * (classes + 1) + c] as number,
      v = bias === undefined ? pc : Math.log(pc) + (bias[c] as number);
    if (v > top) top = v, label = c;
  }
  return label;
};

/** `decoded` with its classes from the type map `types` when the model has one (`typeMapClasses`). */
const typed = (
  decoded: DecodedInstances,
  types: ArrayLike<number> | undefined,
  shape: PredictionShape,
  height: number,
  width: number,
): DecodedInstances => {
  if (types === undefined) return decoded;
  const { h, w, classes } = shape;
  if (types.length !== h * w * (classes + 1)) {
    throw new RangeError(`decodeValues: expected ${h}×${w}×${classes + 1} type logits, got ${types.length}`);
  }
  return { ...decoded, classOf: typeMapClasses(decoded.instances, types, h, w, height, width, classes) };
};

/**
 * Each instance's class from a type map: the argmax over classes 1…C of its pixels' summed type probabilities
 * (softmax of `types` [h·w·(C+1)], each pixel reading its cell of the h×w grid); returns `[n + 1]`, class − 1
 * (0-based, as the queries' classes), −1 at index 0. HoVer-Net's per-nucleus majority of its NC branch, in soft form.
 */
export const typeMapClasses = (
  instances: Int32Array,
  types: ArrayLike<number>,
  h: number,
  w: number,
  height: number,
  width: number,
  classes: number,
): Int32Array => {
  const k = classes + 1;
  let n = 0;
  for (const id of instances) if (id > n) n = id;
  // per cell, the class probabilities (softmax), computed once
  const probs = new Float32Array(h * w * k);
  for (let cell = 0; cell < h * w; cell++) {
    let max = -Infinity, sum = 0;
    for (let c = 0; c < k; c++) max = Math.max(max, types[cell * k + c] as number);
    for (let c = 0; c < k; c++) sum += probs[cell * k + c] = Math.exp((types[cell * k + c] as number) - max);
    for (let c = 0; c < k; c++) probs[cell * k + c] = (probs[cell * k + c] as number) / sum;
  }
  const votes = new Float64Array((n + 1) * k);
  for (let y = 0; y < height; y++) {
    const row = Math.min(h - 1, Math.floor((y * h) / height)) * w;
    for (let x = 0; x < width; x++) {
      const id = instances[y * width + x] as number;
      if (id === 0) continue;
      const cell = row + Math.min(w - 1, Math.floor((x * w) / width));
      for (let c = 1; c < k; c++) votes[id * k + c] = (votes[id * k + c] as number) + (probs[cell * k + c] as number);
    }
  }
  const classOf = new Int32Array(n + 1);
  classOf[0] = -1;
  for (let id = 1; id <= n; id++) {
    let best = 1;
    for (let c = 2; c < k; c++) if ((votes[id * k + c] as number) > (votes[id * k + best] as number)) best = c;
    classOf[id] = best - 1;
  }
  return classOf;
};

/**
 * Dense instances with classes from the queries' decoding: each instance's class is the most
 * frequent label among its pixels that a query owns, its score their mean score; an instance no
 * query touches takes the label `fallback` gives it (centroidQueryClasses), else the most frequent
 * label of the whole tile (score 0).
 */
const classifiedDense = (
  instances: Int32Array,
  queries: DecodedInstances,
  fallback?: (unowned: ReadonlyArray<number>) => Map<number, number>,
): DecodedInstances => {
  let n = 0;
  for (const id of instances) if (id > n) n = id;
  const labels = queries.classOf.length > 1 ? Math.max(...queries.classOf) + 1 : 1;
  const votes = new Float64Array((n + 1) * labels), scoreSum = new Float64Array(n + 1), tile = new Float64Array(labels);
  for (let p = 0; p < instances.length; p++) {
    const id = instances[p] as number, q = queries.instances[p] as number;
    if (q === 0) continue;
    const label = queries.classOf[q] as number;
    tile[label] = (tile[label] as number) + 1;
    if (id === 0) continue;
    votes[id * labels + label] = (votes[id * labels + label] as number) + 1;
    scoreSum[id] = (scoreSum[id] as number) + (queries.scores[q] as number);
  }
  const argmax = (from: number) => {
    let best = 0;
    for (let c = 1; c < labels; c++) if ((votes[from + c] as number) > (votes[from + best] as number)) best = c;
    return best;
  };
  let tileLabel = 0;
  for (let c = 1; c < labels; c++) if ((tile[c] as number) > (tile[tileLabel] as number)) tileLabel = c;
  const classOf = new Int32Array(n + 1), scores = new Float32Array(n + 1), source = new Int32Array(n + 1).fill(-1);
  classOf[0] = -1;
  const unowned: number[] = [];
  for (let id = 1; id <= n; id++) {
    let owned = 0;
    for (let c = 0; c < labels; c++) owned += votes[id * labels + c] as number;
    if (owned === 0) unowned.push(id);
    classOf[id] = owned > 0 ? argmax(id * labels) : tileLabel;
    scores[id] = owned > 0 ? (scoreSum[id] as number) / owned : 0;
  }
  if (fallback !== undefined && unowned.length > 0) {
    for (const [id, label] of fallback(unowned)) classOf[id] = label;
  }
  return { instances, classOf, scores, queries: source };
};

/** The queries' decoding (the module comment). */
const decodeQueries = (
  logitValues: ArrayLike<number>,
  maskValues: ArrayLike<number>,
  shape: PredictionShape,
  height: number,
  width: number,
  options: DecodeOptions,
  dense: ArrayLike<number> | undefined,
): DecodedInstances => {
  const { queries: q, classes, h, w } = shape, c1 = classes + 1;
  if (logitValues.length !== q * c1 || maskValues.length !== q * h * w) {
    throw new RangeError(
      `decodeValues: expected ${q}×${c1} logits and ${q}×${h}×${w} mask logits, got ${logitValues.length} and ${maskValues.length}`,
    );
  }
  const probs = softmaxRows(logitValues, q, c1); // [Q·(C+1)]
  const bias = options.classBias;
  if (bias !== undefined && bias.length !== classes) {
    throw new RangeError(`decodeValues: --class-bias has ${bias.length} values for this model's ${classes} classes`);
  }
  const kept: Array<{ query: number; label: number; score: number }> = [];
  for (let i = 0; i < q; i++) {
    const noObject = probs[i * c1 + classes] as number;
    let best = -1;
    for (let c = 0; c < classes; c++) best = Math.max(best, probs[i * c1 + c] as number);
    const label = realClass(probs, i, classes, bias);
    // objectness: the (biased) best real class labels the nucleus; class: the no-object class competes too
    if (options.score === "class" && noObject > best) continue;
    const score = options.score === "objectness" ? 1 - noObject : best;
    if (score > options.scoreThreshold) kept.push({ query: i, label, score });
  }
  const n = height * width;
  const instances = new Int32Array(n);
  if (kept.length === 0) {
    return {
      instances,
      classOf: Int32Array.from([-1]),
      scores: Float32Array.from([0]),
      queries: Int32Array.from([-1]),
    };
  }
  // upsampling and the per-pixel argmax run in JS, one query at a time, over the part of the tile
  // where the query can matter (tfjs's gather + resizeBilinear on [H, W, K] took ≈ 1.6 s per 256²
  // tile with ~60 kept queries on wasm). A pixel is owned only with a value score × prob ≥
  // scoreThreshold × maskThreshold (kept scores exceed scoreThreshold, owned probs reach
  // maskThreshold), so where a query's value stays below that it can neither own the pixel nor
  // count towards its area, and it only ever beats queries that cannot own it either: skipping
  // it there leaves the result unchanged.
  const k = kept.length, logitsAll = maskValues; // [Q·h·w]
  const rows = bilinearAxis(h, height), cols = bilinearAxis(w, width);
  const owner = new Int32Array(n).fill(-1), own = new Int32Array(k), area = new Int32Array(k);
  const bestValue = new Float64Array(n), bestProb = new Float64Array(n);
  const floor = options.scoreThreshold * options.maskThreshold;
  for (let j = 0; j < k; j++) {
    const { query, score } = kept[j] as { query: number; score: number };
    const base = query * h * w, t = floor / score;
    const cutoff = t > 0 ? Math.log(t / (1 - t)) : -Infinity; // logit where score × prob = floor
    let rlo = h, rhi = -1, clo = w, chi = -1;
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        if ((logitsAll[base + r * w + c] as number) < cutoff) continue;
        if (r < rlo) rlo = r;
        if (r > rhi) rhi = r;
        if (c < clo) clo = c;
        if (c > chi) chi = c;
      }
    }
    if (rhi < 0) continue;
    const xs = [] as number[];
    for (let x = 0; x < width; x++) if ((cols.hi[x] as number) >= clo && (cols.lo[x] as number) <= chi) xs.push(x);
    let inside = 0;
    for (let y = 0; y < height; y++) {
      if ((rows.hi[y] as number) < rlo || (rows.lo[y] as number) > rhi) continue;
      const r0 = base + (rows.lo[y] as number) * w, r1 = base + (rows.hi[y] as number) * w, fy = rows.frac[y] as number;
      for (const x of xs) {
        const c0 = cols.lo[x] as number, c1 = cols.hi[x] as number, fx = cols.frac[x] as number;
        const logit = bilinearMix(
          logitsAll[r0 + c0] as number,
          logitsAll[r0 + c1] as number,
          logitsAll[r1 + c0] as number,
          logitsAll[r1 + c1] as number,
          fx,
          fy,
        );
        const prob = 1 / (1 + Math.exp(-logit));
        if (prob >= options.maskThreshold) inside++;
        const p = y * width + x, value = score * prob;
        // strict >: on a tie the earlier query keeps the pixel
        if (value > (bestValue[p] as number)) bestValue[p] = value, bestProb[p] = prob, owner[p] = j;
      }
    }
    area[j] = inside;
  }
  for (let p = 0; p < n; p++) {
    const j = owner[p] as number;
    if (j < 0) continue;
    if ((bestProb[p] as number) >= options.maskThreshold) own[j] = (own[j] as number) + 1;
    else owner[p] = -1;
  }
  // the foreground map takes background pixels from their owners (after the overlap rule's count)
  const gated = new Int32Array(k);
  const fgCutoff = options.foregroundThreshold === undefined || dense === undefined
    ? undefined
    : Math.log(options.foregroundThreshold / (1 - options.foregroundThreshold)); // a logit
  for (let p = 0; p < n; p++) {
    const j = owner[p] as number;
    if (j < 0) continue;
    if (fgCutoff !== undefined && dense !== undefined) {
      const y = Math.floor(p / width), x = p % width;
      const r0 = (rows.lo[y] as number) * w, r1 = (rows.hi[y] as number) * w;
      const c0 = cols.lo[x] as number, cc1 = cols.hi[x] as number;
      const logit = bilinearMix(
        dense[(r0 + c0) * 3] as number,
        dense[(r0 + cc1) * 3] as number,
        dense[(r1 + c0) * 3] as number,
        dense[(r1 + cc1) * 3] as number,
        cols.frac[x] as number,
        rows.frac[y] as number,
      );
      if (logit < fgCutoff) {
        owner[p] = -1;
        continue;
      }
    }
    gated[j] = (gated[j] as number) + 1;
  }
  const idOf = new Int32Array(k).fill(0), classOf = [-1], scores = [0], queries = [-1];
  for (let j = 0; j < k; j++) {
    if (
      (area[j] as number) > 0 && (own[j] as number) > 0 &&
      (own[j] as number) / (area[j] as number) >= options.overlapThreshold &&
      2 * (gated[j] as number) >= (own[j] as number)
    ) {
      classOf.push((kept[j] as { label: number }).label);
      scores.push((kept[j] as { score: number }).score);
      queries.push((kept[j] as { query: number }).query);
      idOf[j] = classOf.length - 1;
    }
  }
  for (let p = 0; p < n; p++) if ((owner[p] as number) >= 0) instances[p] = idOf[owner[p] as number] as number;
  return {
    instances,
    classOf: Int32Array.from(classOf),
    scores: Float32Array.from(scores),
    queries: Int32Array.from(queries),
  };
};
