/**
 * A small residual convolutional encoder for training from scratch on CPU (the `conv` preset):
 * the ViT's job — features for the pixel decoder — with a convolution's inductive bias (locality,
 * translation equivariance), which a ViT trained from scratch on ≈ 20 real images lacks.
 *
 *   image [B, H, W, 3] (normalised)
 *     ─ 3×3 s2 ─ blocks ─► s2 [B, H/2,  W/2,  c0]   (the fine masks' skip connection)
 *     ─ 3×3 s2 ─ blocks ─► s4 [B, H/4,  W/4,  c1]
 *     ─ 3×3 s2 ─ blocks ─► s8 [B, H/8,  W/8,  c2]
 *     ─ 3×3 s2 ─ blocks ─► s16 [B, H/16, W/16, c3]
 *     ─ 3×3 s2 ─ blocks ─► s32 [B, H/32, W/32, c4]
 *
 * A block is ResNet's basic block with a per-pixel LayerNorm over the channels instead of batch
 * norm (batches of 2–4 crops are too small for batch statistics; ConvNeXt uses the same norm):
 * x + LN₂(conv₂(ReLU(LN₁(conv₁(x))))), then ReLU. LN₂'s scale starts at 0, so every block starts as
 * the identity (Goyal et al. 2017, "zero-γ"), which lets a from-scratch run use a large step size.
 */
import * as tf from "@tensorflow/tfjs";
import { conv, type ConvParams, initConv, type Initializer, initNorm, layerNorm, type NormParams } from "./layers.ts";

export interface ConvEncoderConfig {
  /** the training tile's side (what `vit.img_size` is for the ViT presets) */
  readonly img_size: number;
  /** channels at strides 2, 4, 8, 16, 32 */
  readonly widths: readonly [number, number, number, number, number];
  /** residual blocks at strides 2, 4, 8, 16, 32 */
  readonly blocks: readonly [number, number, number, number, number];
}

interface BlockParams<P extends tf.Tensor = tf.Variable> {
  readonly conv1: ConvParams<P>;
  readonly norm1: NormParams<P>;
  readonly conv2: ConvParams<P>;
  readonly norm2: NormParams<P>;
}

interface LevelParams<P extends tf.Tensor = tf.Variable> {
  readonly down: ConvParams<P>; // 3×3 s2, c(l−1) → c(l)
  readonly downNorm: NormParams<P>;
  readonly blocks: ReadonlyArray<BlockParams<P>>;
}

export interface ConvEncoderParams<P extends tf.Tensor = tf.Variable> {
  readonly levels: ReadonlyArray<LevelParams<P>>; // s2, s4, s8, s16, s32
}

/** The encoder's five levels, finest first. */
export type ConvLevels = readonly [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];

const EPS = 1e-6;

export const initConvEncoder = (init: Initializer, config: ConvEncoderConfig): ConvEncoderParams => ({
  levels: config.widths.map((c, l) => ({
    down: initConv(init, 3, l === 0 ? 3 : config.widths[l - 1] as number, c, false),
    downNorm: initNorm(init, c),
    blocks: Array.from({ length: config.blocks[l] as number }, () => ({
      conv1: initConv(init, 3, c, c, false),
      norm1: initNorm(init, c),
      conv2: initConv(init, 3, c, c, false),
      norm2: { weight: init.zeros([c]), bias: init.zeros([c]) }, // zero-γ: the block starts as the identity
    })),
  })),
});

const block = (x: tf.Tensor4D, p: BlockParams<tf.Tensor>): tf.Tensor4D => {
  const h = tf.relu(layerNorm(conv(x, p.conv1), p.norm1, EPS)); // [B, h, w, c]
  return tf.relu(tf.add(x, layerNorm(conv(h, p.conv2), p.norm2, EPS))); // [B, h, w, c]
};

/** The five levels of `image` [B, H, W, 3] (H and W multiples of 32). */
export const applyConvEncoder = (p: ConvEncoderParams<tf.Tensor>, image: tf.Tensor4D): ConvLevels => {
  if (p.levels.length !== 5) throw new RangeError(`conv encoder: 5 levels expected, found ${p.levels.length}`);
  const out: tf.Tensor4D[] = [];
  let x = image;
  for (const level of p.levels) {
    x = tf.relu(layerNorm(conv(x, level.down, 2), level.downNorm, EPS)); // [B, h/2, w/2, c]
    for (const b of level.blocks) x = block(x, b);
    out.push(x);
  }
  const [s2, s4, s8, s16, s32] = out;
  if (s2 === undefined || s4 === undefined || s8 === undefined || s16 === undefined || s32 === undefined) {
    throw new RangeError("conv encoder: a level is missing");
  }
  return [s2, s4, s8, s16, s32];
};
