/**
 * The Mask2Former-style baseline of IVAAN (the paper's ablation row 1): SAM ViT encoder → simple
 * feature pyramid + FPN pixel decoder (with a convolutional stem at stride 4) → Mask2Former
 * transformer decoder → per-layer class and mask predictions.
 *
 *   images [B, H, W, 3] (0–255) ─ normalise ─ ViT [B, H/16, W/16, D] ─ pixel decoder
 *     ─ maskFeatures [B, H/s, W/s, D], levels s32/s16/s8 ─ decoder ─ [{logits [B, Q, C+1], masks [B, Q, H/s, W/s]}]
 *   (s = maskStride: 4 as Mask2Former, 2 for `tiny`'s fine masks)
 *
 * Queries are Mask2Former's learned ones, or (`queries: "centers"`, the `tiny` preset) image-
 * dependent ones started at predicted nucleus centres (centers.ts explains why and how).
 *
 * Presets are named builders (STYLE: a registry, not branches); ablations are configs.
 */
import * as tf from "@tensorflow/tfjs";
import { centerLogits, type CenterParams, initCenters, proposalQueries, selectPeaks } from "./centers.ts";
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
import { applySim, type SimOutput } from "./sim.ts";
import { applyFusion, presenceLogits } from "./fusion.ts";
import {
  classSentences,
  initVisionLanguage,
  simConfigOf,
  type VisionLanguageConfig,
  type VisionLanguageParams,
} from "./vision_language.ts";

export interface ModelConfig {
  readonly vit: ViTConfig;
  readonly decoder: Omit<DecoderConfig, "classes">;
  /** the convolutional stem feeding the stride-4 level (ablation: false) */
  readonly stem: boolean;
  /** where the decoder's queries start: Mask2Former's learned ones, or predicted nucleus centres */
  readonly queries: "learned" | "centers";
  /** the stride of the predicted masks: Mask2Former's 4, or 2 (fine masks, needs the stem) */
  readonly maskStride: 2 | 4;
  /** IVAAN's vision–language parts (text tower, alignment, SIM); absent = the baseline */
  readonly vl?: VisionLanguageConfig;
  /** SAM's pixel normalisation */
  readonly pixelMean: readonly [number, number, number];
  readonly pixelStd: readonly [number, number, number];
}

export interface ModelParams<P extends tf.Tensor = tf.Variable> {
  readonly vit: ViTParams<P>;
  readonly pixelDecoder: PixelDecoderParams<P>;
  readonly decoder: DecoderParams<P>;
  /** the centre head and query projection (`queries: "centers"` only) */
  readonly centers?: CenterParams<P>;
  /** the vision–language parts (`vl` configs only) */
  readonly vl?: VisionLanguageParams<P>;
}

/** Every decoder layer's predictions (the first before any layer) and, with centre queries, the centre logits. */
export interface ModelOutput {
  readonly predictions: Prediction[];
  readonly centers?: tf.Tensor3D; // [B, H/4, W/4]
  /** `vl` configs: the last layer's (SIM-enhanced) queries [B, Q, D] and SIM's dynamic tokens [B, (C+1)·k, D] */
  readonly queries?: tf.Tensor3D;
  readonly tokens?: tf.Tensor3D;
  /** feature fusion: the multi-label head's presence logits [B, C] */
  readonly presence?: tf.Tensor2D;
}

/** What the model may be told besides the images: the classes each image holds (training only). */
export interface ModelInputs {
  /** 0/1 [B·C]: the truth's classes per image, for feature fusion in training */
  readonly present?: Float32Array;
}

const SAM_MEAN = [123.675, 116.28, 103.53] as const, SAM_STD = [58.395, 57.12, 57.375] as const;

/** A SAM-sized preset: the paper's decoder (200 learned queries, 9 layers) and stride-4 masks. */
const samPreset = (vit: ViTConfig): ModelConfig => ({
  vit,
  decoder: { d: 256, queries: 200, layers: 9, heads: 8, ffn: 2048 },
  stem: true,
  queries: "learned",
  maskStride: 4,
  pixelMean: SAM_MEAN,
  pixelStd: SAM_STD,
});

/**
 * Named presets. `tiny` trains on 2 CPU cores; its 120 queries exceed the nuclei of a 256² tile
 * (synthetic tiles hold ≈ 66, PanNuke tiles up to ≈ 100) — a 60-query version could not represent
 * them all — and they start at predicted nucleus centres: from scratch, learned queries did not
 * localise nuclei within a CPU budget (one tile overfitted for 200 steps: bPQ 0.22 learned vs 0.62
 * centre-started). `micro` is for tests; the SAM sizes keep Mask2Former/IVAAN's 200 learned queries
 * and 9 layers, as the paper.
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
    queries: "centers",
    maskStride: 2,
    pixelMean: SAM_MEAN,
    pixelStd: SAM_STD,
  },
  tiny: {
    vit: VIT_PRESETS.tiny,
    decoder: { d: 128, queries: 120, layers: 3, heads: 4, ffn: 256 },
    stem: true,
    queries: "centers",
    maskStride: 2,
    pixelMean: SAM_MEAN,
    pixelStd: SAM_STD,
  },
  vit_b: samPreset(VIT_PRESETS.vit_b),
  vit_l: samPreset(VIT_PRESETS.vit_l),
  vit_h: samPreset(VIT_PRESETS.vit_h),
};

/** Fresh parameters for `classes` nucleus classes (the decoder adds the no-object class). */
export const initModel = (config: ModelConfig, classes: number, seed: number): ModelParams => {
  const init = initializer(seed + 1);
  return {
    vit: initViT(config.vit, seed),
    pixelDecoder: initPixelDecoder(init, config.vit.out_chans, config.decoder.d, config.maskStride === 2),
    decoder: initDecoder(init, { ...config.decoder, classes }, config.queries === "learned"),
    ...(config.queries === "centers" ? { centers: initCenters(init, config.decoder.d) } : {}),
    ...(config.vl === undefined ? {} : { vl: initVisionLanguage(init, config.vl, classes, config.decoder.d, seed) }),
  };
};

/** The model on `images` in 0–255. */
export const applyModel = (
  params: ModelParams<tf.Tensor>,
  config: ModelConfig,
  classes: number,
  images: tf.Tensor4D,
  inputs: ModelInputs = {},
): ModelOutput => {
  const x = tf.div(tf.sub(images, [...config.pixelMean]), [...config.pixelStd]) as tf.Tensor4D; // [B, H, W, 3]
  const features = applyViT(params.vit, config.vit, x); // [B, H/16, W/16, D]
  const pixel = applyPixelDecoder(params.pixelDecoder, x, features, config.stem);
  const { maskFeatures, coarse } = pixel;
  const fused = fuseText(params, config, classes, pixel.levels, inputs);
  const levels = fused.levels;
  const decoder = { ...config.decoder, classes };
  // the vision–language configs keep the last queries (and run SIM on them) for the alignment losses
  let last: Partial<SimOutput> = {};
  const sim = config.vl === undefined ? undefined : simConfigOf(config.vl, classes, decoder.d);
  const enhance = config.vl === undefined ? undefined : (queries: tf.Tensor3D) => {
    if (sim !== undefined && params.vl?.sim === undefined) throw new RangeError("applyModel: SIM needs its parameters");
    last = sim === undefined || params.vl?.sim === undefined ? { queries } : applySim(params.vl.sim, sim, queries);
    return last.queries ?? queries;
  };
  const kept = (): Pick<ModelOutput, "queries" | "tokens"> => ({
    ...(last.queries === undefined ? {} : { queries: last.queries }),
    ...(last.tokens === undefined ? {} : { tokens: last.tokens }),
  });
  if (config.queries === "learned") {
    const predictions = applyDecoder(params.decoder, decoder, levels, maskFeatures, undefined, enhance);
    return { predictions, ...kept(), ...fused.extra };
  }
  if (params.centers === undefined) throw new RangeError("applyModel: centre queries need the centre parameters");
  const centers = centerLogits(params.centers, coarse); // [B, H/4, W/4]
  const peaks = selectPeaks(centers, decoder.queries);
  const maskSize = [maskFeatures.shape[1], maskFeatures.shape[2]] as const;
  const start = proposalQueries(params.centers, coarse, peaks, decoder.queries, maskSize);
  const predictions = applyDecoder(params.decoder, decoder, levels, maskFeatures, start, enhance);
  return { predictions, centers, ...kept(), ...fused.extra };
};

/**
 * Feature fusion (fusion.ts) on the pixel decoder's levels, when the config has it: the truth's
 * classes in training (rule `predicted`), the presence head's at inference, every class (rule `all`).
 */
const fuseText = (
  params: ModelParams<tf.Tensor>,
  config: ModelConfig,
  classes: number,
  levels: ReadonlyArray<tf.Tensor4D>,
  inputs: ModelInputs,
): { levels: ReadonlyArray<tf.Tensor4D>; extra: Pick<ModelOutput, "presence"> } => {
  const fusion = config.vl?.fusion, p = params.vl?.fusion;
  if (fusion === undefined || config.vl === undefined || params.vl === undefined) return { levels, extra: {} };
  if (p === undefined) throw new RangeError("applyModel: feature fusion needs its parameters");
  if (config.vl.classNames.length !== classes) {
    throw new RangeError(
      `applyModel: feature fusion needs the ${classes} class names, the config has ${config.vl.classNames.length}`,
    );
  }
  const b = levels[0]?.shape[0] ?? 0;
  const coarsest = levels[0] as tf.Tensor4D; // s32
  const presence = presenceLogits(p, coarsest); // [B, C]
  const present = fusion.rule === "all"
    ? new Float32Array(b * classes).fill(1)
    : inputs.present ?? Float32Array.from(presence.dataSync(), (logit) => (logit > 0 ? 1 : 0)); // σ > 0.5
  const text = classSentences(params.vl, config.vl); // [C, P]
  return { levels: applyFusion(p, config.decoder.heads, levels, text, present), extra: { presence } };
};
