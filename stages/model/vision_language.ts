/**
 * The vision–language head of IVAAN (paper notes, "Key Designs" 2–3) on top of the baseline: a
 * text tower trained jointly, projections of queries and texts into one normalised space, optional
 * category tokens with SIM, and the losses that tie them (L_fix, L_cent).
 *
 *   class prompts ─ tokenizer ─ ids [C, T] ─ text tower ─ [C, P] ─ textual projection + ℓ2 ─ T [C, E]
 *   last decoder layer's queries [B, Q, D] ─ SIM (optional) ─ enhanced queries [B, Q, D]
 *     → class head and mask embedding (the last prediction), and, for the Hungarian-matched ones,
 *       visual projection + ℓ2 ─ v [N, E] ─ L_fix against T
 *   SIM's dynamic tokens [B, (C+1)·k, D] ─ class means ─ visual projection + ℓ2 ─ L_cent against T
 *
 * Mental model: `VisionLanguageConfig` says which rows of the paper's ablation are on; the model
 * (model.ts) runs SIM inside the decoder's last step; `visionLanguageLoss` is called by the
 * training step with the last layer's matching, so that the alignment uses the same query ↔
 * nucleus pairs as the mask and class losses.
 *
 * Gotchas: the class prompts are organ-free here (`a {class} nucleus`): the organ of an image is
 * not part of a sample yet. The word vocabulary comes from the class names, so a model is tied to
 * its dataset's class names (stored in the checkpoint metadata with the config). Attribute prompts
 * (L_attr) and feature fusion are not wired in yet.
 */
import * as tf from "@tensorflow/tfjs";
import { classPrompt, imagePrompt } from "../text/prompts.ts";
import {
  applyClipText,
  CLIP_TEXT_PRESETS,
  type ClipTextConfig,
  type ClipTextParams,
  initClipText,
} from "../text/clip_text.ts";
import { splitWords, wordTokenizer } from "../text/tokenizer.ts";
import { categoryCentreLoss, embed, fixedPromptLoss, initProjection, type ProjectionParams, TAU } from "./alignment.ts";
import type { Initializer } from "./layers.ts";
import type { InstanceTargets, Match } from "./matcher.ts";
import { initSim, type SimConfig, type SimParams } from "./sim.ts";

export interface VisionLanguageConfig {
  /** the text tower (the `tiny` text preset: trained jointly, word vocabulary) */
  readonly text: ClipTextConfig;
  /** E: width of the joint embedding space */
  readonly embed: number;
  /** L_fix: matched queries against the class prompts */
  readonly fixedPrompts: boolean;
  /** category tokens per class and SIM (with L_cent); absent = no SIM */
  readonly sim?: Omit<SimConfig, "classes" | "d">;
  /** loss weights (the paper: λ_CL 1 with λ_fix 1; λ_cent 2) and temperatures (τ 0.07, τ_CT 0.07) */
  readonly weightFix: number;
  readonly weightCent: number;
  readonly tau: number;
  readonly tauCent: number;
}

export interface VisionLanguageParams<P extends tf.Tensor = tf.Variable> {
  readonly text: ClipTextParams<P>;
  /** queries and category tokens [D] → [E] */
  readonly visual: ProjectionParams<P>;
  /** text embeddings [P] → [E] */
  readonly textual: ProjectionParams<P>;
  readonly sim?: SimParams<P>;
}

/** The paper's settings for rows "vl_fixed" (no SIM) and "sim" (k = 5 tokens per class). */
export const visionLanguagePreset = (sim: boolean): VisionLanguageConfig => ({
  text: CLIP_TEXT_PRESETS.tiny,
  embed: 128,
  fixedPrompts: true,
  ...(sim ? { sim: { k: 5, heads: 4 } } : {}),
  weightFix: 1,
  weightCent: 2,
  tau: TAU,
  tauCent: TAU,
});

/** SIM's full config for a decoder of width `d` and `classes` classes. */
export const simConfigOf = (c: VisionLanguageConfig, classes: number, d: number): SimConfig | undefined =>
  c.sim === undefined ? undefined : { ...c.sim, classes, d };

export const initVisionLanguage = (
  init: Initializer,
  c: VisionLanguageConfig,
  classes: number,
  d: number,
  seed: number,
): VisionLanguageParams => {
  const sim = simConfigOf(c, classes, d);
  return {
    text: initClipText(c.text, seed + 7),
    visual: initProjection(init, d, c.embed),
    textual: initProjection(init, c.text.projection_dim, c.embed),
    ...(sim === undefined ? {} : { sim: initSim(init, sim) }),
  };
};

/**
 * Token ids `[C, T]` of the class prompts, from a word vocabulary of every prompt family the
 * class names make (class and image-level prompts); throws when the vocabulary outgrows the text
 * tower's embedding table.
 */
export const classPromptIds = (c: VisionLanguageConfig, classNames: ReadonlyArray<string>): tf.Tensor2D => {
  const prompts = classNames.map((name) => classPrompt(name, ""));
  const tokenizer = wordTokenizer([...prompts, imagePrompt(classNames)]);
  if (tokenizer.vocabSize > c.text.vocab_size) {
    throw new RangeError(
      `vision-language: the prompt vocabulary has ${tokenizer.vocabSize} words, the text tower ${c.text.vocab_size}`,
    );
  }
  const length = Math.min(c.text.max_position_embeddings, 2 + Math.max(...prompts.map((p) => splitWords(p).length)));
  const ids = new Int32Array(prompts.length * length);
  prompts.forEach((p, i) => ids.set(tokenizer.encode(p, length).ids, i * length));
  return tf.tensor2d(ids, [prompts.length, length], "int32"); // [C, T]
};

/** The normalised class-text embeddings T `[C, E]`. */
export const classTextEmbeddings = (
  p: VisionLanguageParams<tf.Tensor>,
  c: VisionLanguageConfig,
  ids: tf.Tensor2D,
): tf.Tensor2D => embed(applyClipText(p.text, c.text, ids), p.textual); // [C, E]

/** The matched pairs of the last decoder layer: flat query rows `b·Q + q` and their nuclei's classes. */
export interface MatchedQueries {
  readonly rows: Int32Array;
  readonly labels: Int32Array;
}

/** The flat query rows and target classes of one decoder layer's matches (`images[b]`: image b's). */
export const matchedQueries = (
  images: ReadonlyArray<Match>,
  targets: ReadonlyArray<Pick<InstanceTargets, "classes">>,
  queriesPerImage: number,
): MatchedQueries => {
  const rows: number[] = [], labels: number[] = [];
  images.forEach((image, b) =>
    image.queryIndex.forEach((q, i) => {
      rows.push(b * queriesPerImage + q);
      labels.push(targets[b]?.classes[image.targetIndex[i] as number] as number);
    })
  );
  return { rows: Int32Array.from(rows), labels: Int32Array.from(labels) };
};

/** L_fix and L_cent, weighted; `queries` [B, Q, D] are the final (enhanced) queries, `tokens` SIM's dynamic ones. */
export const visionLanguageLoss = (
  p: VisionLanguageParams<tf.Tensor>,
  c: VisionLanguageConfig,
  classText: tf.Tensor2D,
  queries: tf.Tensor3D,
  matched: MatchedQueries,
  tokens: tf.Tensor3D | undefined,
): { total: tf.Scalar; fix: tf.Scalar; cent: tf.Scalar } =>
  tf.tidy(() => {
    const [b, q, d] = queries.shape;
    const flat = tf.reshape(queries, [b * q, d]) as tf.Tensor2D; // [B·Q, D]
    const fix = c.fixedPrompts
      ? fixedPromptLoss(
        embed(tf.gather(flat, tf.tensor1d(matched.rows, "int32")) as tf.Tensor2D, p.visual), // [N, E]
        classText,
        matched.labels,
        c.tau,
      )
      : tf.scalar(0);
    const cent = tokens === undefined || c.sim === undefined
      ? tf.scalar(0)
      : categoryCentreLoss(tokens, classText, p.visual, c.sim.k, c.tauCent);
    const total = tf.add(tf.mul(c.weightFix, fix), tf.mul(c.weightCent, cent)) as tf.Scalar;
    return { total, fix, cent };
  });
