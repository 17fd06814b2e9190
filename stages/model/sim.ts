/**
 * IVAAN's Semantic Interaction Module (paper notes, "Key Designs" 3): K learnable category tokens
 * per class, background included, exchange information with the object queries in both directions.
 *
 *   tokens [(C+1)·K, D] ─ tile ─ [B, (C+1)·K, D]
 *     OQ→CT: tokens attend to the queries  (query = CT, key/value = OQ) + residual, LayerNorm [+ FFN + residual, LayerNorm]
 *       → dynamic tokens [B, (C+1)·K, D]   — each prototype gathers this image's visual evidence
 *     CT→OQ: queries attend to the dynamic tokens (query = OQ, key/value = dynamic CT) + residual, LayerNorm
 *       → enhanced queries [B, Q, D]        — each instance inherits class-level context
 *
 * Token layout: class c owns rows [c·K, (c+1)·K); the background group is last (rows C·K …), as the
 * class head's no-object class is C. `categoryCentreLoss` (alignment.ts) relies on this layout.
 *
 * Where SIM sits: once, after the last transformer decoder layer, before the class head and the
 * mask embedding, whose inputs become the enhanced queries (and so does the alignment's f_enhq).
 * Why there and not per layer:
 *  - the paper feeds "the enhanced queries" to the mask decoder, the class head and the contrastive
 *    alignment: one set of enhanced queries, after decoding;
 *  - the decoder layers stay exactly the baseline's (the ablation's row 5 adds a module instead of
 *    changing every layer), so SIM on/off is a config, and the masked attention of later layers
 *    still sees the masks the baseline's layers would predict;
 *  - per-layer SIM costs L× the parameters (9 layers in the SAM presets; or it shares them across
 *    layers of different statistics) and L× the attention over Q·(C+1)·K on a 2-core budget, for a
 *    gain the paper does not claim.
 * The catch: the deep-supervision predictions of the earlier layers come from un-enhanced queries
 * through the same heads. The residual + LayerNorm keeps the enhanced queries in the space the
 * heads read; applying SIM inside every prediction (not feeding back) would be the config to try.
 *
 * Gotchas:
 *  - No positional embeddings: SIM is equivariant to permuting the object queries (the dynamic
 *    tokens do not depend on their order at all), as a set-prediction head should be.
 *  - The tokens start at unit scale (truncated normal σ = 1, like the decoder's learned queries),
 *    not ViT-small (σ = 0.02): they are the residual stream of a post-LayerNorm block, and a small
 *    residual makes the LayerNorm divide by a small std. Measured at D = 256, Q = 120, 30 tokens:
 *    σ = 0.02 gives the token side ≈ 45× larger gradients (‖∂/∂tokens‖ 52 vs 1.1 for a unit-scale
 *    upstream), which would dominate a clipped global norm (train_step.ts clips at 1), and dynamic
 *    tokens that start nearly alike (mean cosine 0.17 vs 0.03: mostly the same attended content).
 *    `tokenStd` sets σ for an ablation.
 *  - The key projections' biases get a zero gradient (softmax ignores a shift shared by all keys);
 *    they are kept to reuse the decoder's attention unchanged.
 *  - `applySim` returns tensors the caller disposes.
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

export interface SimConfig {
  /** C: classes without the background */
  readonly classes: number;
  /** K: category tokens per class (the paper: 5) */
  readonly k: number;
  /** D: width of the queries and tokens */
  readonly d: number;
  /** attention heads (D must divide by it) */
  readonly heads: number;
  /** hidden width of the tokens' FFN after OQ→CT; absent = no FFN */
  readonly ffn?: number;
  /** σ of the tokens' truncated-normal initialisation; absent = 1 (see the gotchas) */
  readonly tokenStd?: number;
}

/** The FFN on the dynamic tokens (ReLU, as the decoder's). */
export interface SimFfnParams<P extends tf.Tensor = tf.Variable> {
  readonly fc1: LinearParams<P>; // D → F
  readonly fc2: LinearParams<P>; // F → D
  readonly norm: NormParams<P>;
}

export interface SimParams<P extends tf.Tensor = tf.Variable> {
  /** the learnable category tokens, class c at rows [c·K, (c+1)·K), background last */
  readonly tokens: P; // [(C+1)·K, D]
  /** OQ→CT: tokens query, object queries key and value */
  readonly oqToCt: AttentionParams<P>;
  readonly oqToCtNorm: NormParams<P>;
  readonly ffn?: SimFfnParams<P>;
  /** CT→OQ: object queries query, dynamic tokens key and value */
  readonly ctToOq: AttentionParams<P>;
  readonly ctToOqNorm: NormParams<P>;
}

/** SIM's outputs. */
export interface SimOutput {
  /** enhanced object queries */
  readonly queries: tf.Tensor3D; // [B, Q, D]
  /** dynamic category tokens, laid out as the learned ones */
  readonly tokens: tf.Tensor3D; // [B, (C+1)·K, D]
}

const check = (c: SimConfig): void => {
  const positive = (x: number) => Number.isInteger(x) && x > 0;
  if (!positive(c.classes) || !positive(c.k) || !positive(c.d) || !positive(c.heads) || c.d % c.heads !== 0) {
    throw new RangeError(
      `sim: expected positive integers classes, k, d, heads with d divisible by heads, got ` +
        `classes=${c.classes} k=${c.k} d=${c.d} heads=${c.heads}`,
    );
  }
  if (c.ffn !== undefined && !positive(c.ffn)) {
    throw new RangeError(`sim: ffn must be a positive integer, got ${c.ffn}`);
  }
  if (c.tokenStd !== undefined && !(c.tokenStd > 0)) {
    throw new RangeError(`sim: tokenStd must be > 0, got ${c.tokenStd}`);
  }
};

export const initSim = (init: Initializer, c: SimConfig): SimParams => {
  check(c);
  return {
    // as Mask2Former's query_feat and SAM's mask tokens (N(0, 1) embeddings), truncated at ±2σ
    tokens: init.truncNormal([(c.classes + 1) * c.k, c.d], c.tokenStd ?? 1),
    oqToCt: initAttention(init, c.d),
    oqToCtNorm: initNorm(init, c.d),
    ...(c.ffn === undefined ? {} : {
      ffn: { fc1: initLinear(init, c.d, c.ffn), fc2: initLinear(init, c.ffn, c.d), norm: initNorm(init, c.d) },
    }),
    ctToOq: initAttention(init, c.d),
    ctToOqNorm: initNorm(init, c.d),
  };
};

/**
 * Runs SIM on object queries [B, Q, D]: the dynamic tokens and the enhanced queries.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { initializer } from "./layers.ts";
 * import { applySim, initSim } from "./sim.ts";
 * const config = { classes: 5, k: 5, d: 32, heads: 4 };
 * const params = initSim(initializer(0), config);
 * const { queries, tokens } = applySim(params, config, tf.randomNormal([2, 10, 32]) as tf.Tensor3D);
 * // queries [2, 10, 32], tokens [2, 30, 32]
 * ```
 */
// IVAAN, "Key Designs" 3: SIM, OQ→CT then CT→OQ
export const applySim = (p: SimParams<tf.Tensor>, c: SimConfig, queries: tf.Tensor3D): SimOutput => {
  const [b, , d] = queries.shape, t = (c.classes + 1) * c.k;
  if (d !== c.d || p.tokens.shape.join() !== [t, d].join()) {
    throw new RangeError(
      `applySim: expected queries [B, Q, ${c.d}] and tokens [${t}, ${c.d}], got [${queries.shape}] and [${p.tokens.shape}]`,
    );
  }
  return tf.tidy(() => {
    const norm = (x: tf.Tensor3D, np: NormParams<tf.Tensor>) => layerNorm(x, np, 1e-5);
    const learned = tf.tile(tf.expandDims(p.tokens, 0), [b, 1, 1]) as tf.Tensor3D; // [B, T, D]
    // OQ→CT: the category tokens gather evidence from the object queries
    const gathered = attention(p.oqToCt, learned, queries, queries, c.heads); // [B, T, D]
    let tokens = norm(tf.add(learned, gathered) as tf.Tensor3D, p.oqToCtNorm); // [B, T, D]
    if (p.ffn !== undefined) {
      const hidden = tf.relu(linear(tf.reshape(tokens, [b * t, d]), p.ffn.fc1)); // [B·T, F]
      const out = tf.reshape(linear(hidden, p.ffn.fc2), [b, t, d]); // [B, T, D]
      tokens = norm(tf.add(tokens, out) as tf.Tensor3D, p.ffn.norm); // [B, T, D]
    }
    // CT→OQ: the object queries read class context from the dynamic tokens
    const context = attention(p.ctToOq, queries, tokens, tokens, c.heads); // [B, Q, D]
    const enhanced = norm(tf.add(queries, context) as tf.Tensor3D, p.ctToOqNorm); // [B, Q, D]
    return { queries: enhanced, tokens };
  });
};
