/**
 * SAM's image encoder (segment-anything `ImageEncoderViT`, Kirillov et al. 2023) as a functional
 * tfjs module: `initViT(config, seed) → params`, `applyViT(params, config, images) → embeddings`.
 *
 * images `[B, H, W, in_chans]` (float32, normalised) → image embeddings `[B, H/p, W/p, out_chans]`
 * (p = patch_size, floor division as in a valid convolution). Layout is NHWC everywhere; PyTorch
 * checkpoints are converted once, in `loadSamEncoderWeights` (conv OIHW → HWIO, linear [out, in] →
 * [in, out]).
 *
 * Steps (as in the paper's figure): patch embedding (conv k = s = p) → + absolute position embedding
 * → `depth` transformer blocks (pre-LayerNorm; windowed attention with zero padding, or global
 * attention for `global_attn_indexes`; decomposed relative position bias; MLP with exact GELU) →
 * neck (1×1 conv → LayerNorm2d → 3×3 conv → LayerNorm2d).
 *
 * Resizing rule: when the token grid (h, w) differs from `img_size / patch_size`, the absolute
 * position embedding is resized to (h, w) by bicubic interpolation exactly as PyTorch's
 * `F.interpolate(mode="bicubic", align_corners=False)` (A = -0.75, half-pixel centres, border taps
 * clamped) — ViTDet's `get_abs_pos`; SAM itself only adds it at the native size. Relative position
 * tables of the global blocks are resized with 1-D linear interpolation (align_corners=False) to
 * `2·max(q, k) − 1` rows, as SAM's `get_rel_pos` does. Both resizes are written as constant
 * interpolation matrices applied with 2-D matmuls, so they are exact, differentiable and fast on WASM.
 *
 * Gotchas: zero-padded tokens of a window take part in its attention (as in SAM; no mask), and
 * LayerNorm runs before padding, so padding changes nothing for the real tokens' normalisation.
 * Exact GELU uses Erf, a slow scalar kernel on WASM (BACKEND-NOTES): kept for SAM parity.
 *
 * Dimension letters: B batch, H W image size, h w token grid, D embed_dim, N tokens (h·w) of one
 * attention call, Bw windows·batch, E heads, c per-head width (D / E), L rel-pos table rows.
 */
import * as tf from "@tensorflow/tfjs";
import { Data, Effect } from "effect";
import type { HostTensor } from "../../pipeline/codec/safetensors.ts";
import { gelu, layerNorm, linear, type LinearParams, type NormParams, seededVariables } from "./layers.ts";

/** Hyper-parameters of the encoder; field names follow segment-anything's `ImageEncoderViT`. */
export interface ViTConfig {
  /** Side of the square training image; the position embedding covers `img_size / patch_size` tokens a side. */
  readonly img_size: number;
  /** Side of a square patch (kernel = stride of the patch embedding). */
  readonly patch_size: number;
  /** Input channels (3 for RGB). */
  readonly in_chans: number;
  /** Token width D. */
  readonly embed_dim: number;
  /** Number of transformer blocks. */
  readonly depth: number;
  /** Attention heads per block; must divide embed_dim. */
  readonly num_heads: number;
  /** MLP hidden width = embed_dim · mlp_ratio. */
  readonly mlp_ratio: number;
  /** Channels of the output embedding (after the neck). */
  readonly out_chans: number;
  /** Whether the qkv projection has a bias. */
  readonly qkv_bias: boolean;
  /** Whether to add the absolute position embedding. */
  readonly use_abs_pos: boolean;
  /** Whether to add decomposed relative position biases to the attention logits. */
  readonly use_rel_pos: boolean;
  /** Window side (in tokens) of the non-global blocks; 0 makes every block global. */
  readonly window_size: number;
  /** Indices of the blocks that attend globally. */
  readonly global_attn_indexes: ReadonlyArray<number>;
  /** Epsilon of every LayerNorm (SAM: 1e-6, blocks and neck). */
  readonly layer_norm_eps: number;
}

const sam = (embed_dim: number, depth: number, num_heads: number, global_attn_indexes: number[]): ViTConfig => ({
  img_size: 1024,
  patch_size: 16,
  in_chans: 3,
  embed_dim,
  depth,
  num_heads,
  mlp_ratio: 4,
  out_chans: 256,
  qkv_bias: true,
  use_abs_pos: true,
  use_rel_pos: true,
  window_size: 14,
  global_attn_indexes,
  layer_norm_eps: 1e-6,
});

/**
 * Named variants. `vit_b`, `vit_l`, `vit_h` are SAM's (segment-anything build_sam.py).
 * `tiny` is the CPU training default: embed 192 / depth 4 / 3 heads keeps SAM's per-head width 64
 * and is the 4.15 M-parameter step measured in BACKEND-NOTES (≈ 1 s/step on WASM); img 256 with
 * patch 16 gives a 16×16 grid that window 8 tiles exactly (no padding, 4 windows); global blocks
 * [1, 3] keep SAM's pattern of a global block closing each group of windowed ones; out_chans 128
 * halves the neck while staying wider than the 64-channel pixel decoder it feeds.
 */
export const VIT_PRESETS: Readonly<Record<"tiny" | "vit_b" | "vit_l" | "vit_h", ViTConfig>> = {
  tiny: {
    img_size: 256,
    patch_size: 16,
    in_chans: 3,
    embed_dim: 192,
    depth: 4,
    num_heads: 3,
    mlp_ratio: 4,
    out_chans: 128,
    qkv_bias: true,
    use_abs_pos: true,
    use_rel_pos: true,
    window_size: 8,
    global_attn_indexes: [1, 3],
    layer_norm_eps: 1e-6,
  },
  vit_b: sam(768, 12, 12, [2, 5, 8, 11]),
  vit_l: sam(1024, 24, 16, [5, 11, 17, 23]),
  vit_h: sam(1280, 32, 16, [7, 15, 23, 31]),
};

/** One transformer block. */
export interface BlockParams<P extends tf.Tensor = tf.Variable> {
  readonly norm1: NormParams<P>;
  readonly attn: {
    readonly qkv: LinearParams<P>; // [D, 3D]
    readonly proj: LinearParams<P>; // [D, D]
    readonly rel_pos_h?: P; // [2·S − 1, c], S = window_size or img_size / patch_size
    readonly rel_pos_w?: P; // [2·S − 1, c]
  };
  readonly norm2: NormParams<P>;
  readonly mlp: { readonly lin1: LinearParams<P>; readonly lin2: LinearParams<P> };
}

/** All encoder parameters: a plain nested record (tf.Variable from init/load; any tf.Tensor to apply). */
export interface ViTParams<P extends tf.Tensor = tf.Variable> {
  readonly patch_embed: { readonly proj: { readonly weight: P; readonly bias: P } }; // HWIO [p, p, in, D], [D]
  readonly pos_embed?: P; // [1, img/p, img/p, D]
  readonly blocks: ReadonlyArray<BlockParams<P>>;
  /** SAM's `neck.0` … `neck.3`. */
  readonly neck: {
    readonly conv1: P; // HWIO [1, 1, D, out]
    readonly norm1: NormParams<P>;
    readonly conv2: P; // HWIO [3, 3, out, out]
    readonly norm2: NormParams<P>;
  };
}

const isGlobal = (config: ViTConfig, i: number): boolean =>
  config.window_size <= 0 || config.global_attn_indexes.includes(i);

/** The grid side the relative position table of block i was built for (SAM's `input_size`). */
const relPosSide = (config: ViTConfig, i: number): number =>
  isGlobal(config, i) ? Math.floor(config.img_size / config.patch_size) : config.window_size;

const checkConfig = (config: ViTConfig): void => {
  if (config.embed_dim % config.num_heads !== 0) {
    throw new RangeError(`vit: embed_dim ${config.embed_dim} is not divisible by num_heads ${config.num_heads}`);
  }
};

/**
 * Fresh parameters. Linear and patch weights: truncated normal σ = 0.02 (ViT/MAE practice), biases 0,
 * LayerNorm 1/0; position embedding truncated normal σ = 0.02 (SAM starts from zeros but always loads
 * pretrained weights); relative position tables zero (SAM's `rel_pos_zero_init`); neck convs He normal.
 * Deterministic in `seed`.
 */
export const initViT = (config: ViTConfig, seed: number): ViTParams => {
  checkConfig(config);
  const { normal, zeros, ones } = seededVariables(seed);
  const linear = (nIn: number, nOut: number, bias = true): LinearParams => ({
    weight: normal([nIn, nOut], 0.02), // [in, out]
    ...(bias ? { bias: zeros([nOut]) } : {}), // [out]
  });
  const norm = (c: number): NormParams => ({ weight: ones([c]), bias: zeros([c]) }); // [C], [C]
  const { embed_dim: D, patch_size: p, in_chans, out_chans: O } = config;
  const g = Math.floor(config.img_size / p);
  const c = D / config.num_heads;
  const hidden = Math.floor(D * config.mlp_ratio);
  return {
    patch_embed: { proj: { weight: normal([p, p, in_chans, D], 0.02), bias: zeros([D]) } }, // [p, p, in, D], [D]
    ...(config.use_abs_pos ? { pos_embed: normal([1, g, g, D], 0.02) } : {}), // [1, g, g, D]
    blocks: Array.from({ length: config.depth }, (_, i): BlockParams => {
      const L = 2 * relPosSide(config, i) - 1;
      return {
        norm1: norm(D),
        attn: {
          qkv: linear(D, 3 * D, config.qkv_bias), // [D, 3D]
          proj: linear(D, D), // [D, D]
          ...(config.use_rel_pos ? { rel_pos_h: zeros([L, c]), rel_pos_w: zeros([L, c]) } : {}), // [L, c]
        },
        norm2: norm(D),
        mlp: { lin1: linear(D, hidden), lin2: linear(hidden, D) }, // [D, 4D], [4D, D]
      };
    }),
    neck: {
      conv1: normal([1, 1, D, O], Math.sqrt(2 / D)), // [1, 1, D, O]
      norm1: norm(O),
      conv2: normal([3, 3, O, O], Math.sqrt(2 / (9 * O))), // [3, 3, O, O]
      norm2: norm(O),
    },
  };
};

// ---------------------------------------------------------------------------------------------
// Interpolation matrices (host constants). Row r holds the weights of output sample r.

/** PyTorch cubic convolution kernel, A = -0.75 (aten UpSample.h). */
const cubic = (x: number): number => {
  const A = -0.75;
  const t = Math.abs(x);
  if (t <= 1) return ((A + 2) * t - (A + 3)) * t * t + 1;
  if (t < 2) return ((A * t - 5 * A) * t + 8 * A) * t - 4 * A;
  return 0;
};

/** `[out, in]` matrix of 1-D bicubic resampling, align_corners=False, taps clamped to the border. */
const bicubicMatrix = (nIn: number, nOut: number): Float32Array => {
  const m = new Float32Array(nOut * nIn);
  const scale = nIn / nOut;
  for (let o = 0; o < nOut; o++) {
    const src = scale * (o + 0.5) - 0.5; // cubic: no clamp at 0
    const i0 = Math.floor(src);
    const t = src - i0;
    const w = [cubic(t + 1), cubic(t), cubic(1 - t), cubic(2 - t)];
    for (let k = 0; k < 4; k++) {
      const i = Math.min(Math.max(i0 - 1 + k, 0), nIn - 1);
      m[o * nIn + i] = (m[o * nIn + i] as number) + (w[k] as number);
    }
  }
  return m;
};

/** `[out, in]` matrix of 1-D linear resampling, align_corners=False (PyTorch `mode="linear"`). */
const linearMatrix = (nIn: number, nOut: number): Float32Array => {
  const m = new Float32Array(nOut * nIn);
  const scale = nIn / nOut;
  for (let o = 0; o < nOut; o++) {
    const src = Math.max(scale * (o + 0.5) - 0.5, 0);
    const i0 = Math.floor(src);
    const i1 = i0 < nIn - 1 ? i0 + 1 : i0;
    const l1 = src - i0;
    m[o * nIn + i0] = (m[o * nIn + i0] as number) + (1 - l1);
    m[o * nIn + i1] = (m[o * nIn + i1] as number) + l1;
  }
  return m;
};

/**
 * SAM's `get_rel_pos` as one matrix `[q·k, L]`: resize the L-row table to 2·max(q, k) − 1 rows
 * (linear) when needed, then pick row `q_i·max(k/q, 1) − k_j·max(q/k, 1) + (k − 1)·max(q/k, 1)`.
 */
const relPosMatrix = (q: number, k: number, L: number): Float32Array => {
  const n = 2 * Math.max(q, k) - 1;
  const resize = L === n ? null : linearMatrix(L, n); // [n, L]
  const m = new Float32Array(q * k * L);
  const qs = Math.max(k / q, 1), ks = Math.max(q / k, 1);
  for (let i = 0; i < q; i++) {
    for (let j = 0; j < k; j++) {
      const r = Math.floor(i * qs - j * ks + (k - 1) * ks);
      const row = (i * k + j) * L;
      if (resize === null) m[row + r] = 1;
      else m.set(resize.subarray(r * L, (r + 1) * L), row);
    }
  }
  return m;
};

// ---------------------------------------------------------------------------------------------
// Layers

/** Position embedding `[1, g, g, D]` resized to `[1, h, w, D]` (bicubic, align_corners=False). */
const absPos = (pos: tf.Tensor, h: number, w: number): tf.Tensor4D => {
  const [, gh, gw, D] = pos.shape as [number, number, number, number];
  if (gh === h && gw === w) return pos as tf.Tensor4D;
  const mh = tf.tensor2d(bicubicMatrix(gh, h), [h, gh]); // [h, gh]
  const mw = tf.tensor2d(bicubicMatrix(gw, w), [w, gw]); // [w, gw]
  const alongH = tf.matMul(mh, tf.reshape(pos, [gh, gw * D])); // [h, gw·D]
  const wFirst = tf.reshape(tf.transpose(tf.reshape(alongH, [h, gw, D]), [1, 0, 2]), [gw, h * D]); // [gw, h·D]
  const alongW = tf.matMul(mw, wFirst); // [w, h·D]
  return tf.reshape(tf.transpose(tf.reshape(alongW, [w, h, D]), [1, 0, 2]), [1, h, w, D]); // [1, h, w, D]
};

/**
 * Decomposed relative position bias (SAM's `add_decomposed_rel_pos`): logits[y, x, ky, kx] +=
 * q[y, x]·Rh[y, ky] + q[y, x]·Rw[x, kx], with q the unscaled queries.
 */
const addRelPos = (
  logits: tf.Tensor3D, // [Bh, N, N]
  q: tf.Tensor3D, // [Bh, N, c]
  tableH: tf.Tensor,
  tableW: tf.Tensor,
  h: number,
  w: number,
): tf.Tensor3D => {
  const [Bh, N, c] = q.shape;
  const [Lh] = tableH.shape as [number, number];
  const [Lw] = tableW.shape as [number, number];
  const Rh = tf.matMul(tf.tensor2d(relPosMatrix(h, h, Lh), [h * h, Lh]), tableH as tf.Tensor2D); // [h·h, c]
  const Rw = tf.matMul(tf.tensor2d(relPosMatrix(w, w, Lw), [w * w, Lw]), tableW as tf.Tensor2D); // [w·w, c]
  const qg = tf.reshape(q, [Bh, h, w, c]); // [Bh, h, w, c]
  const qByRow = tf.reshape(tf.transpose(qg, [1, 0, 2, 3]), [h, Bh * w, c]); // [h, Bh·w, c]
  const relH = tf.matMul(qByRow, tf.reshape(Rh, [h, h, c]), false, true); // [h, Bh·w, kh]
  const relHb = tf.transpose(tf.reshape(relH, [h, Bh, w, h]), [1, 0, 2, 3]); // [Bh, h, w, kh]
  const qByCol = tf.reshape(tf.transpose(qg, [2, 0, 1, 3]), [w, Bh * h, c]); // [w, Bh·h, c]
  const relW = tf.matMul(qByCol, tf.reshape(Rw, [w, w, c]), false, true); // [w, Bh·h, kw]
  const relWb = tf.transpose(tf.reshape(relW, [w, Bh, h, w]), [1, 2, 0, 3]); // [Bh, h, w, kw]
  const grid = tf.reshape(logits, [Bh, h, w, h, w]); // [Bh, h, w, kh, kw]
  const biased = tf.add(tf.add(grid, tf.expandDims(relHb, 4)), tf.expandDims(relWb, 3)); // [Bh, h, w, kh, kw]
  return tf.reshape(biased, [Bh, N, N]); // [Bh, N, N]
};

/** Multi-head self-attention over each `[h, w]` grid of x (a window, or the whole image). */
const attention = (x: tf.Tensor4D, p: BlockParams<tf.Tensor>["attn"], config: ViTConfig): tf.Tensor4D => {
  const [Bw, h, w, D] = x.shape;
  const E = config.num_heads, c = D / E, N = h * w;
  const qkv = linear(tf.reshape(x, [Bw * N, D]), p.qkv); // [Bw·N, 3D]
  const heads = tf.reshape(tf.transpose(tf.reshape(qkv, [Bw, N, 3, E, c]), [2, 0, 3, 1, 4]), [3, Bw * E, N, c]); // [3, Bw·E, N, c]
  const [q, k, v] = tf.unstack(heads) as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D]; // [Bw·E, N, c] each
  let logits = tf.matMul<tf.Tensor3D>(tf.mul(q, c ** -0.5), k, false, true); // [Bw·E, N, N]
  if (p.rel_pos_h !== undefined && p.rel_pos_w !== undefined) {
    logits = addRelPos(logits, q, p.rel_pos_h, p.rel_pos_w, h, w);
  }
  const mixed = tf.matMul(tf.softmax(logits), v); // [Bw·E, N, c]
  const merged = tf.reshape<tf.Rank.R2>(tf.transpose(tf.reshape(mixed, [Bw, E, h, w, c]), [0, 2, 3, 1, 4]), [
    Bw * N,
    D,
  ]); // [Bw·N, D]
  return tf.reshape(linear(merged, p.proj), [Bw, h, w, D]); // [Bw, h, w, D]
};

/** Pads `[B, h, w, D]` with zeros at the bottom/right to multiples of s and cuts s×s windows. */
const toWindows = (x: tf.Tensor4D, s: number): tf.Tensor4D => {
  const [B, h, w, D] = x.shape;
  const hp = Math.ceil(h / s) * s, wp = Math.ceil(w / s) * s;
  const padded = tf.pad(x, [[0, 0], [0, hp - h], [0, wp - w], [0, 0]]); // [B, hp, wp, D]
  const tiles = tf.transpose(tf.reshape(padded, [B, hp / s, s, wp / s, s, D]), [0, 1, 3, 2, 4, 5]); // [B, hp/s, wp/s, s, s, D]
  return tf.reshape(tiles, [B * (hp / s) * (wp / s), s, s, D]); // [Bw, s, s, D]
};

/** Inverse of `toWindows`: reassembles `[Bw, s, s, D]` into `[B, h, w, D]`, dropping the padding. */
const fromWindows = (x: tf.Tensor4D, B: number, h: number, w: number): tf.Tensor4D => {
  const [, s, , D] = x.shape;
  const hp = Math.ceil(h / s) * s, wp = Math.ceil(w / s) * s;
  const tiles = tf.transpose(tf.reshape(x, [B, hp / s, wp / s, s, s, D]), [0, 1, 3, 2, 4, 5]); // [B, hp/s, s, wp/s, s, D]
  const padded = tf.reshape<tf.Rank.R4>(tiles, [B, hp, wp, D]); // [B, hp, wp, D]
  return tf.slice(padded, [0, 0, 0, 0], [B, h, w, D]); // [B, h, w, D]
};

const block = (x: tf.Tensor4D, p: BlockParams<tf.Tensor>, config: ViTConfig, windowSize: number): tf.Tensor4D => {
  const [B, h, w, D] = x.shape;
  const eps = config.layer_norm_eps;
  // attention branch: pre-norm, (windows), attention, (reassemble), residual
  const normed = layerNorm(x, p.norm1, eps); // [B, h, w, D]
  const attended = windowSize > 0
    ? fromWindows(attention(toWindows(normed, windowSize), p.attn, config), B, h, w) // [B, h, w, D]
    : attention(normed, p.attn, config); // [B, h, w, D]
  const x1 = tf.add(x, attended); // [B, h, w, D]
  // MLP branch: pre-norm, lin1, GELU, lin2, residual
  const tokens = tf.reshape<tf.Rank.R2>(layerNorm(x1, p.norm2, eps), [B * h * w, D]); // [B·h·w, D]
  const mlp = linear(gelu(linear(tokens, p.mlp.lin1)), p.mlp.lin2); // [B·h·w, D]
  return tf.add(x1, tf.reshape(mlp, [B, h, w, D])); // [B, h, w, D]
};

/**
 * Encodes images `[B, H, W, in_chans]` into embeddings `[B, ⌊H/p⌋, ⌊W/p⌋, out_chans]`. Any image size
 * of at least one patch works (see the module header for the position-embedding resize). All
 * intermediates are released; only the result stays.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { applyViT, initViT, VIT_PRESETS } from "./vit.ts";
 * const config = { ...VIT_PRESETS.tiny, depth: 1 };
 * const params = initViT(config, 0);
 * const y = applyViT(params, config, tf.zeros<tf.Rank.R4>([1, 64, 32, 3])); // [1, 4, 2, 128]
 * ```
 */
export const applyViT = (params: ViTParams<tf.Tensor>, config: ViTConfig, images: tf.Tensor4D): tf.Tensor4D => {
  const [, H, W, C] = images.shape;
  if (images.rank !== 4 || C !== config.in_chans) {
    throw new RangeError(`vit: images must be [B, H, W, ${config.in_chans}], got [${images.shape}]`);
  }
  if (H < config.patch_size || W < config.patch_size) {
    throw new RangeError(`vit: images [${images.shape}] are smaller than one ${config.patch_size}-pixel patch`);
  }
  if (params.blocks.length !== config.depth) {
    throw new RangeError(`vit: params have ${params.blocks.length} blocks, config.depth is ${config.depth}`);
  }
  checkConfig(config);
  return tf.tidy(() => {
    const p = config.patch_size;
    // patch embedding: conv k = s = p
    const proj = params.patch_embed.proj;
    let x = tf.add(tf.conv2d(images, proj.weight as tf.Tensor4D, p, "valid"), proj.bias) as tf.Tensor4D; // [B, h, w, D]
    const [, h, w] = x.shape;
    if (config.use_abs_pos && params.pos_embed !== undefined) x = tf.add(x, absPos(params.pos_embed, h, w)); // [B, h, w, D]
    params.blocks.forEach((b, i) => {
      x = block(x, b, config, isGlobal(config, i) ? 0 : config.window_size); // [B, h, w, D]
    });
    // neck: 1×1 conv → LayerNorm2d → 3×3 conv → LayerNorm2d, no conv biases
    const n = params.neck, eps = config.layer_norm_eps;
    const y1 = layerNorm(tf.conv2d(x, n.conv1 as tf.Tensor4D, 1, "valid"), n.norm1, eps); // [B, h, w, out]
    return layerNorm(tf.conv2d(y1, n.conv2 as tf.Tensor4D, 1, "same"), n.norm2, eps); // [B, h, w, out]
  });
};

// ---------------------------------------------------------------------------------------------
// Loading SAM checkpoints

/** A SAM checkpoint that does not fit the config: missing, unexpected, misshapen or mistyped tensor. */
export class SamWeightsError extends Data.TaggedError("SamWeightsError")<{
  readonly tensor: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `loadSamEncoderWeights: ${this.tensor}: ${this.reason}`;
  }
}

/** Checkpoint prefix of the image encoder in SAM's `sam_vit_*.pth` state dicts. */
export const SAM_ENCODER_PREFIX = "image_encoder.";

/** PyTorch names (without prefix) and shapes (PyTorch layout) of the encoder for a config. */
export const samEncoderShapes = (config: ViTConfig): Record<string, number[]> => {
  const { embed_dim: D, patch_size: p, in_chans, out_chans: O } = config;
  const g = Math.floor(config.img_size / p), c = D / config.num_heads, F = Math.floor(D * config.mlp_ratio);
  const shapes: Record<string, number[]> = {
    "patch_embed.proj.weight": [D, in_chans, p, p],
    "patch_embed.proj.bias": [D],
  };
  if (config.use_abs_pos) shapes["pos_embed"] = [1, g, g, D];
  for (let i = 0; i < config.depth; i++) {
    const b = `blocks.${i}.`, L = 2 * relPosSide(config, i) - 1;
    Object.assign(shapes, {
      [b + "norm1.weight"]: [D],
      [b + "norm1.bias"]: [D],
      [b + "attn.qkv.weight"]: [3 * D, D],
      ...(config.qkv_bias ? { [b + "attn.qkv.bias"]: [3 * D] } : {}),
      [b + "attn.proj.weight"]: [D, D],
      [b + "attn.proj.bias"]: [D],
      ...(config.use_rel_pos ? { [b + "attn.rel_pos_h"]: [L, c], [b + "attn.rel_pos_w"]: [L, c] } : {}),
      [b + "norm2.weight"]: [D],
      [b + "norm2.bias"]: [D],
      [b + "mlp.lin1.weight"]: [F, D],
      [b + "mlp.lin1.bias"]: [F],
      [b + "mlp.lin2.weight"]: [D, F],
      [b + "mlp.lin2.bias"]: [D],
    });
  }
  Object.assign(shapes, {
    "neck.0.weight": [O, D, 1, 1],
    "neck.1.weight": [O],
    "neck.1.bias": [O],
    "neck.2.weight": [O, O, 3, 3],
    "neck.3.weight": [O],
    "neck.3.bias": [O],
  });
  return shapes;
};

/**
 * Builds encoder params from a SAM checkpoint's tensors (e.g. `decodeSafetensors(...).tensors`),
 * names `image_encoder.*` (other prefixes are ignored). Layouts are converted here, once: conv
 * weights OIHW → HWIO, linear weights [out, in] → [in, out]; F32 or F64 data, stored as float32.
 * Fails, creating no tensor, on a missing, unexpected or misshapen encoder tensor.
 */
export const loadSamEncoderWeights = (
  tensors: Readonly<Record<string, HostTensor>>,
  config: ViTConfig,
): Effect.Effect<ViTParams, SamWeightsError> =>
  Effect.suspend(() => {
    const shapes = samEncoderShapes(config);
    for (const [name, shape] of Object.entries(shapes)) {
      const t = tensors[SAM_ENCODER_PREFIX + name];
      const full = SAM_ENCODER_PREFIX + name;
      if (t === undefined) return Effect.fail(new SamWeightsError({ tensor: full, reason: "missing" }));
      if (t.dtype !== "F32" && t.dtype !== "F64") {
        return Effect.fail(new SamWeightsError({ tensor: full, reason: `dtype ${t.dtype}, expected F32 or F64` }));
      }
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        return Effect.fail(
          new SamWeightsError({ tensor: full, reason: `shape [${t.shape}], expected [${shape}] for this config` }),
        );
      }
    }
    const unexpected = Object.keys(tensors).find((k) =>
      k.startsWith(SAM_ENCODER_PREFIX) && !Object.hasOwn(shapes, k.slice(SAM_ENCODER_PREFIX.length))
    );
    if (unexpected !== undefined) {
      return Effect.fail(
        new SamWeightsError({ tensor: unexpected, reason: "not part of an encoder with this config" }),
      );
    }
    // PyTorch → NHWC layouts, once.
    const load = (name: string, perm?: number[]): tf.Variable => {
      const t = tensors[SAM_ENCODER_PREFIX + name] as HostTensor;
      const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as Float64Array);
      const value = tf.tidy(() => {
        const raw = tf.tensor(data, [...t.shape], "float32"); // PyTorch layout
        return perm === undefined ? raw : tf.transpose(raw, perm); // NHWC layout
      });
      const v = tf.variable(value, true);
      value.dispose();
      return v;
    };
    const OIHW_TO_HWIO = [2, 3, 1, 0], OUT_IN_TO_IN_OUT = [1, 0];
    const lin = (name: string, bias = true): LinearParams => ({
      weight: load(name + ".weight", OUT_IN_TO_IN_OUT), // [in, out]
      ...(bias ? { bias: load(name + ".bias") } : {}), // [out]
    });
    const norm = (name: string): NormParams => ({ weight: load(name + ".weight"), bias: load(name + ".bias") }); // [C]
    const params: ViTParams = {
      patch_embed: {
        proj: { weight: load("patch_embed.proj.weight", OIHW_TO_HWIO), bias: load("patch_embed.proj.bias") },
      }, // [p, p, in, D]
      ...(config.use_abs_pos ? { pos_embed: load("pos_embed") } : {}), // [1, g, g, D] (already NHWC in SAM)
      blocks: Array.from({ length: config.depth }, (_, i): BlockParams => {
        const b = `blocks.${i}.`;
        return {
          norm1: norm(b + "norm1"),
          attn: {
            qkv: lin(b + "attn.qkv", config.qkv_bias), // [D, 3D]
            proj: lin(b + "attn.proj"), // [D, D]
            ...(config.use_rel_pos
              ? { rel_pos_h: load(b + "attn.rel_pos_h"), rel_pos_w: load(b + "attn.rel_pos_w") } // [L, c]
              : {}),
          },
          norm2: norm(b + "norm2"),
          mlp: { lin1: lin(b + "mlp.lin1"), lin2: lin(b + "mlp.lin2") }, // [D, F], [F, D]
        };
      }),
      neck: {
        conv1: load("neck.0.weight", OIHW_TO_HWIO), // [1, 1, D, out]
        norm1: norm("neck.1"),
        conv2: load("neck.2.weight", OIHW_TO_HWIO), // [3, 3, out, out]
        norm2: norm("neck.3"),
      },
    };
    return Effect.succeed(params);
  });

/** Every tensor of a params record, e.g. to dispose them or to hand them to an optimizer. */
export const vitVariables = <P extends tf.Tensor>(params: ViTParams<P>): P[] => {
  const out: P[] = [];
  const walk = (node: unknown): void => {
    if (node instanceof tf.Tensor) out.push(node as P);
    else if (Array.isArray(node)) node.forEach(walk);
    else if (typeof node === "object" && node !== null) Object.values(node).forEach(walk);
  };
  walk(params);
  return out;
};
