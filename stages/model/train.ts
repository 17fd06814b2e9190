/**
 * Training and validation of the baseline on a dataset: a seeded train/val split (stratified by
 * dominant class), a seeded sample order, augmentation (random crop to the training size, flips,
 * rot90, light HED jitter), AdamW steps, and evaluation of the held-out tiles with the evaluation
 * stages' metrics (PQ of the binary instance map as PanNuke's bPQ, AJI, detection and type F1).
 */
import * as tf from "@tensorflow/tfjs";
import { augment, crop } from "../data/augment.ts";
import { deriveSeed, mulberry32, shuffled } from "../data/random.ts";
import type { TensorFile } from "../../pipeline/codec/safetensors.ts";
import { loadCheckpoint, OPTIMIZER, parameterTensors, saveCheckpoint } from "./checkpoint.ts";
import { type Dataset, datasetOrgans, type Sample } from "../data/sample.ts";
import { seededSplit } from "../data/splits.ts";
import { type ScoredTile, scoreTiles } from "./scores.ts";
import { type DecodedInstances, type DecodeOptions, decodeValues, defaultDecodeOptions } from "./decoding.ts";
import {
  imagePrediction,
  initModel,
  lastPredictionValues,
  MODEL_PRESETS,
  type ModelConfig,
  type ModelParams,
} from "./model.ts";
import { disposeBatch, modelBatch, trainStep, trainStepAsync } from "./train_step.ts";
import { prefetch, readsSynchronously } from "../backend/tf.ts";
import { visionLanguagePreset } from "./vision_language.ts";
import type { FusionRule } from "./fusion.ts";
import { attributeLabels, attributePrompts, type FittedAttribute } from "./attribute_labels.ts";
import type { ClipTextConfig } from "../text/clip_text.ts";

export interface TrainConfig {
  readonly preset: keyof typeof MODEL_PRESETS;
  readonly steps: number;
  readonly batch: number;
  readonly seed: number;
  readonly learningRate: number;
  readonly weightDecay: number;
  readonly clipNorm: number;
  /** training tiles are cropped to this side (the ViT's img_size by default) */
  readonly size: number;
  readonly valFraction: number;
  /** points per mask for matching and the mask losses (Mask2Former: 12,544) */
  readonly points: number;
  /** the preset's convolutional stem (false: the ablation without it) */
  readonly stem: boolean;
  /** where the queries start, when not the preset's choice */
  readonly queries?: ModelConfig["queries"];
  /**
   * the learning-rate schedule: constant; Mask2Former's steps (×0.1 at 89 % and at 96 % of the
   * steps); or cosine (a linear warm-up over `warmup` steps, then a cosine decay to 0 at the last step)
   */
  readonly schedule: "constant" | "step" | "cosine";
  /** cosine: warm-up steps (default 100) */
  readonly warmup?: number;
  /**
   * a wall-clock budget: the run plans its steps from the measured step time (re-estimated as it
   * goes; `steps` is then the most it may take), places the schedule's decay accordingly, and stops
   * at the budget, leaving time for the validation
   */
  readonly minutes?: number;
  /** weight of the dense auxiliary losses (models with dense supervision; default 1) */
  readonly weightDense?: number;
  /** weight of the centre heat map's focal loss (models with centre queries; default 1) */
  readonly weightCenter?: number;
  /**
   * the share of training crops placed on a nucleus (augment.ts `focusedCrop`), drawn with weight
   * 1/√(its class's count in the training split), so rare classes and crowded areas are seen more
   * (default 0: uniform crops)
   */
  readonly focusCrops?: number;
  /** the row of the paper's ablation (absent: the baseline); see `ABLATION_ROWS` */
  readonly row?: AblationRow;
  /** row `full`: which classes the fusion reads at inference (default: the presence head's) */
  readonly fusionRule?: FusionRule;
  /** rows with text: L_fix's class prompts name the image's organ (`a {class} nucleus in {organ}`) */
  readonly organPrompts?: boolean;
}

/**
 * The rows of the paper's ablation that train today (each adds to the one before): the baseline
 * (row 1); + a jointly trained text tower and fixed class prompts (L_fix, row 2); + attribute
 * prompts from quantile bins (L_attr, row 3) or from the entropy bins (row 4); + category tokens
 * and SIM (L_cent, row 5); + feature fusion of the image-level text (row 6, `full`).
 */
export const ABLATION_ROWS = ["baseline", "vl_fixed", "vl_attr_quantile", "vl_attr_entropy", "sim", "full"] as const;
export type AblationRow = (typeof ABLATION_ROWS)[number];

/** How a row's attribute words are binned, or undefined when it has no attribute prompts. */
export const attributeBinning = (row: AblationRow | undefined): "quantile" | "entropy" | undefined =>
  row === "vl_attr_quantile"
    ? "quantile"
    : row === "vl_attr_entropy" || row === "sim" || row === "full"
    ? "entropy"
    : undefined;

/** The learning rate of (1-based) `step`: Mask2Former's instance schedule scaled to `steps`, or constant. */
export const scheduledRate = (
  config: Pick<TrainConfig, "learningRate" | "schedule" | "steps" | "warmup">,
  step: number,
) => {
  if (config.schedule === "constant") return config.learningRate;
  if (config.schedule === "cosine") {
    const warmup = Math.min(config.warmup ?? DEFAULT_WARMUP, Math.floor(config.steps / 2));
    if (step <= warmup) return config.learningRate * step / (warmup + 1);
    const done = Math.min(1, (step - warmup) / Math.max(1, config.steps - warmup));
    return config.learningRate * 0.5 * (1 + Math.cos(Math.PI * done));
  }
  // Mask2Former (COCO instance): decay ×0.1 at iterations 327,778 and 355,092 of 368,750
  const done = (step - 1) / config.steps;
  return config.learningRate * (done >= 0.96 ? 0.01 : done >= 0.89 ? 0.1 : 1);
};

/** Warm-up steps of the cosine schedule. */
export const DEFAULT_WARMUP = 100;

/** AdamW's learning rate by preset: the small CPU presets train from scratch (1e-3), the SAM sizes as the paper (1e-4). */
export const defaultLearningRate = (preset: TrainConfig["preset"]): number =>
  preset === "vit_b" || preset === "vit_l" || preset === "vit_h" ? 1e-4 : 1e-3;

/** The model a training config describes: its preset with the config's ablations. */
export const modelOf = (
  config: Pick<TrainConfig, "preset" | "stem" | "queries" | "row" | "fusionRule" | "organPrompts">,
  classNames: ReadonlyArray<string> = [],
  frozenText?: { readonly config: ClipTextConfig; readonly prompts: ReadonlyArray<string> },
  organs: ReadonlyArray<string> = [],
): ModelConfig => {
  const preset = MODEL_PRESETS[config.preset];
  if (preset.conv !== undefined && !config.stem) {
    throw new RangeError(`preset ${config.preset}: a conv encoder has no separate stem to leave out (--no-stem)`);
  }
  // fine masks are built on the stem: the ablation without it predicts at Mask2Former's stride 4
  const maskStride = config.stem ? preset.maskStride : 4;
  const row = config.row ?? "baseline";
  return {
    ...preset,
    stem: config.stem,
    queries: config.queries ?? preset.queries,
    maskStride,
    ...(row === "baseline" ? {} : {
      vl: {
        ...visionLanguagePreset({
          attributes: attributeBinning(row) !== undefined,
          sim: row === "sim" || row === "full",
          ...(row === "full" ? { fusion: config.fusionRule ?? "predicted" } : {}),
        }, classNames),
        // a frozen encoder's features stand in for the jointly trained tower
        ...(frozenText === undefined ? {} : { text: frozenText.config, frozenText: { prompts: frozenText.prompts } }),
        ...(config.organPrompts === true ? { organs } : {}),
      },
    }),
  };
};

export interface StepLog {
  readonly step: number;
  readonly total: number;
  readonly class: number;
  readonly mask: number;
  readonly dice: number;
  /** centre heat-map loss (0 for learned queries) */
  readonly center: number;
  /** L_fix, L_attr and L_cent (absent for the baseline) */
  readonly fix?: number;
  readonly attr?: number;
  readonly cent?: number;
  /** feature fusion's presence head (row full) */
  readonly presence?: number;
  /** dense supervision (models with `dense`) */
  readonly dense?: number;
  /** the learning rate of the step */
  readonly lr?: number;
  /** with a time budget: the steps planned at this step */
  readonly planned?: number;
  readonly ms: number;
}

export interface Validation {
  readonly tiles: number;
  /** mean over tiles of the PQ of the binary instance maps (PanNuke's bPQ convention) */
  readonly bPQ: number;
  readonly aji: number;
  readonly detectionF1: number;
  readonly classF1: Record<string, number>;
  readonly meanClassF1: number;
  /** PQ of each class's instances per tile, mean over the tiles holding the class */
  readonly classPQ: Record<string, number>;
}

/** Square crops of `size` tiling a sample (the whole sample when it already has that size). */
export const tilesOf = (s: Sample, size: number): Sample[] => {
  if (s.height === size && s.width === size) return [s];
  const out: Sample[] = [];
  for (let y = 0; y + size <= s.height; y += size) {
    for (let x = 0; x + size <= s.width; x += size) out.push(crop(s, y, x, size, size));
  }
  return out;
};

/** Predicts one tile and returns its decoded instances (on every backend). */
export const predictTile = async (
  params: ModelParams<tf.Tensor>,
  config: ModelConfig,
  classes: number,
  s: Sample,
  decode: DecodeOptions = defaultDecodeOptions,
): Promise<DecodedInstances> => {
  const images = tf.tensor4d(Float32Array.from(s.image), [1, s.height, s.width, 3]); // [1, H, W, 3]
  try {
    const p = await lastPredictionValues(params, config, classes, images);
    const { maps } = imagePrediction(p, 0);
    return decodeValues(p.logits, p.masks, p.shape, s.height, s.width, decode, maps);
  } finally {
    images.dispose();
  }
};

/** Evaluates tiles (scores.ts): bPQ, AJI, detection and per-class F1, per-class PQ; NaN where undefined. */
export const validate = async (
  params: ModelParams<tf.Tensor>,
  config: ModelConfig,
  classNames: ReadonlyArray<string>,
  tiles: ReadonlyArray<Sample>,
  decode: DecodeOptions = defaultDecodeOptions,
): Promise<Validation> => {
  const scored: ScoredTile[] = [];
  for (const s of tiles) {
    const d = await predictTile(params, config, classNames.length, s, decode);
    scored.push({
      width: s.width,
      truth: s.instances,
      truthClassOf: s.classOf,
      prediction: d.instances,
      predictionClassOf: d.classOf,
    });
  }
  const r = scoreTiles(classNames, scored);
  const nan = (x: number | null) => x ?? NaN;
  const byClass = (m: Record<string, number | null>) =>
    Object.fromEntries(classNames.map((n) => [n, nan(m[n] ?? null)]));
  return {
    tiles: r.tiles,
    bPQ: nan(r.bPQ),
    aji: nan(r.aji),
    detectionF1: nan(r.detectionF1),
    classF1: byClass(r.classF1),
    meanClassF1: nan(r.meanClassF1),
    classPQ: byClass(r.classPQ),
  };
};

/** The seeded split of a dataset into training and validation sample indices (splits.ts). */
export const splitDataset = (ds: Dataset, config: Pick<TrainConfig, "seed" | "valFraction">) =>
  seededSplit(ds, config.valFraction, config.seed);

/**
 * The plan of a run with a time budget (`minutes`): after a few steps, the steps that fit in what
 * is left of the budget at the mean wall time per step so far (data loading included), less a
 * reserve for the validation and the held-out predictions; never fewer than the
 * steps done, never more than `steps`. Re-estimated after every step, so the cosine or step
 * schedule's decay lands at the budget's end even when the step time drifts.
 */
const timeBudget = (config: TrainConfig, history: ReadonlyArray<StepLog>, valTiles: number) => {
  const started = performance.now();
  // a resumed run has already spent the time of its earlier steps
  const spentBefore = history.reduce((sum, h) => sum + h.ms, 0);
  const firstStep = (history.at(-1)?.step ?? 0) + 1;
  const totalMs = (config.minutes ?? 0) * 60_000;
  return {
    plan: (step: number): number => {
      const done = step - firstStep + 1;
      const elapsed = spentBefore + performance.now() - started;
      if (done < 5) return config.steps; // too few steps to measure
      const perStep = (performance.now() - started) / done;
      // predicting a tile costs ≈ 1/8 of a training step of 2; the held-out predictions run it twice
      const reserve = 2 * valTiles * perStep / 8;
      const more = Math.floor((totalMs - reserve - elapsed) / perStep);
      return Math.max(step, Math.min(config.steps, step + more));
    },
  };
};

/** Training options besides the config. */
export interface TrainHooks {
  /** sees every step's losses (progress lines) */
  readonly onStep?: (log: StepLog) => void;
  /** continue from a checkpoint written by this function (same config but `steps`, same backend) */
  readonly resume?: TensorFile;
  /** called with a full checkpoint every `checkpointEvery` steps */
  readonly onCheckpoint?: (step: number, file: TensorFile) => Promise<void>;
  readonly checkpointEvery?: number;
  /** stops the run between steps once aborted (Ctrl-C) */
  readonly signal?: AbortSignal;
  /** the fitted attributes (`attributes.words`): rows with attribute prompts need them */
  readonly attributes?: ReadonlyArray<FittedAttribute>;
  /** a frozen text encoder's prompt features (`text.frozen`) instead of the jointly trained tower */
  readonly frozenText?: {
    readonly config: ClipTextConfig;
    readonly prompts: ReadonlyArray<string>;
    readonly features: Float32Array; // [N, P]
  };
}

/**
 * Adam's running β₁ᵗ and β₂ᵗ. tfjs accumulates them by repeated float32 products but `setWeights`
 * recomputes them with `pow`, which differs in the last bits — so a resumed run restores them
 * (bracket access: the fields are private in tfjs's types).
 */
const betaPowers = async (optimizer: tf.AdamOptimizer): Promise<[number, number]> => {
  const [b1, b2] = await prefetch([optimizer["accBeta1"], optimizer["accBeta2"]]);
  return [b1?.[0] as number, b2?.[0] as number];
};

/** The checkpoint of a run: parameters, Adam's weights (positional) and the run's metadata. */
export const trainingCheckpoint = async (
  params: ModelParams,
  optimizer: tf.AdamOptimizer,
  meta: {
    step: number;
    history: ReadonlyArray<StepLog>;
    config: TrainConfig;
    model: ModelConfig;
    classes: ReadonlyArray<string>;
  },
  extra: Record<string, string> = {},
): Promise<TensorFile> => {
  const file = await saveCheckpoint(params, {
    format: "ivaan-checkpoint/1",
    step: String(meta.step),
    config: JSON.stringify(meta.config),
    model: JSON.stringify(meta.model),
    classes: JSON.stringify(meta.classes),
    history: JSON.stringify(meta.history),
    ...extra,
  });
  const weights = await optimizer.getWeights();
  const values = await prefetch(weights.map((w) => w.tensor));
  const tensors = { ...file.tensors };
  weights.forEach((w, i) => {
    tensors[`${OPTIMIZER}${String(i).padStart(5, "0")}`] = {
      dtype: "F32",
      shape: w.tensor.shape,
      data: Float32Array.from(values[i] ?? []),
    };
  });
  return {
    tensors,
    metadata: {
      ...file.metadata,
      optimizer: JSON.stringify(weights.map((w) => w.name)),
      adamBetaPowers: JSON.stringify(await betaPowers(optimizer)),
    },
  };
};

/** The sample index for position j of step `step` (1-based): seeded epochs, reproducible per step. */
const sampleAt = (
  train: ReadonlyArray<number>,
  seed: number,
  batch: number,
  step: number,
  j: number,
  epochs: Map<number, number[]>,
) => {
  const position = (step - 1) * batch + j, epoch = Math.floor(position / train.length);
  let order = epochs.get(epoch);
  if (order === undefined) epochs.set(epoch, order = shuffled(train, mulberry32(deriveSeed(seed, 1_000_003 + epoch))));
  return order[position % train.length] as number;
};

/** Per class, 1/√(its nuclei in the training samples) (0 for a class with none): `focusCrops`' weights. */
export const classBalance = async (
  train: ReadonlyArray<number>,
  load: (i: number) => Promise<Sample>,
  classes: number,
): Promise<number[]> => {
  const counts = new Array<number>(classes).fill(0);
  for (const i of train) {
    const s = await load(i);
    for (let id = 1; id < s.classOf.length; id++) {
      const c = s.classOf[id] as number;
      if (c >= 0 && c < classes) counts[c] = (counts[c] as number) + 1;
    }
  }
  return counts.map((n) => (n > 0 ? 1 / Math.sqrt(n) : 0));
};

/**
 * Trains from scratch, or from `hooks.resume`. Each step's samples and augmentations depend only
 * on (seed, step), so a resumed run continues exactly as an uninterrupted one (same backend).
 * The returned parameters are variables owned by the caller.
 */
export const trainModel = async (
  ds: Dataset,
  requested: TrainConfig,
  hooks: TrainHooks = {},
): Promise<{
  params: ModelParams;
  optimizer: tf.AdamOptimizer;
  model: ModelConfig;
  history: StepLog[];
  validation: Validation;
  split: { train: number[]; val: number[] };
  /** the steps taken: `steps`, or with a time budget the steps that fitted */
  steps: number;
}> => {
  let config = requested;
  // organ prompts: the dataset's organs, each a word of the prompts' vocabulary
  const organs = config.organPrompts === true ? await datasetOrgans(ds) : [];
  const model = modelOf(config, ds.classes, hooks.frozenText, organs);
  if (hooks.frozenText !== undefined && model.vl === undefined) {
    throw new RangeError("a frozen text encoder needs a row with text (vl_fixed … full), not the baseline");
  }
  const classes = ds.classes.length;
  const attributes = model.vl?.attributes === true ? hooks.attributes : undefined;
  if (model.vl?.attributes === true && (attributes === undefined || attributes.length === 0)) {
    throw new RangeError(`row ${config.row}: attribute prompts need the fitted attributes (attributes.words)`);
  }
  const params = initModel(model, classes, config.seed);
  if (hooks.frozenText !== undefined) {
    const { features, prompts, config: text } = hooks.frozenText;
    const frozen = params.vl?.frozen;
    tf.tidy(() => frozen?.assign(tf.tensor2d(features, [prompts.length, text.projection_dim]))); // [N, P]
  }
  const split = await splitDataset(ds, config);
  if (split.train.length === 0) throw new RangeError("training split is empty: the dataset needs more tiles");
  const cache = new Map<number, Sample>(); // small datasets: decode each sample once
  const load = async (i: number): Promise<Sample> => {
    const known = cache.get(i);
    if (known !== undefined) return known;
    const s = await ds.sample(i);
    if (ds.size <= 512) cache.set(i, s);
    return s;
  };
  const focus = (config.focusCrops ?? 0) > 0
    ? { probability: config.focusCrops as number, classWeights: await classBalance(split.train, load, classes) }
    : undefined;
  const optimizer = tf.train.adam(config.learningRate, 0.9, 0.999, 1e-8);
  const history: StepLog[] = [];
  let first = 1;
  if (hooks.resume !== undefined) {
    const meta = hooks.resume.metadata ?? {};
    const saved = JSON.parse(meta.config ?? "{}") as Partial<TrainConfig>;
    const mismatch = (Object.keys(config) as Array<keyof TrainConfig>).find((k) =>
      k !== "steps" && saved[k] !== config[k]
    );
    if (mismatch !== undefined) {
      throw new RangeError(
        `resume: the checkpoint was trained with ${mismatch} = ${JSON.stringify(saved[mismatch])}, not ${
          JSON.stringify(config[mismatch])
        }`,
      );
    }
    first = Number(meta.step ?? 0) + 1;
    if (first > config.steps) {
      throw new RangeError(`resume: the checkpoint is already at step ${first - 1}, ≥ --steps ${config.steps}`);
    }
    loadCheckpoint(params, parameterTensors(hooks.resume));
    const names = JSON.parse(meta.optimizer ?? "[]") as string[];
    await optimizer.setWeights(names.map((name, i) => {
      const t = hooks.resume?.tensors[`${OPTIMIZER}${String(i).padStart(5, "0")}`];
      if (t === undefined || t.dtype !== "F32") throw new RangeError(`resume: optimizer weight ${i} is missing`);
      return { name, tensor: tf.tensor(t.data, [...t.shape]) };
    }));
    const [b1, b2] = JSON.parse(meta.adamBetaPowers ?? "[]") as number[];
    if (b1 !== undefined && b2 !== undefined) {
      tf.tidy(() => [optimizer["accBeta1"].assign(tf.scalar(b1)), optimizer["accBeta2"].assign(tf.scalar(b2))]);
    }
    history.push(...(JSON.parse(meta.history ?? "[]") as StepLog[]));
  }
  const epochs = new Map<number, number[]>();
  const valTiles: Sample[] = [];
  for (const i of split.val) valTiles.push(...tilesOf(await load(i), config.size));
  const budget = config.minutes === undefined ? undefined : timeBudget(config, history, valTiles.length);
  let planned = config.steps;
  for (let step = first; step <= planned; step++) {
    // a step is seconds of synchronous work: give signal handlers (Ctrl-C) a turn of the event loop
    await new Promise((resolve) => setTimeout(resolve, 0));
    hooks.signal?.throwIfAborted();
    const picked: Sample[] = [];
    for (let j = 0; j < config.batch; j++) {
      const rng = mulberry32(deriveSeed(config.seed, step * 4096 + j));
      picked.push(
        augment(await load(sampleAt(split.train, config.seed, config.batch, step, j, epochs)), rng, {
          crop: config.size,
          flips: true,
          rot90: true,
          hedSigma: 0.03,
          ...(focus === undefined ? {} : { focus }),
        }),
      );
    }
    const started = performance.now();
    const small = picked.find((s) => s.height !== config.size || s.width !== config.size);
    if (small !== undefined) {
      throw new RangeError(
        `tile ${small.id} is ${small.height}×${small.width}, smaller than the training size ${config.size}`,
      );
    }
    // attributes are measured on the tiles as the model sees them (after crop and jitter)
    const labels = attributes === undefined ? undefined : {
      labels: picked.map((s) => attributeLabels(attributes, s)),
      candidates: attributes.map((a) => a.scale.length),
    };
    const batch = modelBatch(model, classes, picked, labels);
    const rate = scheduledRate({ ...config, steps: planned }, step);
    // read by applyGradients (protected in tfjs's types); depends on the step only, so resume stays exact
    optimizer["learningRate"] = rate;
    const options = {
      learningRate: rate,
      weightDecay: config.weightDecay,
      clipNorm: config.clipNorm,
      loss: { points: config.points, seed: config.seed + step },
      weightCenter: config.weightCenter ?? 1,
      weightDense: config.weightDense ?? 1,
      classNames: ds.classes,
      ...(attributes === undefined ? {} : { attributePrompts: attributePrompts(attributes) }),
    };
    const parts = readsSynchronously()
      ? trainStep(params, model, classes, optimizer, batch, options)
      : await trainStepAsync(params, model, classes, optimizer, batch, options);
    disposeBatch(batch);
    const log = {
      step,
      total: parts.total,
      class: parts.class,
      mask: parts.mask,
      dice: parts.dice,
      center: parts.center,
      ...(model.vl === undefined ? {} : { fix: parts.fix, attr: parts.attr, cent: parts.cent }),
      ...(model.vl?.fusion === undefined ? {} : { presence: parts.presence }),
      ...(model.dense === true ? { dense: parts.dense } : {}),
      lr: rate,
      ...(budget === undefined ? {} : { planned }),
      ms: performance.now() - started,
    };
    history.push(log);
    if (budget !== undefined) planned = budget.plan(step);
    hooks.onStep?.(log);
    const every = hooks.checkpointEvery ?? 0;
    if (hooks.onCheckpoint !== undefined && every > 0 && step % every === 0 && step < planned) {
      await hooks.onCheckpoint(
        step,
        await trainingCheckpoint(params, optimizer, { step, history, config, model, classes: ds.classes }),
      );
    }
  }
  if (budget !== undefined) config = { ...config, steps: history.at(-1)?.step ?? planned };
  const validation = await validate(params, model, ds.classes, valTiles);
  return { params, optimizer, model, history, validation, split, steps: config.steps };
};
