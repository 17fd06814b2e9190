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
 * Gotchas: L_fix's class prompts name the organ (`a {class} nucleus in {organ}`, the paper's)
 * only with `organs` set (train --organ-prompts): each matched query is then compared with its
 * image's organ's prompts; otherwise, and always for L_cent's class prototypes, they are organ-free
 * (`a {class} nucleus`). The word vocabulary comes from the class (and organ) names, so a model is
 * tied to its dataset's names (stored in the checkpoint metadata with the config). L_attr needs
 * per-nucleus attribute labels (attribute_labels.ts).
 */
import * as tf from "@tensorflow/tfjs";
import { attributePrompt, classPrompt, imagePrompt } from "../text/prompts.ts";
import { SCALES } from "../attributes/words.ts";
import {
  applyClipText,
  CLIP_TEXT_PRESETS,
  type ClipTextConfig,
  type ClipTextParams,
  initClipText,
} from "../text/clip_text.ts";
import { splitWords, wordTokenizer } from "../text/tokenizer.ts";
import {
  attributeLoss,
  type AttributeTarget,
  categoryCentreLoss,
  embed,
  fixedPromptLoss,
  initProjection,
  type ProjectionParams,
  TAU,
  TAU_ATTR,
} from "./alignment.ts";
import type { Initializer } from "./layers.ts";
import type { InstanceTargets, Match } from "./matcher.ts";
import { initSim, type SimConfig, type SimParams } from "./sim.ts";
import { type FusionParams, type FusionRule, initFusion } from "./fusion.ts";

export interface VisionLanguageConfig {
  /** the text tower (the `tiny` text preset: trained jointly, word vocabulary; or a frozen CLIP's config) */
  readonly text: ClipTextConfig;
  /**
   * A frozen text encoder (a pathology CLIP from local files): its features of these prompts are
   * computed once (the `text.frozen` stage) and held as a constant [N, projection_dim]; absent:
   * the tower is trained jointly.
   */
  readonly frozenText?: { readonly prompts: ReadonlyArray<string> };
  /** E: width of the joint embedding space */
  readonly embed: number;
  /** L_fix: matched queries against the class prompts */
  readonly fixedPrompts: boolean;
  /** L_attr: matched queries against their nuclei's attribute words (needs attribute labels) */
  readonly attributes: boolean;
  /** category tokens per class and SIM (with L_cent); absent = no SIM */
  readonly sim?: Omit<SimConfig, "classes" | "d">;
  /** feature fusion of the image-level text (row 6) and what stands in for the truth at inference */
  readonly fusion?: { readonly rule: FusionRule; readonly weightPresence: number };
  /** the dataset's class names (the prompts' words); set when training starts */
  readonly classNames: ReadonlyArray<string>;
  /** L_fix's prompts name the image's organ (`a {class} nucleus in {organ}`): the dataset's organs; absent: organ-free */
  readonly organs?: ReadonlyArray<string>;
  /** loss weights (the paper: λ_CL 1 with λ_fix 1; λ_cent 2) and temperatures (τ 0.07, τ_CT 0.07) */
  readonly weightFix: number;
  readonly weightAttr: number;
  readonly weightCent: number;
  readonly tau: number;
  readonly tauAttr: number;
  readonly tauCent: number;
}

export interface VisionLanguageParams<P extends tf.Tensor = tf.Variable> {
  /** the jointly trained text tower (absent with a frozen text encoder) */
  readonly text?: ClipTextParams<P>;
  /** a frozen text encoder's prompt features [N, projection_dim] (a non-trainable variable) */
  readonly frozen?: P;
  /** queries and category tokens [D] → [E] */
  readonly visual: ProjectionParams<P>;
  /** text embeddings [P] → [E] */
  readonly textual: ProjectionParams<P>;
  readonly sim?: SimParams<P>;
  readonly fusion?: FusionParams<P>;
}

/**
 * The paper's settings (λ_fix 1, λ_attr 0.3, λ_cent 2; τ 0.07, τ_attr 0.15, τ_CT 0.07; k = 5
 * category tokens per class) with the given parts on.
 */
export const visionLanguagePreset = (
  parts: { attributes: boolean; sim: boolean; fusion?: FusionRule },
  classNames: ReadonlyArray<string> = [],
): VisionLanguageConfig => ({
  text: CLIP_TEXT_PRESETS.tiny,
  embed: 128,
  fixedPrompts: true,
  attributes: parts.attributes,
  ...(parts.sim ? { sim: { k: 5, heads: 4 } } : {}),
  ...(parts.fusion === undefined ? {} : { fusion: { rule: parts.fusion, weightPresence: 1 } }),
  classNames,
  weightFix: 1,
  weightAttr: 0.3,
  weightCent: 2,
  tau: TAU,
  tauAttr: TAU_ATTR,
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
    ...(c.frozenText === undefined
      ? { text: initClipText(c.text, seed + 7) }
      : { frozen: tf.variable(tf.zeros([c.frozenText.prompts.length, c.text.projection_dim]), false) }),
    visual: initProjection(init, d, c.embed),
    textual: initProjection(init, c.text.projection_dim, c.embed),
    ...(sim === undefined ? {} : { sim: initSim(init, sim) }),
    ...(c.fusion === undefined ? {} : { fusion: initFusion(init, c.text.projection_dim, d, classes) }),
  };
};

/** `a {class} nucleus in {organ}` for every organ, then class (organ-major); organ "" is organ-free. */
export const organPrompts = (classNames: ReadonlyArray<string>, organs: ReadonlyArray<string>): string[] =>
  organs.flatMap((organ) => classNames.map((name) => classPrompt(name, organ)));

/**
 * The word vocabulary of every prompt a dataset can make: its class and image-level prompts and the
 * attribute prompts of every family scale (whichever attributes a fit selects), so a word keeps its
 * id — and its embedding — across prompt families, rows and attribute fits.
 */
const promptTokenizer = (c: VisionLanguageConfig, classNames: ReadonlyArray<string>) => {
  const tokenizer = wordTokenizer([
    ...classNames.map((name) => classPrompt(name, "")),
    imagePrompt(classNames),
    ...Object.values(SCALES).flat().map(attributePrompt),
    // organ prompts only when on: without them the vocabulary (and a checkpoint's word ids) is as before
    ...organPrompts(classNames, c.organs ?? []),
  ]);
  if (tokenizer.vocabSize > c.text.vocab_size) {
    throw new RangeError(
      `vision-language: the prompt vocabulary has ${tokenizer.vocabSize} words, the text tower ${c.text.vocab_size}`,
    );
  }
  return tokenizer;
};

/** Token ids `[N, T]` of `prompts`, padded to the longest. */
export const encodePrompts = (
  c: VisionLanguageConfig,
  classNames: ReadonlyArray<string>,
  prompts: ReadonlyArray<string>,
): tf.Tensor2D => {
  const tokenizer = promptTokenizer(c, classNames);
  const length = Math.min(c.text.max_position_embeddings, 2 + Math.max(...prompts.map((p) => splitWords(p).length)));
  const ids = new Int32Array(prompts.length * length);
  prompts.forEach((p, i) => ids.set(tokenizer.encode(p, length).ids, i * length));
  return tf.tensor2d(ids, [prompts.length, length], "int32"); // [N, T]
};

/** Token ids `[C + ΣM_a, T]` of the class prompts, then every attribute's candidate prompts. */
export const promptIds = (
  c: VisionLanguageConfig,
  classNames: ReadonlyArray<string>,
  attributePrompts: ReadonlyArray<ReadonlyArray<string>> = [],
): tf.Tensor2D =>
  encodePrompts(c, classNames, [...classNames.map((name) => classPrompt(name, "")), ...attributePrompts.flat()]);

/** The normalised text embeddings `[rows, E]` of prompt ids `[rows, T]`. */
export const textEmbeddings = (
  p: VisionLanguageParams<tf.Tensor>,
  c: VisionLanguageConfig,
  ids: tf.Tensor2D,
): tf.Tensor2D => {
  if (p.text === undefined) throw new RangeError("vision-language: token ids need the jointly trained text tower");
  return embed(applyClipText(p.text, c.text, ids), p.textual); // [C, E]
};

/**
 * The text features `[rows, P]` of `prompts`: the jointly trained tower on their token ids, or the
 * frozen encoder's stored rows (a prompt it was not run on is an error naming it).
 */
export const textFeatures = (
  p: VisionLanguageParams<tf.Tensor>,
  c: VisionLanguageConfig,
  classNames: ReadonlyArray<string>,
  prompts: ReadonlyArray<string>,
): tf.Tensor2D => {
  if (c.frozenText !== undefined) {
    const stored = c.frozenText.prompts;
    if (p.frozen === undefined) throw new RangeError("vision-language: the frozen text features are missing");
    const rows = prompts.map((q) => {
      const i = stored.indexOf(q);
      if (i < 0) throw new RangeError(`vision-language: the frozen text encoder has no features for "${q}"`);
      return i;
    });
    return tf.tidy(() => tf.gather(p.frozen as tf.Tensor, tf.tensor1d(rows, "int32")) as tf.Tensor2D); // [rows, P]
  }
  if (p.text === undefined) throw new RangeError("vision-language: the text tower is missing");
  const text = p.text;
  return tf.tidy(() => applyClipText(text, c.text, encodePrompts(c, classNames, prompts))); // [rows, P]
};

/** The normalised embeddings `[C + ΣM_a, E]` of the class prompts, then every attribute's candidate prompts. */
export const promptEmbeddings = (
  p: VisionLanguageParams<tf.Tensor>,
  c: VisionLanguageConfig,
  classNames: ReadonlyArray<string>,
  attributePrompts: ReadonlyArray<ReadonlyArray<string>> = [],
): tf.Tensor2D =>
  tf.tidy(() =>
    embed(
      textFeatures(p, c, classNames, [...classNames.map((name) => classPrompt(name, "")), ...attributePrompts.flat()]),
      p.textual,
    )
  );

/**
 * The matched pairs of the last decoder layer: flat query rows `b·Q + q`, their nuclei's classes,
 * and which nucleus (image, target index) each one is.
 */
export interface MatchedQueries {
  readonly rows: Int32Array;
  readonly labels: Int32Array;
  readonly images: Int32Array;
  readonly targets: Int32Array;
}

/** The flat query rows and target classes of one decoder layer's matches (`images[b]`: image b's). */
export const matchedQueries = (
  images: ReadonlyArray<Match>,
  targets: ReadonlyArray<Pick<InstanceTargets, "classes">>,
  queriesPerImage: number,
): MatchedQueries => {
  const rows: number[] = [], labels: number[] = [], owners: number[] = [], nuclei: number[] = [];
  images.forEach((image, b) =>
    image.queryIndex.forEach((q, i) => {
      const t = image.targetIndex[i] as number;
      rows.push(b * queriesPerImage + q);
      labels.push(targets[b]?.classes[t] as number);
      owners.push(b);
      nuclei.push(t);
    })
  );
  return {
    rows: Int32Array.from(rows),
    labels: Int32Array.from(labels),
    images: Int32Array.from(owners),
    targets: Int32Array.from(nuclei),
  };
};

/** Per image, `[N_b · A]` scale indices of its targets' attributes (−1 unknown), and the `A` candidate counts. */
export interface AttributeBatch {
  readonly labels: ReadonlyArray<Int32Array>;
  readonly candidates: ReadonlyArray<number>;
}

/**
 * L_CL = λ_fix·L_fix + λ_attr·L_attr and L_cent, weighted (λ_CL 1, λ_cent 2); `queries` [B, Q, D]
 * are the final (enhanced) queries, `text` the embeddings of `promptIds` (class prompts first,
 * then each attribute's candidates), `tokens` SIM's dynamic ones.
 */
/** The organ prompts' embeddings `[O, C, E]` (organ-major) and each image's organ index `[B]`. */
export interface OrganText {
  readonly text: tf.Tensor3D;
  readonly ofImage: Int32Array;
}

export const visionLanguageLoss = (
  p: VisionLanguageParams<tf.Tensor>,
  c: VisionLanguageConfig,
  text: tf.Tensor2D,
  classes: number,
  queries: tf.Tensor3D,
  matched: MatchedQueries,
  tokens: tf.Tensor3D | undefined,
  attributes?: AttributeBatch,
  organs?: OrganText,
): { total: tf.Scalar; fix: tf.Scalar; attr: tf.Scalar; cent: tf.Scalar } =>
  tf.tidy(() => {
    const [b, q, d] = queries.shape;
    const classText = tf.slice(text, [0, 0], [classes, -1]) as tf.Tensor2D; // [C, E]
    const flat = tf.reshape(queries, [b * q, d]) as tf.Tensor2D; // [B·Q, D]
    const v = embed(tf.gather(flat, tf.tensor1d(matched.rows, "int32")) as tf.Tensor2D, p.visual); // [N, E]
    // with organ prompts each nucleus meets its own image's organ's class prompts: [N, C, E]
    const fixText = organs === undefined ? classText : tf.gather(
      organs.text,
      tf.tensor1d(Int32Array.from(matched.images, (image) => organs.ofImage[image] as number), "int32"),
    ) as tf.Tensor3D;
    const fix = c.fixedPrompts ? fixedPromptLoss(v, fixText, matched.labels, c.tau) : tf.scalar(0);
    let attr: tf.Scalar = tf.scalar(0);
    if (c.attributes && attributes !== undefined) {
      const A = attributes.candidates.length;
      let offset = classes;
      const targets = attributes.candidates.map((m, a): AttributeTarget => {
        const words = tf.slice(text, [offset, 0], [m, -1]) as tf.Tensor2D; // [M_a, E]
        offset += m;
        const positive = Int32Array.from(matched.rows, (_, i) => {
          const image = attributes.labels[matched.images[i] as number];
          return image?.[(matched.targets[i] as number) * A + a] ?? -1;
        });
        return { words, positive };
      });
      attr = attributeLoss(v, targets, c.tauAttr);
    }
    const cent = tokens === undefined || c.sim === undefined
      ? tf.scalar(0)
      : categoryCentreLoss(tokens, classText, p.visual, c.sim.k, c.tauCent);
    const total = tf.addN([
      tf.mul(c.weightFix, fix),
      tf.mul(c.weightAttr, attr),
      tf.mul(c.weightCent, cent),
    ]) as tf.Scalar;
    return { total, fix, attr, cent };
  });

/** The image-level sentences `a photo of a {class} nuclei.` of every class, embedded: [C, P]. */
export const classSentences = (p: VisionLanguageParams<tf.Tensor>, c: VisionLanguageConfig): tf.Tensor2D =>
  textFeatures(p, c, c.classNames, c.classNames.map((name) => imagePrompt([name]))); // [C, P]
