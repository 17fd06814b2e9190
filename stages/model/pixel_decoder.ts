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
 *
 * Fine masks (`fine`, the `tiny` preset): the stride-4 map is upsampled to stride 2 and fused
 * with the stem's first (stride-2) layer, so masks of 5–10 px nuclei are predicted on a grid of
 * 2 px instead of 4 px: overfitting one tile, stride-4 masks reach a segmentation quality (SQ) of only
 * ≈ 0.63 — small nuclei are 2–3 cells wide there.
 *   fine = ReLU(up×2(o4) + 1×1(ReLU(stem1))) → 1×1 → maskFeatures [B, H/2, W/2, D]
 */
import * as tf from "@tensorflow/tfjs";
import { conv, type ConvParams, initConv, type Initializer } from "./layers.ts";

export interface PixelDecoderParams<P extends tf.Tensor = tf.Variable> {
  /** the ViT presets' stem (a conv encoder's own s2 and s4 levels take its place) */
  readonly stem1?: ConvParams<P>; // 3×3 s2, 3 → D/4
  readonly stem2?: ConvParams<P>; // 3×3 s2, D/4 → D
  readonly lateral: ReadonlyArray<ConvParams<P>>; // 1×1 per level s32, s16, s8, s4
  readonly output: ReadonlyArray<ConvParams<P>>; // 3×3 per level after the top-down sum
  readonly maskFeatures: ConvParams<P>; // 1×1 on the s4 output
  readonly fineLateral?: ConvParams<P>; // 1×1, D/4 → D on the stem's stride-2 layer
  readonly fineOutput?: ConvParams<P>; // 1×1, D → D on the stride-2 fusion
}

export interface PixelDecoderOutput {
  readonly maskFeatures: tf.Tensor4D; // [B, H/4, W/4, D], or [B, H/2, W/2, D] with fine masks
  readonly coarse: tf.Tensor4D; // [B, H/4, W/4, D] stride-4 mask features (= maskFeatures without fine masks)
  readonly levels: readonly [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D]; // s32, s16, s8
}

export const initPixelDecoder = (
  init: Initializer,
  vitChannels: number,
  d: number,
  fine = false,
): PixelDecoderParams => ({
  stem1: initConv(init, 3, 3, Math.max(8, d / 4)),
  stem2: initConv(init, 3, Math.max(8, d / 4), d),
  lateral: [0, 1, 2, 3].map(() => initConv(init, 1, vitChannels, d)),
  output: [0, 1, 2, 3].map(() => initConv(init, 3, d, d)),
  maskFeatures: initConv(init, 1, d, d),
  ...(fine ? { fineLateral: initConv(init, 1, Math.max(8, d / 4), d), fineOutput: initConv(init, 1, d, d) } : {}),
});

/**
 * The same FPN on a convolutional encoder's levels (conv_encoder.ts): 1×1 laterals from its s32,
 * s16, s8 and s4 levels (channels `widths[4..1]`), and fine masks fused with its s2 level.
 */
export const initConvPixelDecoder = (
  init: Initializer,
  widths: readonly [number, number, number, number, number],
  d: number,
): PixelDecoderParams => ({
  lateral: [4, 3, 2, 1].map((l) => initConv(init, 1, widths[l] as number, d)),
  output: [0, 1, 2, 3].map(() => initConv(init, 3, d, d)),
  maskFeatures: initConv(init, 1, d, d),
  fineLateral: initConv(init, 1, widths[0], d),
  fineOutput: initConv(init, 1, d, d),
});

const up = (x: tf.Tensor4D, factor: number): tf.Tensor4D =>
  tf.image.resizeNearestNeighbor(x, [x.shape[1] * factor, x.shape[2] * factor]); // [B, H·f, W·f, C]

/**
 * The pyramid and the FPN. `useStem = false` is the ablation without the convolutional stem; fine
 * masks (stride 2) need the stem and happen when the fine parameters exist.
 */
export const applyPixelDecoder = (
  p: PixelDecoderParams<tf.Tensor>,
  image: tf.Tensor4D,
  vit: tf.Tensor4D,
  useStem = true,
): PixelDecoderOutput => {
  if (!useStem && p.fineLateral !== undefined) throw new RangeError("pixel decoder: fine masks need the stem");
  const s32 = conv(tf.maxPool(vit, 2, 2, "valid"), p.lateral[0] as ConvParams<tf.Tensor>); // [B, H/32, W/32, D]
  const s16 = conv(vit, p.lateral[1] as ConvParams<tf.Tensor>); // [B, H/16, W/16, D]
  const s8 = conv(up(vit, 2), p.lateral[2] as ConvParams<tf.Tensor>); // [B, H/8, W/8, D]
  let s4 = conv(up(vit, 4), p.lateral[3] as ConvParams<tf.Tensor>); // [B, H/4, W/4, D]
  let stem1: tf.Tensor4D | undefined;
  if (useStem) {
    if (p.stem1 === undefined || p.stem2 === undefined) throw new RangeError("pixel decoder: the stem has no weights");
    stem1 = tf.relu(conv(image, p.stem1, 2)); // [B, H/2, W/2, D/4]
    s4 = tf.add(s4, tf.relu(conv(stem1, p.stem2, 2))); // [B, H/4, W/4, D]
  }
  return topDown(p, s32, s16, s8, s4, stem1);
};

/** The pixel decoder on a convolutional encoder's five levels (finest first: s2 … s32). */
export const applyConvPixelDecoder = (
  p: PixelDecoderParams<tf.Tensor>,
  levels: readonly [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D],
): PixelDecoderOutput => {
  const [e2, e4, e8, e16, e32] = levels;
  const s32 = conv(e32, p.lateral[0] as ConvParams<tf.Tensor>); // [B, H/32, W/32, D]
  const s16 = conv(e16, p.lateral[1] as ConvParams<tf.Tensor>); // [B, H/16, W/16, D]
  const s8 = conv(e8, p.lateral[2] as ConvParams<tf.Tensor>); // [B, H/8, W/8, D]
  const s4 = conv(e4, p.lateral[3] as ConvParams<tf.Tensor>); // [B, H/4, W/4, D]
  return topDown(p, s32, s16, s8, s4, e2);
};

/** FPN top-down: each level adds the upsampled coarser output, then a 3×3 conv + ReLU; fine masks on `skip2`. */
const topDown = (
  p: PixelDecoderParams<tf.Tensor>,
  s32: tf.Tensor4D,
  s16: tf.Tensor4D,
  s8: tf.Tensor4D,
  s4: tf.Tensor4D,
  skip2: tf.Tensor4D | undefined, // [B, H/2, W/2, c]
): PixelDecoderOutput => {
  const o32 = tf.relu(conv(s32, p.output[0] as ConvParams<tf.Tensor>)); // [B, H/32, W/32, D]
  const o16 = tf.relu(conv(tf.add(s16, up(o32, 2)), p.output[1] as ConvParams<tf.Tensor>)); // [B, H/16, W/16, D]
  const o8 = tf.relu(conv(tf.add(s8, up(o16, 2)), p.output[2] as ConvParams<tf.Tensor>)); // [B, H/8, W/8, D]
  const o4 = tf.relu(conv(tf.add(s4, up(o8, 2)), p.output[3] as ConvParams<tf.Tensor>)); // [B, H/4, W/4, D]
  const coarse = conv(o4, p.maskFeatures); // [B, H/4, W/4, D]
  if (p.fineLateral === undefined || p.fineOutput === undefined || skip2 === undefined) {
    return { maskFeatures: coarse, coarse, levels: [o32, o16, o8] };
  }
  const fine = tf.relu(tf.add(up(o4, 2), conv(skip2, p.fineLateral))) as tf.Tensor4D; // [B, H/2, W/2, D]
  return { maskFeatures: conv(fine, p.fineOutput), coarse, levels: [o32, o16, o8] };
};
