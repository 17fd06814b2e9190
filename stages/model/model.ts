/**
 * The Mask2Former-style baseline of IVAAN (the paper's ablation row 1): SAM ViT encoder → simple
 * feature pyramid + FPN pixel decoder (with a convolutional stem at stride 4) → Mask2Former
 * transformer decoder → per-layer class and mask predictions.
 *
 *   images [B, H, W, 3] (0–255) ─ normalise ─ ViT [B, H/16, W/16, D] ─ pixel decoder
 *     ─ maskFeatures [B, H/4, W/4, D], levels s32/s16/s8 ─ decoder ─ [{logits [B, Q, C+1], masks [B, Q, H/4, W/4]}]
 *
 * Presets are named builders (STYLE: a registry, not branches); ablations are configs.
 */
import * as tf from "@tensorflow/tfjs";
import { initializer } from "./layers.ts";
import {
  applyDecoder,
  type DecoderConfig,
  type DecoderParams,
  initDecoder,
  type Prediction,
} from "./transformer_decoder.ts";
import { applyPixelDecoder, initPixelDecoder, type PixelDecoderParams } from "./pixel_decoder.ts";
import { applyViT, initViT, VIT_PRESETS, type ViTConfig, type ViTParams } from "./vit.ts";

export interface ModelConfig {
  readonly vit: ViTConfig;
  readonly decoder: Omit<DecoderConfig, "classes">;
  /** the convolutional stem feeding the stride-4 level (ablation: false) */
  readonly stem: boolean;
  /** SAM's pixel normalisation */
  readonly pixelMean: readonly [number, number, number];
  readonly pixelStd: readonly [number, number, number];
}

export interface ModelParams<P extends tf.Tensor = tf.Variable> {
  readonly vit: ViTParams<P>;
  readonly pixelDecoder: PixelDecoderParams<P>;
  readonly decoder: DecoderParams<P>;
}

const SAM_MEAN = [123.675, 116.28, 103.53] as const, SAM_STD = [58.395, 57.12, 57.375] as const;

/**
 * Named presets. `tiny` trains on 2 CPU cores; its 120 queries exceed the nuclei of a 256² tile
 * (synthetic tiles hold ≈ 66, PanNuke tiles up to ≈ 100) — a 60-query version could not represent
 * them all. `micro` is for tests; the SAM sizes use Mask2Former/IVAAN's 200 queries and 9 layers.
 */
export const MODEL_PRESETS: Readonly<Record<"micro" | "tiny" | "vit_b" | "vit_l" | "vit_h", ModelConfig>> = {
  micro: {
    vit: {
      ...VIT_PRESETS.tiny,
      img_size: 64,
      embed_dim: 32,
      depth: 2,
      num_heads: 2,
      out_chans: 32,
      window_size: 2,
      global_attn_indexes: [1],
    },
    decoder: { d: 32, queries: 8, layers: 2, heads: 2, ffn: 64 },
    stem: true,
    pixelMean: SAM_MEAN,
    pixelStd: SAM_STD,
  },
  tiny: {
    vit: VIT_PRESETS.tiny,
    decoder: { d: 128, queries: 120, layers: 3, heads: 4, ffn: 256 },
    stem: true,
    pixelMean: SAM_MEAN,
    pixelStd: SAM_STD,
  },
  vit_b: {
    vit: VIT_PRESETS.vit_b,
    decoder: { d: 256, queries: 200, layers: 9, heads: 8, ffn: 2048 },
    stem: true,
    pixelMean: SAM_MEAN,
    pixelStd: SAM_STD,
  },
  vit_l: {
    vit: VIT_PRESETS.vit_l,
    decoder: { d: 256, queries: 200, layers: 9, heads: 8, ffn: 2048 },
    stem: true,
    pixelMean: SAM_MEAN,
    pixelStd: SAM_STD,
  },
  vit_h: {
    vit: VIT_PRESETS.vit_h,
    decoder: { d: 256, queries: 200, layers: 9, heads: 8, ffn: 2048 },
    stem: true,
    pixelMean: SAM_MEAN,
    pixelStd: SAM_STD,
  },
};

/** Fresh parameters for `classes` nucleus classes (the decoder adds the no-object class). */
export const initModel = (config: ModelConfig, classes: number, seed: number): ModelParams => {
  const init = initializer(seed + 1);
  return {
    vit: initViT(config.vit, seed),
    pixelDecoder: initPixelDecoder(init, config.vit.out_chans, config.decoder.d),
    decoder: initDecoder(init, { ...config.decoder, classes }),
  };
};

/** Predictions of every decoder layer (the first before any layer), for `images` in 0–255. */
export const applyModel = (
  params: ModelParams<tf.Tensor>,
  config: ModelConfig,
  classes: number,
  images: tf.Tensor4D,
): Prediction[] => {
  const x = tf.div(tf.sub(images, [...config.pixelMean]), [...config.pixelStd]) as tf.Tensor4D; // [B, H, W, 3]
  const features = applyViT(params.vit, config.vit, x); // [B, H/16, W/16, D]
  const { maskFeatures, levels } = applyPixelDecoder(params.pixelDecoder, x, features, config.stem);
  return applyDecoder(params.decoder, { ...config.decoder, classes }, levels, maskFeatures);
};
