/**
 * Query ↔ instance matching for set-prediction training (Mask2Former's Hungarian matcher), and the
 * bilinear point sampler that both the matcher and the losses use: the tensor-facing side of
 * planning.ts, which holds the arithmetic on plain values.
 *
 * Mental model: every predicted query is priced against every target instance — class cost from
 * the softmax, mask costs (sigmoid BCE and dice) on a few thousand random points rather than on
 * whole masks — and the cheapest one-to-one assignment wins. Matching is a decision, not a
 * function to differentiate: it reads values (`dataSync`) and returns plain indices. On a backend
 * without synchronous reads (webgpu) the caller reads them first (`prefetch`), and the losses'
 * point sampling runs on the device as a gather (`readsSynchronously`).
 *
 * Gotchas: point coordinates are `(x, y)` in `[0, 1]` (x along the width), as `grid_sample` takes
 * them; sampling uses `align_corners=False` with zero padding, so a point at the very edge of a
 * mask reads half of the border pixel. Predictions and targets may have different sizes: the same
 * normalised point lands on each at its own resolution.
 */
import * as tf from "@tensorflow/tfjs";
import { readsSynchronously } from "../backend/tf.ts";
import { hostValues } from "../backend/host_values.ts";
import { tensorFrom } from "../backend/write.ts";
import {
  type CostWeights,
  type ImageValues,
  type Match,
  matchImage,
  matchingCostValues,
  nonZeroBoxes,
  sampleBoxed,
  type SampleLayout,
  sampleTaps,
  sampleValues,
  scatterValues,
} from "./planning.ts";

export { type Match, randomPoints, type SampleLayout, sampleValues } from "./planning.ts";

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

/**
 * The four bilinear taps of each point on an `h × w` grid: flat indices into `[h·w]` and weights,
 * both `[P, 4]`; taps outside the grid get weight 0 (zero padding) and a harmless index 0.
 */
export const bilinearTaps = (xy: Float32Array, h: number, w: number): { index: Int32Array; weight: Float32Array } =>
  sampleTaps({ K: 1, P: xy.length / 2, h, w, xy, shared: true, rows: undefined });

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
  const K = rows?.length ?? masks.shape[0];
  const shared = coords.rank === 2;
  const P = shared ? coords.shape[0] : coords.shape[1];
  const last = coords.shape[coords.rank - 1];
  if (last !== 2 || (!shared && coords.shape[0] !== K)) {
    throw new RangeError(
      `pointSample: coords must be [P, 2] or [${K}, P, 2] for masks [${masks.shape}], got [${coords.shape}]`,
    );
  }
  return pointSampleAt(masks, Float32Array.from(coords.dataSync()), P, shared, rows);
};

/** `pointSample` with the coordinates as values (`[P, 2]` when `shared`, else `[K, P, 2]`), as the loss holds them. */
export const pointSampleAt = (
  masks: tf.Tensor3D,
  xy: Float32Array,
  P: number,
  shared: boolean,
  rows?: Int32Array,
): tf.Tensor2D => {
  const [R, h, w] = masks.shape;
  const K = rows?.length ?? R;
  if (xy.length !== (shared ? P : K * P) * 2) {
    throw new RangeError(`pointSample: ${xy.length / 2} points for ${shared ? 1 : K} × ${P}`);
  }
  const bad = rows?.find((r) => r < 0 || r >= R);
  if (bad !== undefined) throw new RangeError(`pointSample: row ${bad} outside the ${R} masks`);
  if (K === 0 || P === 0) return tf.zeros([K, P]); // [K, P]
  const layout: SampleLayout = { K, P, h, w, xy, shared, rows };
  if (!readsSynchronously()) return sampleOnDevice(masks, layout);
  if (masks.dtype !== "float32") return tf.tensor2d(sampleValues(masks.dataSync(), layout), [K, P]); // [K, P]
  const sample = tf.customGrad((...inputs) => {
    const x = inputs[0] as tf.Tensor3D; // [R, h, w]
    const value = tf.tensor2d(sampleValues(hostValues(x), layout), [K, P]); // [K, P]
    const gradFunc = (dy: tf.Tensor) => {
      const g = dy.dataSync(); // [K·P], read before the output exists
      return tensorFrom([R, h, w], (grad) => scatterValues(g, layout, x.size, grad)); // [R, h, w]
    };
    return { value, gradFunc };
  });
  return sample(masks) as tf.Tensor2D;
};

/**
 * `pointSampleAt` as a gather of the four taps times their weights, on the device: for backends
 * without synchronous reads. tfjs differentiates it (the gather's gradient scatters, as `scatterValues`).
 */
const sampleOnDevice = (masks: tf.Tensor3D, layout: SampleLayout): tf.Tensor2D =>
  tf.tidy(() => {
    const { index, weight } = sampleTaps(layout), { K, P } = layout;
    const flat = tf.reshape(masks.dtype === "float32" ? masks : tf.cast(masks, "float32"), [-1]); // [R·h·w]
    const taps = tf.gather(flat, tf.tensor1d(index, "int32")); // [K·P·4]
    const weighted = tf.mul(tf.reshape(taps, [K * P, 4]), tf.tensor2d(weight, [K * P, 4])); // [K·P, 4]
    return tf.reshape(tf.sum(weighted, 1), [K, P]) as tf.Tensor2D; // [K, P]
  });

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
  const [R, h, w] = masks.shape, values = targetMaskValues(masks);
  let boxes = targetBoxes.get(masks);
  if (boxes === undefined) targetBoxes.set(masks, boxes = nonZeroBoxes(values, R, h, w));
  return sampleBoxed(values, boxes, { ...layout, h, w });
};

/** Each target tensor's boxes of non-zero pixels (sampleBoxed skips the points far from a nucleus). */
const targetBoxes = new WeakMap<tf.Tensor, Int32Array>();

/** A target mask tensor's values, read once per tensor (as bytes when they are all 0 or 1). */
export const targetMaskValues = (masks: tf.Tensor3D): ArrayLike<number> => {
  let values = targetValues.get(masks);
  if (values === undefined) {
    const read = masks.dataSync();
    // 0/1 masks as bytes: a quarter of the memory, so the random reads of sampling miss the cache less
    values = asBytes(read) ?? read;
    targetValues.set(masks, values);
  }
  return values;
};

/** Mask logits `[K, h, w]`: a tensor, or values already read from one (a view of a batch's, no copy). */
export type MaskLogits =
  | tf.Tensor3D
  | { readonly values: Float32Array; readonly shape: readonly [number, number, number] };

/** The values and shape of mask logits (reads a tensor once). */
export const maskValues = (m: MaskLogits): { values: Float32Array; shape: readonly [number, number, number] } =>
  m instanceof tf.Tensor ? { values: hostValues(m) as Float32Array, shape: m.shape } : m;

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
  options: CostWeights = defaultMatcherOptions,
): Float64Array =>
  matchingCostValues(imageValues(predLogits, predMasks, targets), Float32Array.from(coords.dataSync()), options);

/** Class logits `[Q, C+1]`: a tensor, or values already read from one (a view of a batch's, no copy). */
export type ClassLogits = tf.Tensor2D | { readonly values: Float32Array; readonly shape: readonly [number, number] };

/** One image's predictions and targets as values (checked), as the planning functions take them. */
export const imageValues = (predLogits: ClassLogits, predMasks: MaskLogits, targets: InstanceTargets): ImageValues => {
  const [Q, C1] = predLogits.shape;
  const N = targets.classes.length;
  const masks = maskValues(predMasks);
  if (masks.shape[0] !== Q || targets.masks.shape[0] !== N) {
    throw new RangeError(
      `matching: expected mask logits [${Q}, h, w] and target masks [${N}, H, W], ` +
        `got [${masks.shape}] and [${targets.masks.shape}]`,
    );
  }
  const bad = targets.classes.find((c) => c < 0 || c >= C1 - 1);
  if (bad !== undefined) throw new RangeError(`matching: target class ${bad} outside [0, ${C1 - 1})`);
  return {
    logits: predLogits instanceof tf.Tensor ? predLogits.dataSync() as Float32Array : predLogits.values,
    masks: masks.values,
    maskShape: masks.shape,
    classes: targets.classes,
    targets: targetMaskValues(targets.masks),
    targetShape: targets.masks.shape,
  };
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
  return matchImage(imageValues(predLogits, predMasks, targets), o, o.points, o.seed);
};
