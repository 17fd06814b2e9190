/**
 * Mask2Former's instance losses with deep supervision: for every decoder layer, match queries to
 * targets (matcher.ts), then a weighted cross-entropy over `C + 1` classes (the last one = no
 * object) and, for matched pairs, sigmoid BCE + dice on importance-sampled points.
 *
 * Mental model: two steps. `planLoss` takes every decision that is not differentiated — the
 * matching and the point coordinates (mostly where the prediction is least certain, `|logit|`
 * small) — and `lossFromPlan` computes the differentiable losses from those decisions.
 * `maskFormerLoss` does both; call it inside `tf.variableGrads` / `tf.grads`.
 *
 * Gotchas: the returned scalars are the caller's to dispose. `parts` are summed over layers
 * without weights; `total` applies the weights. Randomness comes only from `seed`.
 */
import * as tf from "@tensorflow/tfjs";
import { deriveSeed } from "../data/random.ts";
import { hostValues } from "../backend/host_values.ts";
import { softplus } from "./softplus.ts";
import {
  imageValues,
  type InstanceTargets,
  type MaskLogits,
  maskValues,
  pointSampleAt,
  sampleTargets,
} from "./matcher.ts";
import { type ImagePlan, uncertainPointValues } from "./planning.ts";
import { planImages, type PlanUnit } from "./plan_pool.ts";

export { type ImagePlan, mostUncertain } from "./planning.ts";

/** One decoder layer's predictions. */
export interface DecoderOutput {
  /** `[B, Q, C+1]` class logits, last class = no object. */
  readonly logits: tf.Tensor3D;
  /** `[B, Q, h, w]` mask logits. */
  readonly masks: tf.Tensor4D;
}

/** Loss weights and point sampling. */
export interface LossOptions {
  /** Cross-entropy weight of the no-object class (all others weigh 1). */
  readonly noObjectWeight: number;
  /** Weight of the class loss in `total` (and of the class cost in matching). */
  readonly weightClass: number;
  /** Weight of the point BCE loss in `total` (and in matching). */
  readonly weightMask: number;
  /** Weight of the point dice loss in `total` (and in matching). */
  readonly weightDice: number;
  /** Points per mask, for matching and for the mask losses. */
  readonly points: number;
  /** Candidate points per kept point for importance sampling. */
  readonly oversample: number;
  /** Share of the kept points chosen as most uncertain; the rest are uniform. */
  readonly importanceRatio: number;
  /** Seed of all sampling. */
  readonly seed: number;
}

// Mask2Former, maskformer_model.py + criterion.py: no-object 0.1, weights 2/5/5, 12544 points, 3×, 0.75
export const defaultLossOptions: LossOptions = {
  noObjectWeight: 0.1,
  weightClass: 2,
  weightMask: 5,
  weightDice: 5,
  points: 12544,
  oversample: 3,
  importanceRatio: 0.75,
  seed: 0,
};

/** `layers[l][b]`: the plan of image `b` in decoder layer `l`. */
export interface LossPlan {
  readonly layers: ReadonlyArray<ReadonlyArray<ImagePlan>>;
}

/** Loss scalars: `total = Σ weight·part`, each part summed over decoder layers. */
export interface MaskFormerLoss {
  readonly total: tf.Scalar;
  readonly parts: { readonly class: tf.Scalar; readonly mask: tf.Scalar; readonly dice: tf.Scalar };
}

/** Mask2Former's mask normaliser: all target instances of the batch, at least 1. */
export const numMasks = (targets: ReadonlyArray<InstanceTargets>): number =>
  Math.max(1, targets.reduce((n, t) => n + t.classes.length, 0));

const checkShapes = (outputs: ReadonlyArray<DecoderOutput>, targets: ReadonlyArray<InstanceTargets>): void => {
  if (outputs.length === 0) throw new RangeError("maskFormerLoss: outputs must hold at least one decoder layer");
  outputs.forEach(({ logits, masks }, l) => {
    const [B, Q] = logits.shape;
    if (B !== targets.length || masks.shape[0] !== B || masks.shape[1] !== Q) {
      throw new RangeError(
        `maskFormerLoss: layer ${l} expected logits [${targets.length}, Q, C+1] and masks [${targets.length}, Q, h, w], ` +
          `got [${logits.shape}] and [${masks.shape}]`,
      );
    }
  });
};

/**
 * Importance-sampled points for `masks` `[R, h, w]` logits — the `M` masks `rows` (default all):
 * `oversample·P` uniform candidates, the `⌊ratio·P⌋` with the smallest `|logit|` (in candidate
 * order), then uniform points for the rest → flat `[M, P, 2]`. Reads values; records no gradient.
 */
// Mask2Former, point_features.py: get_uncertain_point_coords_with_randomness, uncertainty = −|logit|
export const uncertainPoints = (
  masks: MaskLogits,
  rng: () => number,
  points: number,
  oversample: number,
  importanceRatio: number,
  rows?: Int32Array,
): Float32Array => {
  const { values, shape } = maskValues(masks);
  return uncertainPointValues(values, shape, rng, points, oversample, importanceRatio, rows);
};

/** Matching and point selection of every layer and image; reads values, records nothing to keep. */
export const planLoss = (
  outputs: ReadonlyArray<DecoderOutput>,
  targets: ReadonlyArray<InstanceTargets>,
  options: Partial<LossOptions> = {},
): LossPlan => {
  const o = { ...defaultLossOptions, ...options };
  checkShapes(outputs, targets);
  const B = targets.length;
  const units = outputs.flatMap(({ logits, masks }, l): PlanUnit[] => {
    // one read of the layer's logits and mask logits; each image's plan reads views
    const [, Q, h, w] = masks.shape, C1 = logits.shape[2];
    const allLogits = logits.dataSync() as Float32Array, allMasks = hostValues(masks) as Float32Array; // [B·Q·(C+1)], [B·Q·h·w]
    return targets.map((target, b) => {
      const stream = 2 * (l * B + b);
      return {
        image: imageValues(
          { values: allLogits.subarray(b * Q * C1, (b + 1) * Q * C1), shape: [Q, C1] },
          { values: allMasks.subarray(b * Q * h * w, (b + 1) * Q * h * w), shape: [Q, h, w] },
          target,
        ),
        settings: {
          costClass: o.weightClass,
          costMask: o.weightMask,
          costDice: o.weightDice,
          points: o.points,
          oversample: o.oversample,
          importanceRatio: o.importanceRatio,
          matchSeed: deriveSeed(o.seed, stream),
          pointSeed: deriveSeed(o.seed, stream + 1),
        },
      };
    });
  });
  const plans = planImages(units);
  return { layers: outputs.map((_, l) => plans.slice(l * B, (l + 1) * B)) };
};

/**
 * The differentiable losses for fixed decisions `plan` (from `planLoss` on the same outputs).
 */
// Mask2Former, criterion.py: loss_labels (weighted CE), loss_masks (sigmoid_ce_loss, dice_loss) / num_masks
export const lossFromPlan = (
  outputs: ReadonlyArray<DecoderOutput>,
  targets: ReadonlyArray<InstanceTargets>,
  plan: LossPlan,
  options: Partial<LossOptions> = {},
): MaskFormerLoss => {
  const o = { ...defaultLossOptions, ...options };
  checkShapes(outputs, targets);
  const norm = numMasks(targets);
  return tf.tidy(() => {
    const perLayer = outputs.map(({ logits, masks }, l) => {
      const [B, Q, C1] = logits.shape;
      const [, , h, w] = masks.shape;
      const images = plan.layers[l];
      if (images === undefined || images.length !== B) {
        throw new RangeError(`lossFromPlan: plan has no layer ${l} of ${B} images`);
      }
      // classification: every unmatched query is "no object" (index C)
      const labelWeight = new Float32Array(B * Q * C1);
      let weightSum = 0;
      images.forEach((image, b) => {
        const label = new Int32Array(Q).fill(C1 - 1);
        image.queryIndex.forEach((q, i) => label[q] = targets[b]?.classes[image.targetIndex[i] as number] as number);
        label.forEach((y, q) => {
          const weight = y === C1 - 1 ? o.noObjectWeight : 1;
          labelWeight[(b * Q + q) * C1 + y] = weight;
          weightSum += weight;
        });
      });
      const logProb = tf.logSoftmax(tf.reshape(logits, [B * Q, C1])); // [B·Q, C+1]
      const classLoss = tf.div(
        tf.neg(tf.sum(tf.mul(logProb, tf.tensor2d(labelWeight, [B * Q, C1])))),
        weightSum,
      ) as tf.Scalar;

      // masks: matched predictions and targets at the same points
      const flatIndex = images.flatMap((image, b) => Array.from(image.queryIndex, (q) => b * Q + q));
      const M = flatIndex.length;
      if (M === 0) {
        const zero = tf.mul(0, tf.sum(masks)) as tf.Scalar; // keeps masks on the gradient path
        return { class: classLoss, mask: zero, dice: zero };
      }
      const coords = new Float32Array(M * o.points * 2);
      let offset = 0;
      images.forEach((image) => {
        coords.set(image.coords, offset);
        offset += image.coords.length;
      });
      const flatMasks = tf.reshape(masks, [B * Q, h, w]) as tf.Tensor3D; // [B·Q, h, w]
      const x = pointSampleAt(flatMasks, coords, o.points, false, Int32Array.from(flatIndex)); // [M, P]
      const targetValues = new Float32Array(M * o.points);
      let row = 0;
      images.forEach((image, b) => {
        const m = image.queryIndex.length, target = targets[b];
        if (m === 0 || target === undefined) return;
        const layout = { K: m, P: o.points, xy: image.coords, shared: false, rows: image.targetIndex };
        targetValues.set(sampleTargets(target.masks, layout), row * o.points);
        row += m;
      });
      const t = tf.tensor2d(targetValues, [M, o.points]); // [M, P]
      // BCE with logits: softplus(x) − x·t, mean over points
      const bce = tf.mean(tf.sub(softplus(x), tf.mul(x, t)), 1); // [M]
      const p = tf.sigmoid(x); // [M, P]
      const dice = tf.sub(
        1,
        tf.div(tf.add(tf.mul(2, tf.sum(tf.mul(p, t), 1)), 1), tf.add(tf.add(tf.sum(p, 1), tf.sum(t, 1)), 1)),
      ); // [M]
      return {
        class: classLoss,
        mask: tf.div(tf.sum(bce), norm) as tf.Scalar,
        dice: tf.div(tf.sum(dice), norm) as tf.Scalar,
      };
    });
    const parts = {
      class: tf.addN(perLayer.map((p) => p.class)) as tf.Scalar,
      mask: tf.addN(perLayer.map((p) => p.mask)) as tf.Scalar,
      dice: tf.addN(perLayer.map((p) => p.dice)) as tf.Scalar,
    };
    const total = tf.addN([
      tf.mul(o.weightClass, parts.class),
      tf.mul(o.weightMask, parts.mask),
      tf.mul(o.weightDice, parts.dice),
    ]) as tf.Scalar;
    return { total, parts };
  });
};

/**
 * Mask2Former's instance loss over decoder layers `outputs` (deep supervision: matching per layer)
 * for per-image `targets`. Call inside a gradient function; dispose the returned scalars.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { maskFormerLoss } from "./losses.ts";
 * const logits = tf.zeros([1, 2, 3]) as tf.Tensor3D; // [B, Q, C+1]
 * const masks = tf.zeros([1, 2, 4, 4]) as tf.Tensor4D; // [B, Q, h, w]
 * const target = { classes: new Int32Array([1]), masks: tf.ones([1, 4, 4]) as tf.Tensor3D };
 * const { total } = maskFormerLoss([{ logits, masks }], [target], { points: 16 });
 * ```
 */
export const maskFormerLoss = (
  outputs: ReadonlyArray<DecoderOutput>,
  targets: ReadonlyArray<InstanceTargets>,
  options: Partial<LossOptions> = {},
): MaskFormerLoss => lossFromPlan(outputs, targets, planLoss(outputs, targets, options), options);
