/**
 * IVAAN's feature fusion (paper notes, "Loss & Training"; the ablation's row 6): image-level text —
 * `a photo of a {class} nuclei.` for the classes present — is projected and cross-attended into the
 * multi-scale features before the transformer decoder reads them.
 *
 *   class sentences ─ text tower ─ [C, P] ─ linear ─ keys/values [C, D]
 *   level l [B, h, w, D] ─ every pixel attends to the sentences of the classes present in its image
 *     (bias −1e9 elsewhere) ─ + residual, LayerNorm ─ [B, h, w, D]          (one module for all levels)
 *   coarsest level ─ mean over pixels ─ linear ─ presence logits [B, C]    (the multi-label head)
 *
 * Which classes are present: in training, the truth (so the fused features learn what the text says);
 * at inference it is unknown, and `rule` says what stands in:
 *  - `predicted` (default): the presence head, trained jointly with a binary cross-entropy on the
 *    truth, read at 0.5 — the fusion sees at inference what it saw in training, up to the head's errors;
 *  - `all`: every class's sentence, always (train and test alike, so the two agree; the text then
 *    carries no image-specific information, only learned class semantics).
 * An image with no class present (or none predicted) attends to every sentence rather than to none.
 */
import * as tf from "@tensorflow/tfjs";
import {
  type Initializer,
  initLinear,
  initNorm,
  layerNorm,
  linear,
  type LinearParams,
  type NormParams,
} from "./layers.ts";
import { attention, type AttentionParams, initAttention } from "./transformer_decoder.ts";

export type FusionRule = "predicted" | "all";

export interface FusionParams<P extends tf.Tensor = tf.Variable> {
  /** text embedding [P] → feature width [D] */
  readonly text: LinearParams<P>;
  /** pixels (queries) → class sentences (keys, values) */
  readonly cross: AttentionParams<P>;
  readonly norm: NormParams<P>;
  /** the multi-label presence head: pooled coarsest features [D] → [C] */
  readonly presence: LinearParams<P>;
}

export const initFusion = (init: Initializer, textWidth: number, d: number, classes: number): FusionParams => ({
  text: initLinear(init, textWidth, d),
  cross: initAttention(init, d),
  norm: initNorm(init, d),
  presence: initLinear(init, d, classes),
});

/** Presence logits [B, C] from the coarsest level [B, h, w, D]. */
export const presenceLogits = (p: FusionParams<tf.Tensor>, coarsest: tf.Tensor4D): tf.Tensor2D =>
  linear(tf.mean(coarsest, [1, 2]) as tf.Tensor2D, p.presence); // [B, C]

/** 0/1 presence [B, C] → the attention bias [B, 1, C] (0 where present; an image with none: 0 everywhere). */
const presenceBias = (present: Float32Array, b: number, c: number): tf.Tensor3D => {
  const bias = new Float32Array(b * c);
  for (let i = 0; i < b; i++) {
    const row = present.subarray(i * c, (i + 1) * c);
    const any = row.some((v) => v > 0);
    for (let k = 0; k < c; k++) bias[i * c + k] = !any || (row[k] as number) > 0 ? 0 : -1e9;
  }
  return tf.tensor3d(bias, [b, 1, c]);
};

/**
 * The levels with the class sentences `text` [C, P] fused in, for the classes `present` (0/1,
 * [B·C], image-major). Returns new tensors; the caller owns them.
 */
export const applyFusion = (
  p: FusionParams<tf.Tensor>,
  heads: number,
  levels: ReadonlyArray<tf.Tensor4D>,
  text: tf.Tensor2D,
  present: Float32Array,
): tf.Tensor4D[] => {
  const c = text.shape[0];
  const b = levels[0]?.shape[0] ?? 0;
  if (present.length !== b * c) {
    throw new RangeError(`applyFusion: presence must be [${b}·${c}], got ${present.length} values`);
  }
  const keys = tf.tile(tf.expandDims(linear(text, p.text), 0), [b, 1, 1]) as tf.Tensor3D; // [B, C, D]
  const bias = presenceBias(present, b, c); // [B, 1, C]
  return levels.map((level) => {
    const [, h, w, d] = level.shape;
    const x = tf.reshape(level, [b, h * w, d]) as tf.Tensor3D; // [B, hw, D]
    const full = tf.tile(bias, [1, h * w, 1]) as tf.Tensor3D; // [B, hw, C]
    const fused = attention(p.cross, x, keys, keys, heads, full); // [B, hw, D]
    return tf.reshape(layerNorm(tf.add(x, fused) as tf.Tensor3D, p.norm, 1e-5), [b, h, w, d]) as tf.Tensor4D;
  });
};

/** The classes each image of a batch holds, as 0/1 [B·C] from per-image class lists. */
export const presenceOf = (classesPerImage: ReadonlyArray<ArrayLike<number>>, c: number): Float32Array => {
  const out = new Float32Array(classesPerImage.length * c);
  classesPerImage.forEach((classes, i) => {
    for (let k = 0; k < classes.length; k++) {
      const cls = classes[k] as number;
      if (cls >= 0 && cls < c) out[i * c + cls] = 1;
    }
  });
  return out;
};
