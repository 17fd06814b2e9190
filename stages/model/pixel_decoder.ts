/**
 * From the ViT's single stride-16 map to multi-scale features (ViTDet's simple feature pyramid) and
 * per-pixel mask features (an FPN-style pixel decoder, as Mask2Former's, without deformable
 * attention). Nuclei are 5–30 px, so the stride-4 level also receives a light convolutional stem
 * on the image (two 3×3 stride-2 convs) — high-resolution detail the stride-16 tokens cannot carry
 * (the same role as CellViT's skip connections).
 *
 *   image [B, H, W, 3] ─ stem ─────────────────────────────► s4 ┐
 *   vit   [B, H/16, W/16, D] ─► s32 (pool) · s16 · s8 (up ×2) · s4 (up ×4) ┘─ top-down FPN
 *   outputs: maskFeatures [B, H/4, W/4, D]; levels [s32, s16, s8] for the transformer decoder
 */
import * as tf from "@tensorflow/tfjs";
import { conv, type ConvParams, initConv, type Initializer } from "./layers.ts";

export interface PixelDecoderParams<P extends tf.Tensor = tf.Variable> {
  readonly stem1: ConvParams<P>; // 3×3 s2, 3 → D/4
  readonly stem2: ConvParams<P>; // 3×3 s2, D/4 → D
  readonly lateral: ReadonlyArray<ConvParams<P>>; // 1×1 per level s32, s16, s8, s4
  readonly output: ReadonlyArray<ConvParams<P>>; // 3×3 per level after the top-down sum
  readonly maskFeatures: ConvParams<P>; // 1×1 on the s4 output
}

export interface PixelDecoderOutput {
  readonly maskFeatures: tf.Tensor4D; // [B, H/4, W/4, D]
  readonly levels: readonly [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D]; // s32, s16, s8
}

export const initPixelDecoder = (init: Initializer, vitChannels: number, d: number): PixelDecoderParams => ({
  stem1: initConv(init, 3, 3, Math.max(8, d / 4)),
  stem2: initConv(init, 3, Math.max(8, d / 4), d),
  lateral: [0, 1, 2, 3].map(() => initConv(init, 1, vitChannels, d)),
  output: [0, 1, 2, 3].map(() => initConv(init, 3, d, d)),
  maskFeatures: initConv(init, 1, d, d),
});

const up = (x: tf.Tensor4D, factor: number): tf.Tensor4D =>
  tf.image.resizeNearestNeighbor(x, [x.shape[1] * factor, x.shape[2] * factor]); // [B, H·f, W·f, C]

/** The pyramid and the FPN. `useStem = false` is the ablation without the convolutional stem. */
export const applyPixelDecoder = (
  p: PixelDecoderParams<tf.Tensor>,
  image: tf.Tensor4D,
  vit: tf.Tensor4D,
  useStem = true,
): PixelDecoderOutput => {
  const s32 = conv(tf.maxPool(vit, 2, 2, "valid"), p.lateral[0] as ConvParams<tf.Tensor>); // [B, H/32, W/32, D]
  const s16 = conv(vit, p.lateral[1] as ConvParams<tf.Tensor>); // [B, H/16, W/16, D]
  const s8 = conv(up(vit, 2), p.lateral[2] as ConvParams<tf.Tensor>); // [B, H/8, W/8, D]
  let s4 = conv(up(vit, 4), p.lateral[3] as ConvParams<tf.Tensor>); // [B, H/4, W/4, D]
  if (useStem) {
    const stem = tf.relu(conv(tf.relu(conv(image, p.stem1, 2)), p.stem2, 2)); // [B, H/4, W/4, D]
    s4 = tf.add(s4, stem);
  }
  // top-down: each level adds the upsampled coarser output, then a 3×3 conv + ReLU
  const o32 = tf.relu(conv(s32, p.output[0] as ConvParams<tf.Tensor>)); // [B, H/32, W/32, D]
  const o16 = tf.relu(conv(tf.add(s16, up(o32, 2)), p.output[1] as ConvParams<tf.Tensor>)); // [B, H/16, W/16, D]
  const o8 = tf.relu(conv(tf.add(s8, up(o16, 2)), p.output[2] as ConvParams<tf.Tensor>)); // [B, H/8, W/8, D]
  const o4 = tf.relu(conv(tf.add(s4, up(o8, 2)), p.output[3] as ConvParams<tf.Tensor>)); // [B, H/4, W/4, D]
  return { maskFeatures: conv(o4, p.maskFeatures), levels: [o32, o16, o8] };
};
