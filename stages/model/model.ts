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
import { prefetch, readsSynchronously } from "../backend/tf.ts";
import type { DenseMaps, PredictionShape } from "./decoding.ts";
import {
  CENTER_STRIDE,
  centerLogits,
  type CenterParams,
  initCenters,
  type Peaks,
  proposalQueries,
  selectPeaks,
} from "./centers.ts";
import { initializer } from "./layers.ts";
import {
  applyDecoder,
  type DecoderConfig,
  type DecoderParams,
  initDecoder,
  type Prediction,
} from "./transformer_decoder.ts";
import {
  applyConvPixelDecoder,
  applyPixelDecoder,
  initConvPixelDecoder,
  initPixelDecoder,
  type PixelDecoderParams,
} from "./pixel_decoder.ts";
import { applyConvEncoder, type ConvEncoderConfig, type ConvEncoderParams, initConvEncoder } from "./conv_encoder.ts";
import { denseMaps, type DenseParams, initDense } from "./dense.ts";
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
  /** the encoder: SAM's ViT, or (`conv`, the real-data preset) a residual convolutional encoder */
  readonly vit?: ViTConfig;
  readonly conv?: ConvEncoderConfig;
  /** dense auxiliary supervision (dense.ts): foreground and distance maps from the mask features */
  readonly dense?: boolean;
  /** the dense head's branch: two 3×3 convs of this many channels (absent or 0: a 1×1 head alone) */
  readonly denseBranch?: number;
  /**
   * a nuclear-type map beside the dense maps (HoVer-Net's NC branch; needs `dense`): per-cell class logits
   * [B, H/s, W/s, C + 1] (channel 0 background) from a branch of its own, supervised on every cell, and the
   * decoding's classes from it (each nucleus's mean type probability) instead of the queries' votes
   */
  readonly denseTypes?: boolean;
  /** the centre head's branch: two 3×3 convs of this many channels (absent or 0: a 1×1 head alone) */
  readonly centerBranch?: number;
  /**
   * the stride of the centre heat map and of the queries' peaks (absent: 4, on the stride-4 features); 2 reads
   * the fine mask features (needs maskStride 2): CoNSeP's packed epithelial nuclei sit 10–12 px apart, 2.5–3
   * stride-4 cells, where the stride-4 head gave one peak for two or three of them
   */
  readonly centerStride?: 2 | 4;
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
  readonly vit?: ViTParams<P>;
  readonly conv?: ConvEncoderParams<P>;
  readonly dense?: DenseParams<P>;
  /** the type map's branch and head (`denseTypes` only) */
  readonly types?: DenseParams<P>;
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
  /** `dense` configs: foreground logit, horizontal and vertical distance at the mask stride */
  readonly dense?: tf.Tensor4D; // [B, H/s, W/s, 3]
  /** `denseTypes` configs: the type logits at the mask stride (channel 0 background) */
  readonly types?: tf.Tensor4D; // [B, H/s, W/s, C+1]
  /** `vl` configs: the last layer's (SIM-enhanced) queries [B, Q, D] and SIM's dynamic tokens [B, (C+1)·k, D] */
  readonly queries?: tf.Tensor3D;
  readonly tokens?: tf.Tensor3D;
  /** feature fusion: the multi-label head's presence logits [B, C] */
  readonly presence?: tf.Tensor2D;
  /** the decisions this run took from values or was given: `inputs` that replay it exactly */
  readonly decided: ModelInputs;
}

/**
 * What the model may be told besides the images: the classes each image holds (training), and
 * decisions taken from values by an earlier run of the same forward (`ModelOutput.decided`), so
 * that a differentiated run on a backend without synchronous reads needs to read nothing.
 */
export interface ModelInputs {
  /** 0/1 [B·C]: the classes per image for feature fusion (the truth's in training) */
  readonly present?: Float32Array;
  /** centre queries: the chosen cells */
  readonly peaks?: Peaks;
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

/** A conv-encoder preset: centre queries, stride-2 masks and dense supervision, as `conv`. */
const convPreset = (conv: ConvEncoderConfig, decoder: ModelConfig["decoder"], branch: number): ModelConfig => ({
  conv,
  dense: true,
  denseBranch: branch,
  centerBranch: branch,
  decoder,
  stem: true,
  queries: "centers",
  maskStride: 2,
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
export const MODEL_PRESETS: Readonly<Record<ModelPreset, ModelConfig>> = {
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
  /**
   * Real tissue from scratch on CPU (issue #17): the residual convolutional encoder (conv_encoder.ts)
   * instead of the ViT, the same pixel decoder, centre queries and stride-2 masks as `tiny`, and
   * dense auxiliary supervision (dense.ts).
   */
  conv: convPreset(
    { img_size: 256, widths: [32, 64, 128, 192, 256], blocks: [1, 2, 2, 2, 1] },
    { d: 128, queries: 120, layers: 3, heads: 4, ffn: 256 },
    32,
  ),
  /** `conv` at test size */
  conv_micro: convPreset(
    { img_size: 64, widths: [8, 16, 16, 32, 32], blocks: [1, 1, 1, 1, 1] },
    { d: 32, queries: 8, layers: 2, heads: 2, ffn: 64 },
    8,
  ),
  vit_b: samPreset(VIT_PRESETS.vit_b),
  vit_l: samPreset(VIT_PRESETS.vit_l),
  vit_h: samPreset(VIT_PRESETS.vit_h),
};

/** The preset names, CPU ones first. */
export const PRESET_NAMES = ["micro", "tiny", "conv", "conv_micro", "vit_b", "vit_l", "vit_h"] as const;
export type ModelPreset = (typeof PRESET_NAMES)[number];

/** The side of the square tiles a model is trained and run on. */
export const tileSize = (config: Pick<ModelConfig, "vit" | "conv">): number => {
  const size = config.conv?.img_size ?? config.vit?.img_size;
  if (size === undefined) throw new RangeError("model config: neither a ViT nor a conv encoder");
  return size;
};

/** Fresh parameters for `classes` nucleus classes (the decoder adds the no-object class). */
export const initModel = (config: ModelConfig, classes: number, seed: number): ModelParams => {
  const init = initializer(seed + 1);
  const encoder = encoderParams(config, seed, init);
  const d = config.decoder.d;
  return {
    ...encoder,
    pixelDecoder: config.conv !== undefined
      ? initConvPixelDecoder(init, config.conv.widths, d)
      : initPixelDecoder(init, config.vit?.out_chans ?? 0, d, config.maskStride === 2),
    ...(config.dense === true ? { dense: initDense(init, d, config.denseBranch ?? 0) } : {}),
    ...(config.denseTypes === true ? { types: initDense(init, d, config.denseBranch ?? 0, classes + 1) } : {}),
    decoder: initDecoder(init, { ...config.decoder, classes }, config.queries === "learned"),
    ...(config.queries === "centers"
      ? { centers: initCenters(init, config.decoder.d, config.centerBranch ?? 0, centerStrideOf(config)) }
      : {}),
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
): ModelOutput => decodeQueries(params, config, classes, encodeImages(params, config, images), inputs);

/**
 * `applyModel` for backends that cannot read values synchronously (and any other): the decisions
 * between encoder and decoder (centre peaks, predicted presence) read their values asynchronously
 * first. No gradient: training replays the returned `decided` inputs in its differentiated run.
 * The output's tensors are the caller's to dispose.
 */
export const applyModelAsync = async (
  params: ModelParams<tf.Tensor>,
  config: ModelConfig,
  classes: number,
  images: tf.Tensor4D,
  inputs: ModelInputs = {},
): Promise<ModelOutput> => {
  const encoded = tidied(() => encodeImages(params, config, images));
  let output: ModelOutput | undefined;
  try {
    // read once here, these values stay on the host: the decisions' dataSync then works on any backend
    await prefetch(defined([encoded.centers, encoded.presence]));
    output = tidied(() => decodeQueries(params, config, classes, encoded, inputs));
    return output;
  } finally {
    // the centre and presence logits are part of the output; the rest of the encoder's side is not
    const returned = new Set(output === undefined ? [] : outputTensors(output));
    tf.dispose(
      defined([
        encoded.maskFeatures,
        encoded.coarse,
        ...encoded.levels,
        encoded.centers,
        encoded.presence,
        encoded.dense,
        encoded.types,
      ])
        .filter((t) => !returned.has(t)),
    );
  }
};

/** The last decoder layer's predictions for a batch, as values on the host. */
export interface PredictionValues {
  /** `[B·Q·(C+1)]` class logits */
  readonly logits: Float32Array;
  /** `[B·Q·h·w]` mask logits */
  readonly masks: Float32Array;
  /** models with dense supervision: `[B·h·w·3]` dense maps on the mask grid (foreground logit, horizontal, vertical) */
  readonly dense?: Float32Array;
  /** models with a type map: `[B·h·w·(C+1)]` type logits on the mask grid */
  readonly types?: Float32Array;
  /** models with centre queries: `[B·ch·cw]` centre logits on the stride-4 grid, and that grid */
  readonly centers?: Float32Array;
  readonly centerGrid?: readonly [number, number];
  /** one image's part */
  readonly shape: PredictionShape;
}

/** The last layer's predictions on `images` [B, H, W, 3], read to the host; on every backend. */
export const lastPredictionValues = async (
  params: ModelParams<tf.Tensor>,
  config: ModelConfig,
  classes: number,
  images: tf.Tensor4D,
): Promise<PredictionValues> => {
  const output = readsSynchronously()
    ? tidied(() => applyModel(params, config, classes, images))
    : await applyModelAsync(params, config, classes, images);
  try {
    const last = output.predictions.at(-1);
    if (last === undefined) throw new Error("the model produced no prediction");
    const [, q, h, w] = last.masks.shape;
    const dense = output.dense;
    if (dense !== undefined && (dense.shape[1] !== h || dense.shape[2] !== w)) {
      throw new RangeError(`the dense maps are ${dense.shape[1]}×${dense.shape[2]}, the masks ${h}×${w}`);
    }
    const centers = output.centers, types = output.types;
    const [[logits, masks], [maps], [heat], [typeMap]] = await Promise.all([
      prefetch([last.logits, last.masks]),
      prefetch(defined([dense])),
      prefetch(defined([centers])),
      prefetch(defined([types])),
    ]);
    return {
      logits: logits as Float32Array,
      masks: masks as Float32Array,
      ...(maps === undefined ? {} : { dense: maps as Float32Array }),
      ...(typeMap === undefined ? {} : { types: typeMap as Float32Array }),
      ...(centers === undefined ? {} : {
        centers: heat as Float32Array,
        centerGrid: [centers.shape[1], centers.shape[2]] as const,
      }),
      shape: { queries: q, classes: last.logits.shape[2] - 1, h, w },
    };
  } finally {
    tf.dispose(outputTensors(output));
  }
};

/** Image `i`'s part of a batch's prediction values (views, no copy). */
export const imagePrediction = (
  p: PredictionValues,
  i: number,
): { logits: Float32Array; masks: Float32Array; maps?: DenseMaps } => {
  const { queries: q, classes, h, w } = p.shape;
  const [ch, cw] = p.centerGrid ?? [0, 0];
  return {
    logits: p.logits.subarray(i * q * (classes + 1), (i + 1) * q * (classes + 1)),
    masks: p.masks.subarray(i * q * h * w, (i + 1) * q * h * w),
    ...(p.dense === undefined ? {} : {
      maps: {
        dense: p.dense.subarray(i * h * w * 3, (i + 1) * h * w * 3),
        ...(p.types === undefined
          ? {}
          : { types: p.types.subarray(i * h * w * (classes + 1), (i + 1) * h * w * (classes + 1)) }),
        ...(p.centers === undefined ? {} : { centers: p.centers.subarray(i * ch * cw, (i + 1) * ch * cw), ch, cw }),
      },
    }),
  };
};

/** Every tensor of a model output (to dispose it). */
export const outputTensors = (o: ModelOutput): tf.Tensor[] =>
  defined([
    ...o.predictions.flatMap((p) => [p.logits, p.masks]),
    o.centers,
    o.queries,
    o.tokens,
    o.presence,
    o.dense,
    o.types,
  ]);

const defined = (tensors: ReadonlyArray<tf.Tensor | undefined>): tf.Tensor[] =>
  tensors.filter((t): t is tf.Tensor => t !== undefined);

/** The centre heat map's stride: the config's, else 4 (checkpoints from before the option). */
export const centerStrideOf = (config: Pick<ModelConfig, "centerStride">): 2 | 4 =>
  config.centerStride ?? CENTER_STRIDE;

/** `tf.tidy` for a record holding tensors (tfjs's types want an index signature). */
const tidied = <T extends object>(f: () => T): T => tf.tidy(() => f() as unknown as tf.TensorContainer) as unknown as T;

/** The encoder's side of the model: everything before a decision that reads values. */
interface Encoded {
  readonly maskFeatures: tf.Tensor4D; // [B, H/s, W/s, D]
  readonly coarse: tf.Tensor4D; // [B, H/4, W/4, D]
  readonly levels: ReadonlyArray<tf.Tensor4D>; // s32, s16, s8
  /** centre queries: the centre logits [B, H/c, W/c] the peaks are chosen from (c: centerStrideOf) */
  readonly centers?: tf.Tensor3D;
  /** feature fusion: the presence logits [B, C] */
  readonly presence?: tf.Tensor2D;
  /** dense supervision's maps [B, H/s, W/s, 3] */
  readonly dense?: tf.Tensor4D;
  /** the type map's logits [B, H/s, W/s, C+1] */
  readonly types?: tf.Tensor4D;
}

/** The encoder's parameters: a ViT (SAM's initialisation, seeded) or the conv encoder. */
const encoderParams = (config: ModelConfig, seed: number, init: ReturnType<typeof initializer>) => {
  if (config.conv !== undefined) return { conv: initConvEncoder(init, config.conv) };
  if (config.vit === undefined) throw new RangeError("model config: neither a ViT nor a conv encoder");
  return { vit: initViT(config.vit, seed) };
};

/** Encoder + pixel decoder on normalised images [B, H, W, 3]. */
const pixelFeatures = (params: ModelParams<tf.Tensor>, config: ModelConfig, x: tf.Tensor4D) => {
  if (config.conv !== undefined) {
    if (params.conv === undefined) throw new RangeError("applyModel: the conv encoder has no parameters");
    return applyConvPixelDecoder(params.pixelDecoder, applyConvEncoder(params.conv, x));
  }
  if (config.vit === undefined || params.vit === undefined) {
    throw new RangeError("applyModel: the ViT has no parameters");
  }
  const features = applyViT(params.vit, config.vit, x); // [B, H/16, W/16, D]
  return applyPixelDecoder(params.pixelDecoder, x, features, config.stem);
};

/** The features the centre head reads: the stride-4 ones, or the fine mask features for centerStride 2. */
const centerFeatures = (config: ModelConfig, maskFeatures: tf.Tensor4D, coarse: tf.Tensor4D): tf.Tensor4D => {
  if (centerStrideOf(config) === 4) return coarse; // [B, H/4, W/4, D]
  if (config.maskStride !== 2) throw new RangeError("model config: centerStride 2 needs maskStride 2");
  return maskFeatures; // [B, H/2, W/2, D]
};

const encodeImages = (params: ModelParams<tf.Tensor>, config: ModelConfig, images: tf.Tensor4D): Encoded => {
  const x = tf.div(tf.sub(images, [...config.pixelMean]), [...config.pixelStd]) as tf.Tensor4D; // [B, H, W, 3]
  const { maskFeatures, coarse, levels } = pixelFeatures(params, config, x);
  const fusion = config.vl?.fusion === undefined ? undefined : params.vl?.fusion;
  if (config.vl?.fusion !== undefined && fusion === undefined) {
    throw new RangeError("applyModel: feature fusion needs its parameters");
  }
  if (config.queries === "centers" && params.centers === undefined) {
    throw new RangeError("applyModel: centre queries need the centre parameters");
  }
  if (config.dense === true && params.dense === undefined) {
    throw new RangeError("applyModel: dense supervision needs its head's parameters");
  }
  if (config.denseTypes === true && params.types === undefined) {
    throw new RangeError("applyModel: the type map needs its head's parameters");
  }
  return {
    maskFeatures,
    coarse,
    levels,
    ...(params.dense === undefined ? {} : { dense: denseMaps(params.dense, maskFeatures) }), // [B, H/s, W/s, 3]
    ...(params.types === undefined ? {} : { types: denseMaps(params.types, maskFeatures) }), // [B, H/s, W/s, C+1]
    ...(params.centers === undefined || config.queries !== "centers"
      ? {}
      : { centers: centerLogits(params.centers, centerFeatures(config, maskFeatures, coarse)) }), // [B, H/c, W/c]
    ...(fusion === undefined ? {} : { presence: presenceLogits(fusion, levels[0] as tf.Tensor4D) }), // [B, C] from s32
  };
};

/** The decoder's side: decisions (from `inputs`, else read from values), fusion, queries, decoder. */
const decodeQueries = (
  params: ModelParams<tf.Tensor>,
  config: ModelConfig,
  classes: number,
  encoded: Encoded,
  inputs: ModelInputs,
): ModelOutput => {
  const { maskFeatures, coarse } = encoded;
  const fused = fuseText(params, config, classes, encoded, inputs);
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
  const { centers } = encoded;
  const dense = {
    ...(encoded.dense === undefined ? {} : { dense: encoded.dense }),
    ...(encoded.types === undefined ? {} : { types: encoded.types }),
  };
  if (config.queries === "learned" || centers === undefined || params.centers === undefined) {
    const predictions = applyDecoder(params.decoder, decoder, levels, maskFeatures, undefined, enhance);
    return { predictions, ...dense, ...kept(), ...fused.extra, decided: fused.decided };
  }
  const peaks = inputs.peaks ?? selectPeaks(centers, decoder.queries);
  const maskSize = [maskFeatures.shape[1], maskFeatures.shape[2]] as const;
  const start = proposalQueries(
    params.centers,
    centerFeatures(config, maskFeatures, coarse),
    peaks,
    decoder.queries,
    maskSize,
  );
  const predictions = applyDecoder(params.decoder, decoder, levels, maskFeatures, start, enhance);
  return { predictions, centers, ...dense, ...kept(), ...fused.extra, decided: { ...fused.decided, peaks } };
};

/**
 * Feature fusion (fusion.ts) on the pixel decoder's levels, when the config has it: the truth's
 * classes in training (rule `predicted`), the presence head's at inference, every class (rule `all`).
 */
const fuseText = (
  params: ModelParams<tf.Tensor>,
  config: ModelConfig,
  classes: number,
  encoded: Encoded,
  inputs: ModelInputs,
): { levels: ReadonlyArray<tf.Tensor4D>; extra: Pick<ModelOutput, "presence">; decided: ModelInputs } => {
  const { levels, presence } = encoded;
  const fusion = config.vl?.fusion, p = params.vl?.fusion;
  if (fusion === undefined || config.vl === undefined || params.vl === undefined || presence === undefined) {
    return { levels, extra: {}, decided: {} };
  }
  if (p === undefined) throw new RangeError("applyModel: feature fusion needs its parameters");
  if (config.vl.classNames.length !== classes) {
    throw new RangeError(
      `applyModel: feature fusion needs the ${classes} class names, the config has ${config.vl.classNames.length}`,
    );
  }
  const b = levels[0]?.shape[0] ?? 0;
  const present = fusion.rule === "all"
    ? new Float32Array(b * classes).fill(1)
    : inputs.present ?? Float32Array.from(presence.dataSync(), (logit) => (logit > 0 ? 1 : 0)); // σ > 0.5
  const text = classSentences(params.vl, config.vl); // [C, P]
  return {
    levels: applyFusion(p, config.decoder.heads, levels, text, present),
    extra: { presence },
    decided: { present },
  };
};
