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
 * The four bilinear taps of each point on an `h × w` grid: flat indices into `[h·w]` and weights,
 * both `[P, 4]`; taps outside the grid get weight 0 (zero padding) and a harmless index 0.
 */
// PyTorch, grid_sample(align_corners=False): pixel x = ((gx + 1)·w − 1)/2 with gx = 2x − 1, i.e. x·w − ½
export const bilinearTaps = (xy: Float32Array, h: number, w: number): { index: Int32Array; weight: Float32Array } => {
  const P = xy.length / 2;
  const index = new Int32Array(P * 4), weight = new Float32Array(P * 4);
  for (let p = 0; p < P; p++) {
    const x = (xy[2 * p] as number) * w - 0.5, y = (xy[2 * p + 1] as number) * h - 0.5;
    const x0 = Math.floor(x), y0 = Math.floor(y);
    const fx = x - x0, fy = y - y0;
    const taps: ReadonlyArray<readonly [number, number, number]> = [
      [y0, x0, (1 - fx) * (1 - fy)],
      [y0, x0 + 1, fx * (1 - fy)],
      [y0 + 1, x0, (1 - fx) * fy],
      [y0 + 1, x0 + 1, fx * fy],
    ];
    taps.forEach(([r, c, wt], k) => {
      const inside = r >= 0 && r < h && c >= 0 && c < w;
      index[4 * p + k] = inside ? r * w + c : 0;
      weight[4 * p + k] = inside ? wt : 0;
    });
  }
  return { index, weight };
};

/**
 * Bilinear values of `masks` `[K, h, w]` at points `coords` — `[P, 2]` shared by all masks or
 * `[K, P, 2]` one set per mask, `(x, y)` in `[0, 1]` — as `[K, P]` (float32). Differentiable in
 * `masks`; the coordinates are read as constants.
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
export const pointSample = (masks: tf.Tensor3D, coords: tf.Tensor2D | tf.Tensor3D): tf.Tensor2D => {
  const [K, h, w] = masks.shape;
  const shared = coords.rank === 2;
  const P = shared ? coords.shape[0] : coords.shape[1];
  const last = coords.shape[coords.rank - 1];
  if (last !== 2 || (!shared && coords.shape[0] !== K)) {
    throw new RangeError(
      `pointSample: coords must be [P, 2] or [${K}, P, 2] for masks [${masks.shape}], got [${coords.shape}]`,
    );
  }
  const xy = Float32Array.from(coords.dataSync());
  if (K === 0 || P === 0) return tf.zeros([K, P]); // [K, P]
  const index = new Int32Array(K * P * 4), weight = new Float32Array(K * P * 4);
  const sharedTaps = shared ? bilinearTaps(xy, h, w) : undefined;
  for (let k = 0; k < K; k++) {
    const t = sharedTaps ?? bilinearTaps(xy.subarray(k * P * 2, (k + 1) * P * 2), h, w);
    for (let i = 0; i < P * 4; i++) index[k * P * 4 + i] = (t.index[i] as number) + k * h * w;
    weight.set(t.weight, k * P * 4);
  }
  return tf.tidy(() =>
    tf.reshape(sampleTaps(tf.reshape(tf.cast(masks, "float32"), [K * h * w]), index, weight), [K, P])
  ); // [K, P]
};

/**
 * `Σ_tap weight·values[index]` per point, `[K·h·w]` → `[K·P]`, with its gradient as one
 * scatter-add: tfjs's own gradient of `gather` (UnsortedSegmentSum) costs segments × indices on
 * the `cpu` backend — 0.44 s for 3 masks of 32×32 at 512 points, hours at Mask2Former's sizes.
 */
const sampleTaps = (values: tf.Tensor, index: Int32Array, weight: Float32Array): tf.Tensor1D => {
  const n = index.length, size = values.size;
  const sample = tf.customGrad((...inputs) => {
    const x = inputs[0] as tf.Tensor; // [K·h·w]
    const value = tf.tidy(() => {
      const taps = tf.reshape(tf.gather(x, tf.tensor1d(index, "int32")), [n / 4, 4]); // [K·P, 4]
      return tf.sum(tf.mul(taps, tf.tensor2d(weight, [n / 4, 4])), 1); // [K·P]
    });
    const gradFunc = (dy: tf.Tensor) =>
      tf.tidy(() => {
        const updates = tf.reshape(tf.mul(tf.reshape(dy, [n / 4, 1]), tf.tensor2d(weight, [n / 4, 4])), [n]); // [K·P·4]
        return tf.scatterND(tf.tensor2d(index, [n, 1], "int32"), updates, [size]); // [K·h·w]
      });
    return { value, gradFunc };
  });
  return sample(values) as tf.Tensor1D;
};

/**
 * The matching cost `[Q, N]` (row-major, float64 copy) of one image at the points `coords`
 * `[P, 2]`: `costClass·(−p_class) + costMask·BCE + costDice·dice`.
 */
// Mask2Former, matcher.py: batch_sigmoid_ce_loss / batch_dice_loss on shared random points
export const matchingCost = (
  predLogits: tf.Tensor2D,
  predMasks: tf.Tensor3D,
  targets: InstanceTargets,
  coords: tf.Tensor2D,
  options: Pick<MatcherOptions, "costClass" | "costMask" | "costDice"> = defaultMatcherOptions,
): Float64Array => {
  const [Q, C1] = predLogits.shape;
  const N = targets.classes.length;
  if (predMasks.shape[0] !== Q || targets.masks.shape[0] !== N) {
    throw new RangeError(
      `matchingCost: expected predMasks [${Q}, h, w] and target masks [${N}, H, W], ` +
        `got [${predMasks.shape}] and [${targets.masks.shape}]`,
    );
  }
  const bad = targets.classes.find((c) => c < 0 || c >= C1 - 1);
  if (bad !== undefined) throw new RangeError(`matchingCost: target class ${bad} outside [0, ${C1 - 1})`);
  if (N === 0 || Q === 0) return new Float64Array(0);
  const P = coords.shape[0];
  const cost = tf.tidy(() => {
    const prob = tf.softmax(predLogits); // [Q, C+1]
    const classCost = tf.neg(tf.gather(prob, tf.tensor1d(targets.classes, "int32"), 1)); // [Q, N]
    const out = pointSample(predMasks, coords); // [Q, P]
    const tgt = pointSample(targets.masks, coords); // [N, P]
    // BCE with logits x, label t: t·softplus(−x) + (1 − t)·softplus(x)
    const pos = tf.softplus(tf.neg(out)); // [Q, P]
    const neg = tf.softplus(out); // [Q, P]
    const bce = tf.div(
      tf.add(tf.matMul(pos, tgt, false, true), tf.matMul(neg, tf.sub(1, tgt), false, true)),
      P,
    ); // [Q, N]
    const prob2 = tf.sigmoid(out); // [Q, P]
    const numerator = tf.mul(2, tf.matMul(prob2, tgt, false, true)); // [Q, N]
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
  predMasks: tf.Tensor3D,
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
