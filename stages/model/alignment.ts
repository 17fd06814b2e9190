/**
 * IVAAN's instance-level vision–language losses (paper notes, "Key Designs" 2 and 3, "Loss &
 * Training"): every nucleus and every class prototype is pulled towards its text and away from the
 * other texts of the same family.
 *
 * Mental model: everything meets on one E-wide unit sphere. `embed` brings D-wide features there
 * (enhanced queries [N, D], category-token means [C, D]) with a bias-free projection and an ℓ2
 * normalisation; text embeddings arrive already there (projected and normalised on the text side).
 * Each loss is a cross-entropy over cosine similarities divided by a temperature:
 *
 *   L_fix  — nucleus v_i against the C class prompts `a {class} nucleus in {organ}`, positive = its class;
 *   L_attr — per attribute a, v_i against a's M_a word prompts `a {word} nucleus`, positive = its word;
 *   L_cent — the mean of class c's K category tokens against the C class prompts, positive = c.
 *
 * `alignmentLoss` is the paper's L_CL = λ_fix·L_fix + λ_attr·L_attr; L_cent is a separate term of the
 * total loss (λ_cent = 2) and is weighted by the caller.
 *
 * Common task: after Hungarian matching, gather the matched enhanced queries [N, D], `embed` them,
 * and call `alignmentLoss(v, classText, labels, attributes)` inside the gradient function; add
 * `categoryCentreLoss(simTokens, organFreeClassText, projection, k)`.
 *
 * Gotchas:
 *  - The losses take `v` and the text rows as given and do not renormalise: pass `embed`'s output
 *    and normalised text, or the "cosines" are not cosines and the temperatures mean nothing.
 *  - L_attr is the MEAN over the attributes that have at least one known word in the batch (the
 *    paper writes one L^a_attr per attribute and a single λ_attr). Averaging keeps λ_attr = 0.3
 *    meaning "a lighter cue than L_fix" whatever the number of attributes the data-driven selection
 *    keeps (a sum over the paper's 4 would weigh 1.2 cross-entropies against L_fix's 1), and an
 *    attribute with no known word in a batch neither dilutes nor inflates the others.
 *  - L_cent leaves out the background group (the last K tokens, index C as in the class head's
 *    no-object class): the paper sums over the C classes and has no background text; the background
 *    tokens are shaped by SIM's attention and the downstream losses only.
 *  - Fixed prompts name the organ, so `classText` may be per nucleus ([N, C, E], each nucleus's
 *    organ); L_cent's prototypes are dataset-level: give it organ-free class prompts ([C, E]).
 *  - An empty batch (N = 0, or no known word anywhere) gives 0 while keeping every input on the
 *    gradient path (gradients exactly 0), so `tf.grads` over a fixed list of inputs never throws.
 *  - Returned tensors are the caller's to dispose.
 */
import * as tf from "@tensorflow/tfjs";
import { type Initializer, linear, type LinearParams } from "./layers.ts";

/** The bias-free projection into the shared embedding space (`weight` [D, E]). */
export type ProjectionParams<P extends tf.Tensor = tf.Variable> = LinearParams<P>;

/** ε of the ℓ2 normalisation: rows shorter than this are divided by ε (PyTorch F.normalize). */
export const NORM_EPS = 1e-12;

/** IVAAN, "Loss & Training": τ = τ_CT = 0.07, τ_attr = 0.15. */
export const TAU = 0.07, TAU_ATTR = 0.15;

/** The weights and temperatures of `alignmentLoss`. */
export interface AlignmentOptions {
  /** λ_fix: weight of the fixed-prompt loss in `total`. */
  readonly weightFix: number;
  /** λ_attr: weight of the attribute loss in `total`. */
  readonly weightAttr: number;
  /** τ of the fixed prompts. */
  readonly tau: number;
  /** τ_attr of the attribute prompts. */
  readonly tauAttr: number;
}

// IVAAN, "Loss & Training": λ_fix = 1, λ_attr = 0.3, τ = 0.07, τ_attr = 0.15
export const defaultAlignmentOptions: AlignmentOptions = { weightFix: 1, weightAttr: 0.3, tau: TAU, tauAttr: TAU_ATTR };

/** One attribute's contrastive target. */
export interface AttributeTarget {
  /** The normalised embeddings of the attribute's word prompts, its whole vocabulary: [M_a, E]. */
  readonly words: tf.Tensor2D;
  /** Per nucleus, the index of its word in `words`; −1 = unknown (left out of N_a): [N]. */
  readonly positive: Int32Array;
}

/** L_CL and its parts (unweighted). */
export interface AlignmentLoss {
  readonly total: tf.Scalar;
  readonly parts: { readonly fix: tf.Scalar; readonly attr: tf.Scalar };
}

/**
 * A projection D → E without bias, N(0, 1/D) truncated at ±2σ.
 */
// CLIP, model.py: proj = width ** -0.5 * randn(width, output_dim), no bias
export const initProjection = (init: Initializer, d: number, e: number): ProjectionParams => ({
  weight: init.truncNormal([d, e], 1 / Math.sqrt(d)),
});

/** Rows divided by their ℓ2 norm, or by ε when shorter: x·rsqrt(max(Σx², ε²)); finite gradient at 0. */
export const l2Normalize = <T extends tf.Tensor>(x: T): T =>
  tf.tidy(() => tf.mul(x, tf.rsqrt(tf.maximum(tf.sum(tf.square(x), -1, true), NORM_EPS * NORM_EPS))) as T); // [..., E]

/**
 * Projects features into the embedding space and ℓ2-normalises them: x [N, D] → v [N, E].
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { embed } from "./alignment.ts";
 * const v = embed(tf.tensor2d([[3, 4]]), { weight: tf.eye(2) }); // [[0.6, 0.8]]
 * ```
 */
export const embed = (x: tf.Tensor2D, projection: ProjectionParams<tf.Tensor>): tf.Tensor2D =>
  tf.tidy(() => l2Normalize(linear(x, projection))); // [N, E]

/** 0 that still depends on every input (gradients exactly 0). */
const zeroOn = (inputs: ReadonlyArray<tf.Tensor>): tf.Scalar =>
  tf.mul(0, tf.addN(inputs.map((t) => tf.sum(t)))) as tf.Scalar;

/**
 * −Σ_i log softmax(logits_i)[positive_i] over the rows with positive_i ≥ 0 (a one-hot product, no
 * gather kernel).
 */
const crossEntropySum = (logits: tf.Tensor2D, positive: Int32Array): tf.Scalar => {
  const [n, m] = logits.shape;
  const oneHot = new Float32Array(n * m);
  positive.forEach((p, i) => {
    if (p >= 0) oneHot[i * m + p] = 1;
  });
  return tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), tf.tensor2d(oneHot, [n, m])))) as tf.Scalar;
};

const checkIndices = (op: string, what: string, indices: Int32Array, n: number, m: number, unknown: boolean) => {
  if (indices.length !== n) throw new RangeError(`${op}: ${what} has ${indices.length} entries, expected N = ${n}`);
  const bad = indices.findIndex((y) => y >= m || y < (unknown ? -1 : 0));
  if (bad >= 0) {
    throw new RangeError(
      `${op}: ${what}[${bad}] = ${indices[bad]}, expected ${unknown ? "−1 or " : ""}an index in [0, ${m})`,
    );
  }
};

/**
 * L_fix = −1/N Σ_i log softmax_j(v_i·T_j / τ)[y_i]: each nucleus against the class prompts.
 * `classText` is [C, E] (shared) or [N, C, E] (per nucleus, e.g. its organ's prompts); `labels`
 * holds each nucleus's class in [0, C). N = 0 gives 0.
 */
// IVAAN, "Key Designs" 2: L_fix
export const fixedPromptLoss = (
  v: tf.Tensor2D,
  classText: tf.Tensor2D | tf.Tensor3D,
  labels: Int32Array,
  tau: number = TAU,
): tf.Scalar =>
  tf.tidy(() => {
    const [n, e] = v.shape;
    const perNucleus = classText.shape.length === 3;
    const c = classText.shape[perNucleus ? 1 : 0] as number;
    if (classText.shape[classText.shape.length - 1] !== e || (perNucleus && classText.shape[0] !== n)) {
      throw new RangeError(
        `fixedPromptLoss: classText must be [C, ${e}] or [${n}, C, ${e}] for v [${v.shape}], got [${classText.shape}]`,
      );
    }
    checkIndices("fixedPromptLoss", "labels", labels, n, c, false);
    if (n === 0) return zeroOn([v, classText]);
    const cosines = perNucleus
      ? tf.sum(tf.mul(tf.expandDims(v, 1), classText), -1) as tf.Tensor2D // [N, C]
      : tf.matMul(v, classText as tf.Tensor2D, false, true); // [N, C]
    return tf.div(crossEntropySum(tf.div(cosines, tau), labels), n) as tf.Scalar;
  });

/**
 * L_attr = mean over attributes a with N_a > 0 of −1/N_a Σ_{i: known} log softmax_m(v_i·t^m_a / τ_attr)[pos_i];
 * 0 when no attribute has a known word (see the module's gotchas for why a mean).
 */
// IVAAN, "Key Designs" 2: L^a_attr
export const attributeLoss = (
  v: tf.Tensor2D,
  attributes: ReadonlyArray<AttributeTarget>,
  tau: number = TAU_ATTR,
): tf.Scalar =>
  tf.tidy(() => {
    const [n, e] = v.shape;
    const known: tf.Scalar[] = [], unused: tf.Tensor[] = [v];
    attributes.forEach(({ words, positive }, a) => {
      const [m, we] = words.shape;
      if (we !== e) throw new RangeError(`attributeLoss: attribute ${a} words must be [M, ${e}], got [${words.shape}]`);
      checkIndices("attributeLoss", `attribute ${a} positive`, positive, n, m, true);
      const count = positive.reduce((s, p) => s + (p >= 0 ? 1 : 0), 0);
      if (count === 0) {
        unused.push(words);
        return;
      }
      const logits = tf.div(tf.matMul(v, words, false, true), tau) as tf.Tensor2D; // [N, M_a]
      known.push(tf.div(crossEntropySum(logits, positive), count) as tf.Scalar);
    });
    const zero = zeroOn(unused); // keeps v and the unused vocabularies on the gradient path
    return known.length === 0 ? zero : tf.add(tf.div(tf.addN(known), known.length), zero) as tf.Scalar;
  });

/**
 * L_cent = −1/C Σ_c log softmax_j(q̄_c·T_j / τ_CT)[c], q̄_c = normalise(projection(mean of class c's
 * K tokens)). Tokens are grouped as SIM lays them out, class c at rows [c·K, (c+1)·K) and the
 * background group last (left out). Tokens [B, (C+1)·K, D] (SIM's dynamic tokens) give the mean of
 * the B per-image losses; [(C+1)·K, D] (the learned tokens) is B = 1. Give it the projection that
 * embeds the queries, so that prototypes and nuclei share one space.
 */
// IVAAN, "Key Designs" 3: L_cent over the C class groups
export const categoryCentreLoss = (
  tokens: tf.Tensor2D | tf.Tensor3D,
  classText: tf.Tensor2D,
  projection: ProjectionParams<tf.Tensor>,
  k: number,
  tau: number = TAU,
): tf.Scalar =>
  tf.tidy(() => {
    const [c, e] = classText.shape;
    const [rows, d] = tokens.shape.slice(-2) as [number, number];
    const b = tokens.shape.length === 3 ? tokens.shape[0] as number : 1;
    if (!Number.isInteger(k) || k < 1 || c < 1 || rows !== (c + 1) * k) {
      throw new RangeError(
        `categoryCentreLoss: tokens must hold (C+1)·k = ${(c + 1) * k} rows for classText [${classText.shape}] ` +
          `and k = ${k}, got [${tokens.shape}]`,
      );
    }
    if (projection.weight.shape.join() !== [d, e].join()) {
      throw new RangeError(`categoryCentreLoss: projection must be [${d}, ${e}], got [${projection.weight.shape}]`);
    }
    if (b === 0) return zeroOn([tokens, classText, projection.weight]);
    const groups = tf.mean(tf.reshape(tokens, [b, c + 1, k, d]), 2); // [B, C+1, D]
    const means = tf.reshape(tf.slice(groups, [0, 0, 0], [b, c, d]), [b * c, d]) as tf.Tensor2D; // [B·C, D]
    const prototypes = embed(means, projection); // [B·C, E]
    const logits = tf.div(tf.matMul(prototypes, classText, false, true), tau) as tf.Tensor2D; // [B·C, C]
    const positive = Int32Array.from({ length: b * c }, (_, r) => r % c);
    return tf.div(crossEntropySum(logits, positive), b * c) as tf.Scalar;
  });

/**
 * The paper's L_CL = λ_fix·L_fix + λ_attr·L_attr for N matched nuclei `v` [N, E] (normalised).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { alignmentLoss } from "./alignment.ts";
 * const v = tf.tensor2d([[1, 0], [0.6, 0.8]]); // [N=2, E=2]
 * const classText = tf.tensor2d([[1, 0], [0, 1]]); // [C=2, E]
 * const size = { words: tf.tensor2d([[0, 1], [0, -1]]), positive: Int32Array.of(1, -1) }; // [M=2, E]
 * const { total, parts } = alignmentLoss(v, classText, Int32Array.of(0, 1), [size]);
 * ```
 */
export const alignmentLoss = (
  v: tf.Tensor2D,
  classText: tf.Tensor2D | tf.Tensor3D,
  labels: Int32Array,
  attributes: ReadonlyArray<AttributeTarget>,
  options: Partial<AlignmentOptions> = {},
): AlignmentLoss => {
  const o = { ...defaultAlignmentOptions, ...options };
  return tf.tidy(() => {
    const fix = fixedPromptLoss(v, classText, labels, o.tau);
    const attr = attributeLoss(v, attributes, o.tauAttr);
    const total = tf.add(tf.mul(o.weightFix, fix), tf.mul(o.weightAttr, attr)) as tf.Scalar;
    return { total, parts: { fix, attr } };
  });
};
