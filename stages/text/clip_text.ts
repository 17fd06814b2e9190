/**
 * A CLIP-style text encoder (Radford et al. 2021; Hugging Face `CLIPTextModelWithProjection`) as a
 * functional tfjs module: `initClipText(config, seed) → params`, `applyClipText(params, config, ids)
 * → embeddings`.
 *
 * ids `[B, T]` (int32 token ids from stages/text/tokenizer.ts, T ≤ max_position_embeddings) →
 * text embeddings `[B, projection_dim]` (not normalised).
 *
 * Steps (as CLIP's text tower): token embedding + learned position embedding → `num_hidden_layers`
 * pre-LayerNorm blocks (LayerNorm → causal multi-head self-attention, q/k/v/out projections with bias
 * → residual; LayerNorm → fc1 → quick_gelu or gelu → fc2 → residual) → final LayerNorm → the hidden
 * state at each row's end-of-text token → `text_projection` (linear, no bias).
 *
 * Pooling rule (HF modeling_clip.py): the first position whose id is `eos_token_id`; but a config
 * with `eos_token_id` 2 — openai's checkpoints carry that wrong value — pools at the largest id of the
 * row (CLIP's eot, 49407, is its largest id), which HF keeps for those configs (PR #24773). A row
 * without its eos pools at position 0, as HF does; `eosPositions` finds such rows on the host.
 *
 * Gotchas: attention is causal only (no padding mask), so tokens after the pooled eot — padding or
 * not — never change the output. PyTorch Linear weights `[out, in]` are transposed once, in
 * `loadClipTextWeights`; embeddings keep their `[rows, D]` layout. Exact GELU uses Erf, a slow scalar
 * kernel on WASM (BACKEND-NOTES); CLIP's own quick_gelu is a sigmoid.
 *
 * Dimension letters: B batch, T text tokens, D hidden_size, E heads, c per-head width (D / E),
 * F intermediate_size, P projection_dim, V vocab_size.
 */
import * as tf from "@tensorflow/tfjs";
import { Data, Effect, Schema } from "effect";
import type { HostTensor } from "../../pipeline/codec/safetensors.ts";
import {
  gelu,
  layerNorm,
  linear,
  type LinearParams,
  type NormParams,
  parameterList,
  seededVariables,
} from "../model/layers.ts";
import { WORD_SPECIALS } from "./tokenizer.ts";

/** Activations of the MLP, by their CLIPTextConfig `hidden_act` names. */
const ACTIVATIONS = {
  /** x·σ(1.702x), openai/CLIP model.py `QuickGELU` */
  quick_gelu: (x: tf.Tensor2D): tf.Tensor2D => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702))),
  /** exact GELU, 0.5·x·(1 + erf(x/√2)) */
  gelu: (x: tf.Tensor2D): tf.Tensor2D => gelu(x),
} as const;

/** `hidden_act` values we implement. */
export type HiddenAct = keyof typeof ACTIVATIONS;
export const HIDDEN_ACTS = ["quick_gelu", "gelu"] as const satisfies ReadonlyArray<HiddenAct>;

const Size = (hfDefault: number) =>
  Schema.Int.pipe(
    Schema.check(Schema.isGreaterThanOrEqualTo(1)),
    Schema.withDecodingDefaultKey(Effect.succeed(hfDefault)),
  );

/** CLIPTextConfig's keys, with its defaults (transformers configuration_clip.py); other keys are ignored. */
export const ClipTextConfigSchema = Schema.Struct({
  vocab_size: Size(49408),
  max_position_embeddings: Size(77),
  hidden_size: Size(512),
  num_attention_heads: Size(8),
  num_hidden_layers: Size(12),
  intermediate_size: Size(2048),
  projection_dim: Size(512),
  layer_norm_eps: Schema.Number.pipe(Schema.withDecodingDefaultKey(Effect.succeed(1e-5))),
  hidden_act: Schema.Literals(HIDDEN_ACTS).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed("quick_gelu" as const)),
  ),
  eos_token_id: Schema.Int.pipe(
    Schema.check(Schema.isGreaterThanOrEqualTo(0)),
    Schema.withDecodingDefaultKey(Effect.succeed(2)),
  ),
});

/** Hyper-parameters; names and meanings are Hugging Face CLIPTextConfig's. */
export interface ClipTextConfig {
  /** Rows of the token embedding (ids 0 … V − 1). */
  readonly vocab_size: number;
  /** Rows of the learned position embedding: the longest T. */
  readonly max_position_embeddings: number;
  /** Token width D. */
  readonly hidden_size: number;
  /** Attention heads; must divide hidden_size. */
  readonly num_attention_heads: number;
  /** Number of transformer blocks. */
  readonly num_hidden_layers: number;
  /** MLP hidden width F. */
  readonly intermediate_size: number;
  /** Output width P of `text_projection`. */
  readonly projection_dim: number;
  /** Epsilon of every LayerNorm. */
  readonly layer_norm_eps: number;
  /** MLP activation: CLIP's `quick_gelu` or exact `gelu`. */
  readonly hidden_act: HiddenAct;
  /** The id pooled at (2: HF's legacy argmax rule, see the module header). */
  readonly eos_token_id: number;
}

/** HF's `eos_token_id` value that selects the legacy pooling rule (largest id of the row). */
export const LEGACY_EOS_TOKEN_ID = 2;

/**
 * Named variants. `clip` is the ViT-B/32 text tower (openai/clip-vit-base-patch32; also PLIP's), with
 * eos_token_id 49407, the id of `<|endoftext|>` — for tokenizer output it pools where the legacy rule
 * would. `tiny` is trained jointly with the tiny image model on 2 CPU cores: D 128, 4 heads and F 256
 * are the tiny mask decoder's width, heads and FFN, so the embeddings are query-sized without a
 * mismatch of scale; 2 layers suffice for prompts of a ~100-word vocabulary. That is ≈ 0.32 M
 * parameters (≈ 8 % of the tiny ViT's 4.15 M) and ≈ 0.53 MFLOP a token forward — 40 prompts of 16
 * tokens cost ≈ 1 GFLOP with the backward pass, a few per cent of an image step. 48 positions hold the
 * longest prompt, a five-class image text (5 × 7 words + sot + eot = 37). vocab_size 256 bounds the
 * word vocabulary (`wordTokenizer(prompts).vocabSize` ≈ 100; set it to that for no unused rows);
 * eos_token_id is the word tokenizer's `<eot>`.
 */
export const CLIP_TEXT_PRESETS: Readonly<Record<"tiny" | "clip", ClipTextConfig>> = {
  tiny: {
    vocab_size: 256,
    max_position_embeddings: 48,
    hidden_size: 128,
    num_attention_heads: 4,
    num_hidden_layers: 2,
    intermediate_size: 256,
    projection_dim: 128,
    layer_norm_eps: 1e-5,
    hidden_act: "quick_gelu",
    eos_token_id: WORD_SPECIALS.eot,
  },
  clip: {
    vocab_size: 49408,
    max_position_embeddings: 77,
    hidden_size: 512,
    num_attention_heads: 8,
    num_hidden_layers: 12,
    intermediate_size: 2048,
    projection_dim: 512,
    layer_norm_eps: 1e-5,
    hidden_act: "quick_gelu",
    eos_token_id: 49407,
  },
};

/** One encoder layer (HF `CLIPEncoderLayer`). */
export interface ClipTextLayerParams<P extends tf.Tensor = tf.Variable> {
  readonly layer_norm1: NormParams<P>;
  readonly self_attn: {
    readonly q_proj: LinearParams<P>; // [D, D]
    readonly k_proj: LinearParams<P>; // [D, D]
    readonly v_proj: LinearParams<P>; // [D, D]
    readonly out_proj: LinearParams<P>; // [D, D]
  };
  readonly layer_norm2: NormParams<P>;
  readonly mlp: { readonly fc1: LinearParams<P>; readonly fc2: LinearParams<P> }; // [D, F], [F, D]
}

/** All encoder parameters: a plain nested record (tf.Variable from init/load; any tf.Tensor to apply). */
export interface ClipTextParams<P extends tf.Tensor = tf.Variable> {
  readonly token_embedding: P; // [V, D]
  readonly position_embedding: P; // [max_position_embeddings, D]
  readonly layers: ReadonlyArray<ClipTextLayerParams<P>>;
  readonly final_layer_norm: NormParams<P>;
  readonly text_projection: LinearParams<P>; // [D, P], no bias
}

/** The first field of `config` that cannot work, or undefined. */
const configProblem = (config: ClipTextConfig): { field: string; reason: string } | undefined => {
  const sizes = [
    "vocab_size",
    "max_position_embeddings",
    "hidden_size",
    "num_attention_heads",
    "num_hidden_layers",
    "intermediate_size",
    "projection_dim",
  ] as const;
  for (const field of sizes) {
    const v = config[field];
    if (!Number.isInteger(v) || v < 1) return { field, reason: `expected a positive integer, found ${v}` };
  }
  if (config.hidden_size % config.num_attention_heads !== 0) {
    return {
      field: "hidden_size",
      reason: `${config.hidden_size} is not divisible by num_attention_heads ${config.num_attention_heads}`,
    };
  }
  if (!Object.hasOwn(ACTIVATIONS, config.hidden_act)) {
    return { field: "hidden_act", reason: `expected one of ${HIDDEN_ACTS.join(", ")}, found ${config.hidden_act}` };
  }
  if (!Number.isInteger(config.eos_token_id) || config.eos_token_id < 0) {
    return { field: "eos_token_id", reason: `expected a non-negative integer, found ${config.eos_token_id}` };
  }
  return undefined;
};

const checkConfig = (config: ClipTextConfig): void => {
  const problem = configProblem(config);
  if (problem !== undefined) throw new RangeError(`clip_text: config.${problem.field}: ${problem.reason}`);
};

/**
 * Fresh parameters, CLIP's initialisation (openai/CLIP model.py `initialize_parameters`), truncated
 * at 2σ: token embedding σ 0.02, position embedding σ 0.01, q/k/v σ D^-½, out_proj and fc2
 * σ D^-½·(2L)^-½, fc1 σ (2D)^-½, text_projection σ D^-½; biases 0, LayerNorm 1/0. Deterministic in `seed`.
 */
export const initClipText = (config: ClipTextConfig, seed: number): ClipTextParams => {
  checkConfig(config);
  const { normal, zeros, ones } = seededVariables(seed);
  const dense = (nIn: number, nOut: number, std: number): LinearParams => ({
    weight: normal([nIn, nOut], std), // [in, out]
    bias: zeros([nOut]), // [out]
  });
  const norm = (c: number): NormParams => ({ weight: ones([c]), bias: zeros([c]) }); // [D], [D]
  const { hidden_size: D, intermediate_size: F, num_hidden_layers: L } = config;
  const attnStd = D ** -0.5, projStd = D ** -0.5 * (2 * L) ** -0.5, fcStd = (2 * D) ** -0.5;
  return {
    token_embedding: normal([config.vocab_size, D], 0.02), // [V, D]
    position_embedding: normal([config.max_position_embeddings, D], 0.01), // [Tmax, D]
    layers: Array.from({ length: L }, (): ClipTextLayerParams => ({
      layer_norm1: norm(D),
      self_attn: {
        q_proj: dense(D, D, attnStd), // [D, D]
        k_proj: dense(D, D, attnStd), // [D, D]
        v_proj: dense(D, D, attnStd), // [D, D]
        out_proj: dense(D, D, projStd), // [D, D]
      },
      layer_norm2: norm(D),
      mlp: { fc1: dense(D, F, fcStd), fc2: dense(F, D, projStd) }, // [D, F], [F, D]
    })),
    final_layer_norm: norm(D),
    text_projection: { weight: normal([D, config.projection_dim], attnStd) }, // [D, P]
  };
};

// ---------------------------------------------------------------------------------------------
// Layers

/**
 * `[T, T]` additive causal mask: 0 where key ≤ query, −1e9 above the diagonal. Finite so that no
 * backend meets −∞ − (−∞); exp(−1e9 − max) is 0 in float32 all the same.
 */
const causalMask = (T: number): tf.Tensor2D => {
  const m = new Float32Array(T * T);
  for (let q = 0; q < T; q++) m.fill(-1e9, q * T + q + 1, (q + 1) * T);
  return tf.tensor2d(m, [T, T]); // [T, T]
};

/** Causal multi-head self-attention over each row's T tokens (HF `CLIPAttention`). */
const selfAttention = (
  x: tf.Tensor2D, // [B·T, D]
  p: ClipTextLayerParams<tf.Tensor>["self_attn"],
  config: ClipTextConfig,
  B: number,
  T: number,
  mask: tf.Tensor2D, // [T, T]
): tf.Tensor2D => {
  const D = config.hidden_size, E = config.num_attention_heads, c = D / E;
  const split = (y: tf.Tensor2D): tf.Tensor3D =>
    tf.reshape(tf.transpose(tf.reshape(y, [B, T, E, c]), [0, 2, 1, 3]), [B * E, T, c]); // [B·E, T, c]
  const q = split(tf.mul(linear(x, p.q_proj), c ** -0.5)); // [B·E, T, c], scaled after the bias as HF
  const k = split(linear(x, p.k_proj)); // [B·E, T, c]
  const v = split(linear(x, p.v_proj)); // [B·E, T, c]
  const logits = tf.add(tf.matMul(q, k, false, true), mask); // [B·E, T, T]
  const mixed = tf.matMul(tf.softmax(logits), v); // [B·E, T, c]
  const merged = tf.reshape<tf.Rank.R2>(tf.transpose(tf.reshape(mixed, [B, E, T, c]), [0, 2, 1, 3]), [B * T, D]); // [B·T, D]
  return linear(merged, p.out_proj); // [B·T, D]
};

/** One pre-norm block (HF `CLIPEncoderLayer`) on the flattened tokens `[B·T, D]`. */
const encoderLayer = (
  x: tf.Tensor2D, // [B·T, D]
  p: ClipTextLayerParams<tf.Tensor>,
  config: ClipTextConfig,
  B: number,
  T: number,
  mask: tf.Tensor2D,
): tf.Tensor2D => {
  const eps = config.layer_norm_eps;
  // attention branch: pre-norm, causal self-attention, residual
  const x1 = tf.add<tf.Tensor2D>(x, selfAttention(layerNorm(x, p.layer_norm1, eps), p.self_attn, config, B, T, mask)); // [B·T, D]
  // MLP branch: pre-norm, fc1, activation, fc2, residual
  const hidden = ACTIVATIONS[config.hidden_act](linear(layerNorm(x1, p.layer_norm2, eps), p.mlp.fc1)); // [B·T, F]
  return tf.add(x1, linear(hidden, p.mlp.fc2)); // [B·T, D]
};

/**
 * Row of `[B·T, D]` pooled for each batch row (module header's rule), on the device: argMax of a
 * score that is unique per row, so ties can never pick a later position on any backend.
 */
const pooledRows = (ids: tf.Tensor2D, eosTokenId: number): tf.Tensor1D => {
  const [B, T] = ids.shape;
  const countdown = tf.range(T, 0, -1, "int32"); // [T]: T, T − 1, …, 1 (earlier is larger)
  const score = eosTokenId === LEGACY_EOS_TOKEN_ID
    ? tf.add(tf.mul(ids, tf.scalar(T, "int32")), tf.sub(countdown, tf.scalar(1, "int32"))) // [B, T]: id·T + T−1−t
    : tf.mul(tf.cast(tf.equal(ids, tf.scalar(eosTokenId, "int32")), "int32"), countdown); // [B, T]: T−t at an eos
  return tf.add(tf.argMax(score, 1), tf.range(0, B * T, T, "int32")); // [B]
};

/**
 * Encodes token ids `[B, T]` (int32, T ≤ max_position_embeddings) into text embeddings
 * `[B, projection_dim]`. All intermediates are released; only the result stays.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { applyClipText, CLIP_TEXT_PRESETS, initClipText } from "./clip_text.ts";
 * import { wordTokenizer } from "./tokenizer.ts";
 * const tok = wordTokenizer(["a large nucleus", "a small nucleus"]);
 * const config = { ...CLIP_TEXT_PRESETS.tiny, vocab_size: tok.vocabSize };
 * const params = initClipText(config, 0);
 * const ids = tf.tensor2d(tok.encode("a large nucleus", 8).ids, [1, 8], "int32"); // [1, 8]
 * const y = applyClipText(params, config, ids); // [1, 128]
 * ```
 */
export const applyClipText = (
  params: ClipTextParams<tf.Tensor>,
  config: ClipTextConfig,
  ids: tf.Tensor2D,
): tf.Tensor2D => {
  checkConfig(config);
  const [B, T] = ids.shape;
  if (ids.rank !== 2 || ids.dtype !== "int32" || B < 1 || T < 1) {
    throw new RangeError(`clip_text: ids must be int32 [B, T] with B, T ≥ 1, got ${ids.dtype} [${ids.shape}]`);
  }
  if (T > config.max_position_embeddings) {
    throw new RangeError(`clip_text: ${T} tokens exceed max_position_embeddings ${config.max_position_embeddings}`);
  }
  if (params.layers.length !== config.num_hidden_layers) {
    throw new RangeError(
      `clip_text: params have ${params.layers.length} layers, config.num_hidden_layers is ${config.num_hidden_layers}`,
    );
  }
  const D = config.hidden_size;
  return tf.tidy(() => {
    // embeddings: token + learned position
    const tokens = tf.reshape(tf.gather(params.token_embedding, tf.reshape(ids, [B * T])), [B, T, D]); // [B, T, D]
    const positions = tf.slice(params.position_embedding, [0, 0], [T, D]); // [T, D]
    let x = tf.reshape<tf.Rank.R2>(tf.add(tokens, positions), [B * T, D]); // [B·T, D]
    // causal transformer
    const mask = causalMask(T); // [T, T]
    for (const layer of params.layers) x = encoderLayer(x, layer, config, B, T, mask); // [B·T, D]
    const h = layerNorm(x, params.final_layer_norm, config.layer_norm_eps); // [B·T, D]
    // pool at each row's eot, project
    const pooled = tf.gather(h, pooledRows(ids, config.eos_token_id)); // [B, D]
    return linear(pooled, params.text_projection); // [B, P]
  });
};

/**
 * The pooled position of each row of host ids `[B, T]` (row-major), by the module header's rule;
 * −1 for a row without its eos (which `applyClipText` would pool at position 0).
 */
export const eosPositions = (ids: ArrayLike<number>, T: number, eosTokenId: number): Int32Array => {
  const B = Math.floor(ids.length / T);
  const out = new Int32Array(B).fill(-1);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const id = ids[b * T + t] as number;
      if (eosTokenId === LEGACY_EOS_TOKEN_ID) {
        if (out[b] === -1 || id > (ids[b * T + (out[b] as number)] as number)) out[b] = t;
      } else if (id === eosTokenId) {
        out[b] = t;
        break;
      }
    }
  }
  return out;
};

// ---------------------------------------------------------------------------------------------
// Loading Hugging Face checkpoints

/** A config that cannot build an encoder (a size that is not positive, heads that do not divide D, …). */
export class ClipTextConfigError extends Data.TaggedError("ClipTextConfigError")<{
  readonly field: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `clip_text config: ${this.field}: ${this.reason}`;
  }
}

/** A checkpoint that does not fit the config: missing, unexpected, misshapen or mistyped tensor. */
export class ClipTextWeightsError extends Data.TaggedError("ClipTextWeightsError")<{
  readonly tensor: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `loadClipTextWeights: ${this.tensor}: ${this.reason}`;
  }
}

/** The errors of this stage. */
export type ClipTextError = ClipTextConfigError | ClipTextWeightsError;

/** Buffers some checkpoints store next to the weights; skipped on load. */
const IGNORED = new Set(["text_model.embeddings.position_ids"]);

/** HF names and shapes (PyTorch layout, Linear `[out, in]`) of the encoder for a config, in load order. */
export const clipTextShapes = (config: ClipTextConfig): Record<string, number[]> => {
  const { hidden_size: D, intermediate_size: F } = config;
  const shapes: Record<string, number[]> = {
    "text_model.embeddings.token_embedding.weight": [config.vocab_size, D],
    "text_model.embeddings.position_embedding.weight": [config.max_position_embeddings, D],
  };
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const l = `text_model.encoder.layers.${i}.`;
    Object.assign(shapes, {
      [l + "layer_norm1.weight"]: [D],
      [l + "layer_norm1.bias"]: [D],
      ...Object.fromEntries(
        ["q_proj", "k_proj", "v_proj", "out_proj"].flatMap((p) => [
          [`${l}self_attn.${p}.weight`, [D, D]],
          [`${l}self_attn.${p}.bias`, [D]],
        ]),
      ),
      [l + "layer_norm2.weight"]: [D],
      [l + "layer_norm2.bias"]: [D],
      [l + "mlp.fc1.weight"]: [F, D],
      [l + "mlp.fc1.bias"]: [F],
      [l + "mlp.fc2.weight"]: [D, F],
      [l + "mlp.fc2.bias"]: [D],
    });
  }
  Object.assign(shapes, {
    "text_model.final_layer_norm.weight": [D],
    "text_model.final_layer_norm.bias": [D],
    "text_projection.weight": [config.projection_dim, D],
  });
  return shapes;
};

const isEncoderName = (name: string) => name.startsWith("text_model.") || name.startsWith("text_projection.");

/**
 * Builds encoder params from a checkpoint's tensors (e.g. `decodeSafetensors(...).tensors` of a
 * `CLIPTextModelWithProjection` or a whole `CLIPModel`: names outside `text_model.*` and
 * `text_projection.*` are ignored, and so is the `position_ids` buffer). Linear weights are
 * transposed here, once, `[out, in]` → `[in, out]`; F32 or F64 data, stored as float32. Fails,
 * creating no tensor, on a config that cannot work or a missing, unexpected, mistyped or misshapen
 * encoder tensor, naming the tensor and the shape this config expects.
 */
export const loadClipTextWeights = (
  tensors: Readonly<Record<string, HostTensor>>,
  config: ClipTextConfig,
): Effect.Effect<ClipTextParams, ClipTextError> =>
  Effect.suspend((): Effect.Effect<ClipTextParams, ClipTextError> => {
    const problem = configProblem(config);
    if (problem !== undefined) return Effect.fail(new ClipTextConfigError(problem));
    const shapes = clipTextShapes(config);
    for (const [name, shape] of Object.entries(shapes)) {
      const t = tensors[name];
      const fail = (reason: string) => Effect.fail(new ClipTextWeightsError({ tensor: name, reason }));
      if (t === undefined) return fail(`missing (expected shape [${shape}] for this config)`);
      if (t.dtype !== "F32" && t.dtype !== "F64") return fail(`dtype ${t.dtype}, expected F32 or F64`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        return fail(`shape [${t.shape}], expected [${shape}] for this config`);
      }
    }
    const unexpected = Object.keys(tensors).find((k) =>
      isEncoderName(k) && !IGNORED.has(k) && !Object.hasOwn(shapes, k)
    );
    if (unexpected !== undefined) {
      return Effect.fail(
        new ClipTextWeightsError({ tensor: unexpected, reason: "not part of an encoder with this config" }),
      );
    }
    const load = (name: string, transpose = false): tf.Variable => {
      const t = tensors[name] as HostTensor;
      const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as Float64Array);
      const value = tf.tidy(() => {
        const raw = tf.tensor(data, [...t.shape], "float32"); // PyTorch layout
        return transpose ? tf.transpose(raw) : raw; // Linear [out, in] → [in, out]
      });
      const v = tf.variable(value, true);
      value.dispose();
      return v;
    };
    const dense = (name: string): LinearParams => ({
      weight: load(name + ".weight", true),
      bias: load(name + ".bias"),
    }); // [in, out], [out]
    const norm = (name: string): NormParams => ({ weight: load(name + ".weight"), bias: load(name + ".bias") }); // [D], [D]
    const params: ClipTextParams = {
      token_embedding: load("text_model.embeddings.token_embedding.weight"), // [V, D]
      position_embedding: load("text_model.embeddings.position_embedding.weight"), // [Tmax, D]
      layers: Array.from({ length: config.num_hidden_layers }, (_, i): ClipTextLayerParams => {
        const l = `text_model.encoder.layers.${i}.`;
        return {
          layer_norm1: norm(l + "layer_norm1"),
          self_attn: {
            q_proj: dense(l + "self_attn.q_proj"), // [D, D]
            k_proj: dense(l + "self_attn.k_proj"), // [D, D]
            v_proj: dense(l + "self_attn.v_proj"), // [D, D]
            out_proj: dense(l + "self_attn.out_proj"), // [D, D]
          },
          layer_norm2: norm(l + "layer_norm2"),
          mlp: { fc1: dense(l + "mlp.fc1"), fc2: dense(l + "mlp.fc2") }, // [D, F], [F, D]
        };
      }),
      final_layer_norm: norm("text_model.final_layer_norm"),
      text_projection: { weight: load("text_projection.weight", true) }, // [D, P]
    };
    return Effect.succeed(params);
  });

/** Every tensor of a params record, e.g. to dispose them or to hand them to an optimizer. */
export const clipTextVariables = <P extends tf.Tensor>(params: ClipTextParams<P>): P[] => parameterList(params) as P[];
