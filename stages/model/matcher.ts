/**
 * Query ↔ instance matching for set-prediction training (Mask2Former's Hungarian matcher), and the
 * bilinear point sampler that both the matcher and the losses use.
 *
 * Mental model: every predicted query is priced against every target instance — class cost from
 * the softmax, mask costs (sigmoid BCE and dice) on a few thousand random points rather than on
 * whole masks — and the cheapest one-to-one assignment wins. Matching is a decision, not a
 * function to differentiate: it reads values (`dataSync`) and returns plain indices.
 *
 * Gotchas: point coordinates are `(x, y)` in `[0, 1]` (x along the width), as `grid_sample` takes
 * them; sampling uses `align_corners=False` with zero padding, so a point at the very edge of a
 * mask reads half of the border pixel. Predictions and targets may have different sizes: the same
 * normalised point lands on each at its own resolution.
 */
import * as tf from "@tensorflow/tfjs";
import { linearSumAssignment } from "../evaluation/hungarian.ts";
import { mulberry32, type Rng } from "../data/random.ts";
import { softplus } from "./softplus.ts";

/** The instances of one image: class ids and binary masks. */
export interface InstanceTargets {
  /** `[N]` class id of each instance, in `[0, C)`. */
  readonly classes: Int32Array;
  /** `[N, H, W]` 0/1 masks (any numeric dtype). */
  readonly masks: tf.Tensor3D;
}

/** Matcher weights and sampling. */
export interface MatcherOptions {
  /** Weight of the class cost (−softmax probability of the target class). */
  readonly costClass: number;
  /** Weight of the sigmoid BCE cost, averaged over the sampled points. */
  readonly costMask: number;
  /** Weight of the dice cost. */
  readonly costDice: number;
  /** How many uniformly random points price the mask costs. */
  readonly points: number;
  /** Seed of the point sampler. */
  readonly seed: number;
}

// Mask2Former, matcher.py + maskformer_model.py: cost weights 2/5/5, 112·112 = 12544 points
export const defaultMatcherOptions: MatcherOptions = { costClass: 2, costMask: 5, costDice: 5, points: 12544, seed: 0 };

/** One image's assignment: query `queryIndex[i]` predicts target `targetIndex[i]`, queries ascending. */
export interface Match {
  readonly queryIndex: Int32Array;
  readonly targetIndex: Int32Array;
}

/** `count` uniformly random `(x, y)` points in `[0, 1)²`, flat `[count, 2]`. */
export const randomPoints = (rng: Rng, count: number): Float32Array => {
  const xy = new Float32Array(count * 2);
  for (let i = 0; i < xy.length; i++) xy[i] = rng();
  return xy;
};

/**
 * The four bilinear taps of point `(x, y)` on an `h × w` grid into `index` / `weight` (4 each):
 * flat indices into `[h·w]`; taps outside the grid get weight 0 (zero padding) and index 0.
 */
// PyTorch, grid_sample(align_corners=False): pixel x = ((gx + 1)·w − 1)/2 with gx = 2x − 1, i.e. x·w − ½
const tapsAt = (x: number, y: number, h: number, w: number, index: Int32Array, weight: Float64Array): void => {
  const px = x * w - 0.5, py = y * h - 0.5;
  const x0 = Math.floor(px), y0 = Math.floor(py);
  const fx = px - x0, fy = py - y0;
  for (let k = 0; k < 4; k++) {
    const r = y0 + (k >> 1), c = x0 + (k & 1);
    const inside = r >= 0 && r < h && c >= 0 && c < w;
    index[k] = inside ? r * w + c : 0;
    weight[k] = inside ? (k & 1 ? fx : 1 - fx) * (k >> 1 ? fy : 1 - fy) : 0;
  }
};

/**
 * The four bilinear taps of each point on an `h × w` grid: flat indices into `[h·w]` and weights,
 * both `[P, 4]`; taps outside the grid get weight 0 (zero padding) and a harmless index 0.
 */
export const bilinearTaps = (xy: Float32Array, h: number, w: number): { index: Int32Array; weight: Float32Array } => {
  const P = xy.length / 2;
  const index = new Int32Array(P * 4), weight = new Float32Array(P * 4);
  const i4 = new Int32Array(4), w4 = new Float64Array(4);
  for (let p = 0; p < P; p++) {
    tapsAt(xy[2 * p] as number, xy[2 * p + 1] as number, h, w, i4, w4);
    index.set(i4, 4 * p);
    weight.set(w4, 4 * p);
  }
  return { index, weight };
};

/** Where `K` masks of `h × w` are read: mask `k` is row `rows[k]` (default `k`) of the data, with its own or shared points. */
export interface SampleLayout {
  readonly K: number;
  readonly P: number;
  readonly h: number;
  readonly w: number;
  /** flat `(x, y)`: `[P, 2]` when `shared`, else `[K, P, 2]` */
  readonly xy: Float32Array;
  readonly shared: boolean;
  readonly rows: Int32Array | undefined;
}

/** Bilinear values `[K·P]` of `data` (rows of `h·w`) at the points of `layout`. */
export const sampleValues = (data: ArrayLike<number>, layout: SampleLayout): Float32Array => {
  const { K, P, h, w, xy, shared, rows } = layout;
  const out = new Float32Array(K * P);
  const i4 = new Int32Array(4), w4 = new Float64Array(4);
  for (let k = 0; k < K; k++) {
    const base = (rows === undefined ? k : rows[k] as number) * h * w, from = shared ? 0 : k * P * 2;
    for (let p = 0; p < P; p++) {
      const x = xy[from + 2 * p] as number, y = xy[from + 2 * p + 1] as number;
      const px = x * w - 0.5, py = y * h - 0.5;
      const x0 = Math.floor(px), y0 = Math.floor(py);
      if (x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h) { // all four taps inside: the common case
        const fx = px - x0, fy = py - y0, i = base + y0 * w + x0;
        const top = (1 - fx) * (data[i] as number) + fx * (data[i + 1] as number);
        const bottom = (1 - fx) * (data[i + w] as number) + fx * (data[i + w + 1] as number);
        out[k * P + p] = (1 - fy) * top + fy * bottom;
        continue;
      }
      tapsAt(x, y, h, w, i4, w4);
      let v = 0;
      for (let t = 0; t < 4; t++) v += (w4[t] as number) * (data[base + (i4[t] as number)] as number);
      out[k * P + p] = v;
    }
  }
  return out;
};

/** The gradient of `sampleValues` for `dy` `[K·P]`: the tap weights scatter-added into `[size]`. */
const scatterValues = (dy: ArrayLike<number>, layout: SampleLayout, size: number): Float32Array => {
  const { K, P, h, w, xy, shared, rows } = layout;
  const grad = new Float32Array(size);
  const i4 = new Int32Array(4), w4 = new Float64Array(4);
  for (let k = 0; k < K; k++) {
    const base = (rows === undefined ? k : rows[k] as number) * h * w, from = shared ? 0 : k * P * 2;
    for (let p = 0; p < P; p++) {
      const g = dy[k * P + p] as number;
      if (g === 0) continue;
      tapsAt(xy[from + 2 * p] as number, xy[from + 2 * p + 1] as number, h, w, i4, w4);
      for (let t = 0; t < 4; t++) {
        const i = base + (i4[t] as number);
        grad[i] = (grad[i] as number) + (w4[t] as number) * g;
      }
    }
  }
  return grad;
};

/**
 * Bilinear values of `masks` `[R, h, w]` at points `coords` — `[P, 2]` shared by all masks or
 * `[K, P, 2]` one set per mask, `(x, y)` in `[0, 1]` — as `[K, P]` (float32), where mask `k` is
 * `masks[rows[k]]` (default: every mask, `K = R`). Differentiable in `masks`; the coordinates are
 * read as constants.
 *
 * Why plain loops: the values are read once (`dataSync`) and each point touches four numbers; as
 * tensor ops (gather of the taps, multiply, sum, and a scatter for the gradient) the same work was
 * a third of the loss's time on the WASM backend, and tfjs's own gather gradient
 * (UnsortedSegmentSum) costs segments × indices on the `cpu` backend.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { pointSample } from "./matcher.ts";
 * const v = pointSample(tf.tensor3d([[[0, 1], [2, 3]]]), tf.tensor2d([[0.5, 0.5]])); // [1, 1]
 * // v = [[1.5]]: the centre of a 2×2 mask averages its four pixels
 * ```
 */
// Mask2Former, point_features.py: point_sample = grid_sample(2·coords − 1, align_corners=False)
export const pointSample = (
  masks: tf.Tensor3D,
  coords: tf.Tensor2D | tf.Tensor3D,
  rows?: Int32Array,
): tf.Tensor2D => {
  const [R, h, w] = masks.shape;
  const K = rows?.length ?? R;
  const shared = coords.rank === 2;
  const P = shared ? coords.shape[0] : coords.shape[1];
  const last = coords.shape[coords.rank - 1];
  if (last !== 2 || (!shared && coords.shape[0] !== K)) {
    throw new RangeError(
      `pointSample: coords must be [P, 2] or [${K}, P, 2] for masks [${masks.shape}], got [${coords.shape}]`,
    );
  }
  const bad = rows?.find((r) => r < 0 || r >= R);
  if (bad !== undefined) throw new RangeError(`pointSample: row ${bad} outside the ${R} masks`);
  if (K === 0 || P === 0) return tf.zeros([K, P]); // [K, P]
  const layout: SampleLayout = { K, P, h, w, xy: Float32Array.from(coords.dataSync()), shared, rows };
  if (masks.dtype !== "float32") return tf.tensor2d(sampleValues(masks.dataSync(), layout), [K, P]); // [K, P]
  const sample = tf.customGrad((...inputs) => {
    const x = inputs[0] as tf.Tensor3D; // [R, h, w]
    const value = tf.tensor2d(sampleValues(x.dataSync(), layout), [K, P]); // [K, P]
    const gradFunc = (dy: tf.Tensor) => tf.tensor3d(scatterValues(dy.dataSync(), layout, x.size), [R, h, w]);
    return { value, gradFunc };
  });
  return sample(masks) as tf.Tensor2D;
};

/** `values` as bytes when every value is 0 or 1, else `undefined`. */
const asBytes = (values: ArrayLike<number>): Uint8Array | undefined => {
  const bytes = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v !== 0 && v !== 1) return undefined;
    bytes[i] = v;
  }
  return bytes;
};

/** Target mask values by tensor: tensors are immutable, so a tensor's values never go stale. */
const targetValues = new WeakMap<tf.Tensor, ArrayLike<number>>();

/**
 * `pointSample` for target masks, which are constants: no gradient, and their values are read once
 * per tensor rather than once per layer and image. Returns `[K, P]` values, flat.
 */
export const sampleTargets = (
  masks: tf.Tensor3D,
  layout: Omit<SampleLayout, "h" | "w">,
): Float32Array => {
  let values = targetValues.get(masks);
  if (values === undefined) {
    const read = masks.dataSync();
    // 0/1 masks as bytes: a quarter of the memory, so the random reads of sampling miss the cache less
    values = asBytes(read) ?? read;
    targetValues.set(masks, values);
  }
  return sampleValues(values, { ...layout, h: masks.shape[1], w: masks.shape[2] });
};

/** Mask logits `[K, h, w]`: a tensor, or values already read from one (a view of a batch's, no copy). */
export type MaskLogits =
  | tf.Tensor3D
  | { readonly values: Float32Array; readonly shape: readonly [number, number, number] };

/** The values and shape of mask logits (reads a tensor once). */
export const maskValues = (m: MaskLogits): { values: Float32Array; shape: readonly [number, number, number] } =>
  m instanceof tf.Tensor ? { values: m.dataSync() as Float32Array, shape: m.shape } : m;

/**
 * The matching cost `[Q, N]` (row-major, float64 copy) of one image at the points `coords`
 * `[P, 2]`: `costClass·(−p_class) + costMask·BCE + costDice·dice`.
 */
// Mask2Former, matcher.py: batch_sigmoid_ce_loss / batch_dice_loss on shared random points
export const matchingCost = (
  predLogits: tf.Tensor2D,
  predMasks: MaskLogits,
  targets: InstanceTargets,
  coords: tf.Tensor2D,
  options: Pick<MatcherOptions, "costClass" | "costMask" | "costDice"> = defaultMatcherOptions,
): Float64Array => {
  const [Q, C1] = predLogits.shape;
  const N = targets.classes.length;
  const masks = maskValues(predMasks);
  if (masks.shape[0] !== Q || targets.masks.shape[0] !== N) {
    throw new RangeError(
      `matchingCost: expected predMasks [${Q}, h, w] and target masks [${N}, H, W], ` +
        `got [${masks.shape}] and [${targets.masks.shape}]`,
    );
  }
  const bad = targets.classes.find((c) => c < 0 || c >= C1 - 1);
  if (bad !== undefined) throw new RangeError(`matchingCost: target class ${bad} outside [0, ${C1 - 1})`);
  if (N === 0 || Q === 0) return new Float64Array(0);
  const P = coords.shape[0];
  const cost = tf.tidy(() => {
    const prob = tf.softmax(predLogits); // [Q, C+1]
    const classCost = tf.neg(tf.gather(prob, tf.tensor1d(targets.classes, "int32"), 1)); // [Q, N]
    const xy = Float32Array.from(coords.dataSync());
    const [, h, w] = masks.shape;
    // a decision, not a differentiated value: plain values, nothing recorded on a gradient tape
    const out = tf.tensor2d(
      sampleValues(masks.values, { K: Q, P, h, w, xy, shared: true, rows: undefined }),
      [Q, P],
    ); // [Q, P]
    const tgt = tf.tensor2d(sampleTargets(targets.masks, { K: N, P, xy, shared: true, rows: undefined }), [N, P]); // [N, P]
    // BCE with logits x, label t: t·softplus(−x) + (1 − t)·softplus(x) = softplus(x) − t·x, as
    // softplus(−x) = softplus(x) − x: one softplus, and one product with the targets for BCE and dice
    const prob2 = tf.sigmoid(out); // [Q, P]
    const products = tf.matMul(tf.concat([out, prob2], 0), tgt, false, true); // [2Q, N]
    const [xt, pt] = tf.split(products, 2, 0) as [tf.Tensor2D, tf.Tensor2D]; // [Q, N] each
    const bce = tf.div(tf.sub(tf.sum(softplus(out), 1, true), xt), P); // [Q, N]
    const numerator = tf.mul(2, pt); // [Q, N]
    const denominator = tf.add(tf.sum(prob2, 1, true), tf.reshape(tf.sum(tgt, 1), [1, N])); // [Q, N]
    const dice = tf.sub(1, tf.div(tf.add(numerator, 1), tf.add(denominator, 1))); // [Q, N]
    return tf.addN([
      tf.mul(options.costClass, classCost),
      tf.mul(options.costMask, bce),
      tf.mul(options.costDice, dice),
    ]); // [Q, N]
  });
  const values = Float64Array.from(cost.dataSync());
  cost.dispose();
  return values;
};

/**
 * Hungarian matching of one image's predictions to its targets: `predLogits` `[Q, C+1]` (last
 * class = no object), `predMasks` `[Q, h, w]` mask logits, targets `[N]` classes and `[N, H, W]`
 * masks. Returns `min(Q, N)` pairs; no gradients flow through it.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { matchQueries } from "./matcher.ts";
 * const masks = tf.tensor3d([[[1, 0], [0, 0]]]); // [N=1, 2, 2]
 * const { queryIndex } = matchQueries(tf.tensor2d([[0, 5], [5, 0]]), tf.zeros([2, 2, 2]), {
 *   classes: new Int32Array([0]),
 *   masks,
 * }, { points: 64 });
 * // queryIndex = [1]: query 1 is confident in class 0
 * ```
 */
export const matchQueries = (
  predLogits: tf.Tensor2D,
  predMasks: MaskLogits,
  targets: InstanceTargets,
  options: Partial<MatcherOptions> = {},
): Match => {
  const o = { ...defaultMatcherOptions, ...options };
  const Q = predLogits.shape[0], N = targets.classes.length;
  if (Q === 0 || N === 0) return { queryIndex: new Int32Array(0), targetIndex: new Int32Array(0) };
  const coords = tf.tensor2d(randomPoints(mulberry32(o.seed), o.points), [o.points, 2]); // [P, 2]
  const cost = matchingCost(predLogits, predMasks, targets, coords, o);
  coords.dispose();
  const { rows, cols } = linearSumAssignment(cost, Q, N);
  return { queryIndex: rows, targetIndex: cols };
};
