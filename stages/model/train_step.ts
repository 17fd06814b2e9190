/**
 * One optimisation step of the baseline: forward, Mask2Former loss with deep supervision, gradients,
 * global-norm clipping, AdamW (Adam + decoupled weight decay, Loshchilov & Hutter 2019).
 * Every tensor of the step is released before it returns (tested: the tensor count stays flat).
 */
import * as tf from "@tensorflow/tfjs";
import type { Sample } from "../data/sample.ts";
import { parameterList } from "./layers.ts";
import { type LossOptions, maskFormerLoss } from "./losses.ts";
import type { InstanceTargets } from "./matcher.ts";
import { applyModel, type ModelConfig, type ModelParams } from "./model.ts";

export interface TrainOptions {
  readonly learningRate: number;
  readonly weightDecay: number;
  /** clip the global gradient norm to this value (0 = off) */
  readonly clipNorm: number;
  readonly loss: Partial<LossOptions>;
}

export const defaultTrainOptions: TrainOptions = { learningRate: 1e-4, weightDecay: 0.05, clipNorm: 1, loss: {} };

/** A batch: images [B, H, W, 3] in 0–255 and, per image, instance classes and masks [N, H, W]. */
export interface Batch {
  readonly images: tf.Tensor4D;
  readonly targets: ReadonlyArray<InstanceTargets>;
}

/** Builds a batch from samples of one size (class −1 nuclei are left out of the targets). */
export const batchOf = (samples: ReadonlyArray<Sample>): Batch => {
  const [h, w] = [samples[0]?.height ?? 0, samples[0]?.width ?? 0];
  const pixels = new Float32Array(samples.length * h * w * 3);
  samples.forEach((s, i) => pixels.set(s.image, i * h * w * 3));
  const targets = samples.map((s) => {
    const ids = Array.from({ length: s.classOf.length - 1 }, (_, k) => k + 1).filter((id) =>
      (s.classOf[id] as number) >= 0
    );
    const masks = new Float32Array(ids.length * h * w);
    const slot = new Int32Array(s.classOf.length).fill(-1);
    ids.forEach((id, k) => (slot[id] = k));
    for (let p = 0; p < h * w; p++) {
      const k = slot[s.instances[p] as number] as number;
      if (k >= 0) masks[k * h * w + p] = 1;
    }
    return {
      classes: Int32Array.from(ids, (id) => s.classOf[id] as number),
      masks: tf.tensor3d(masks, [ids.length, h, w]),
    };
  });
  return { images: tf.tensor4d(pixels, [samples.length, h, w, 3]), targets };
};

export const disposeBatch = (b: Batch): void => tf.dispose([b.images, ...b.targets.map((t) => t.masks)]);

/** One AdamW step; returns the loss parts (plain numbers). */
export const trainStep = (
  params: ModelParams,
  config: ModelConfig,
  classes: number,
  optimizer: tf.Optimizer,
  batch: Batch,
  options: TrainOptions,
): { total: number; class: number; mask: number; dice: number; gradNorm: number } => {
  const variables = parameterList(params).filter((t): t is tf.Variable => t instanceof tf.Variable);
  let parts = { total: 0, class: 0, mask: 0, dice: 0, gradNorm: 0 };
  tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const loss = maskFormerLoss(applyModel(params, config, classes, batch.images), batch.targets, options.loss);
      parts = {
        ...parts,
        class: loss.parts.class.dataSync()[0] as number,
        mask: loss.parts.mask.dataSync()[0] as number,
        dice: loss.parts.dice.dataSync()[0] as number,
      };
      return loss.total;
    }, variables);
    parts.total = value.dataSync()[0] as number;
    const norm = Math.sqrt(
      Object.values(grads).reduce((s, g) => s + (tf.sum(tf.square(g)).dataSync()[0] as number), 0),
    );
    parts.gradNorm = norm;
    const scale = options.clipNorm > 0 && norm > options.clipNorm ? options.clipNorm / norm : 1;
    const clipped = Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, scale === 1 ? g : tf.mul(g, scale)]));
    optimizer.applyGradients(clipped as tf.NamedTensorMap);
    // decoupled weight decay on every tensor of rank ≥ 2 (matrices, kernels, embeddings), not on biases or norms
    for (const v of variables) {
      if (v.shape.length >= 2 && options.weightDecay > 0) {
        v.assign(tf.mul(v, 1 - options.learningRate * options.weightDecay));
      }
    }
  });
  return parts;
};
