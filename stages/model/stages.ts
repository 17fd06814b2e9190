/**
 * The training stage: a dataset → a trained baseline checkpoint, cached by (dataset content,
 * training config, seed, steps, backend). The checkpoint is safetensors (every parameter under its
 * path) with JSON metadata: model config, classes, the loss history and the validation metrics.
 */
import { Context, Effect, Layer, Schema } from "effect";
import {
  decodeSafetensors,
  encodeSafetensors,
  safetensors,
  type TensorFile,
} from "../../pipeline/codec/safetensors.ts";
import { fileRefCodec } from "../../pipeline/source.ts";
import { type Progress, track } from "../../pipeline/progress.ts";
import * as Stage from "../../pipeline/stage.ts";
import { backendEnvironment } from "../backend/tf.ts";
import { DatasetError } from "../data/sample.ts";
import { type DatasetRef, datasetRefCodec, openDataset } from "../data/source.ts";
import * as tf from "@tensorflow/tfjs";
import { namedTensors } from "./checkpoint.ts";
import { MODEL_PRESETS, PRESET_NAMES, tileSize } from "./model.ts";
import { ABLATION_ROWS, trainingCheckpoint, trainModel } from "./train.ts";
import { json } from "../../pipeline/codec/json.ts";
import { AttributeWords } from "../attributes/stages.ts";
import type { FittedAttribute } from "./attribute_labels.ts";
import { frozenTextOf } from "../text/frozen.ts";

export const TrainConfig = Schema.Struct({
  preset: Schema.Literals(PRESET_NAMES).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed("tiny" as const)),
  ),
  steps: Schema.Int.pipe(Schema.check(Schema.isGreaterThan(0)), Schema.withDecodingDefaultKey(Effect.succeed(200))),
  batch: Schema.Int.pipe(Schema.check(Schema.isGreaterThan(0)), Schema.withDecodingDefaultKey(Effect.succeed(2))),
  seed: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0))),
  learningRate: Schema.Number.pipe(Schema.withDecodingDefaultKey(Effect.succeed(1e-4))),
  weightDecay: Schema.Number.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0.05))),
  clipNorm: Schema.Number.pipe(Schema.withDecodingDefaultKey(Effect.succeed(1))),
  valFraction: Schema.Number.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0.2))),
  points: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(4096))),
  /** ablations of the preset: without the convolutional stem; learned or centre-started queries */
  stem: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(true))),
  queries: Schema.optionalKey(Schema.Literals(["learned", "centers"])),
  schedule: Schema.Literals(["constant", "step", "cosine"]).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed("step" as const)),
  ),
  /** cosine: warm-up steps */
  warmup: Schema.optionalKey(Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0)))),
  /** a wall-clock budget in minutes (steps is then the most the run may take) */
  minutes: Schema.optionalKey(Schema.Number.pipe(Schema.check(Schema.isGreaterThan(0)))),
  /** weight of the dense auxiliary losses */
  weightDense: Schema.optionalKey(Schema.Number.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0)))),
  /** weight of the centre heat map's focal loss */
  weightCenter: Schema.optionalKey(Schema.Number.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0)))),
  /** the share of crops placed on a nucleus, class-balanced (train.ts; absent: uniform crops) */
  focusCrops: Schema.optionalKey(Schema.Number.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: 1 })))),
  /** the paper's ablation row (absent: the baseline) */
  row: Schema.optionalKey(Schema.Literals(ABLATION_ROWS)),
  /** row full: the classes feature fusion reads at inference */
  fusionRule: Schema.optionalKey(Schema.Literals(["predicted", "all"])),
  /** rows with text: L_fix's class prompts name the image's organ (the paper's `a {class} nucleus in {organ}`) */
  organPrompts: Schema.optionalKey(Schema.Boolean),
});
export type TrainConfig = typeof TrainConfig.Type;

const failure = (
  e: unknown,
) => (e instanceof DatasetError
  ? e
  : new DatasetError({ file: "training", reason: e instanceof Error ? e.message : String(e) }));

/** Results depend on the backend's arithmetic; training also reports progress and writes checkpoints. */
const backendTag = backendEnvironment<Progress | TrainingCheckpoints>();

/**
 * Where intermediate checkpoints go while a training stage runs (a real dependency, switched on
 * from the task, like Progress): `none`, or `toDirectory(dir, every)` writing
 * `dir/checkpoint-step<N>.safetensors` atomically every `every` steps.
 */
export class TrainingCheckpoints extends Context.Service<TrainingCheckpoints, {
  readonly every: number;
  readonly save: (step: number, file: TensorFile) => Promise<void>;
}>()("ivaan/model/TrainingCheckpoints") {
  static readonly none: Layer.Layer<TrainingCheckpoints> = Layer.succeed(TrainingCheckpoints, {
    every: 0,
    save: () => Promise.resolve(),
  });
  static readonly toDirectory = (dir: string, every: number): Layer.Layer<TrainingCheckpoints> =>
    Layer.succeed(TrainingCheckpoints, {
      every,
      save: async (step, file) => {
        await Deno.mkdir(dir, { recursive: true });
        const path = `${dir}/checkpoint-step${step}.safetensors`;
        await Deno.writeFile(`${path}.tmp`, encodeSafetensors(file));
        await Deno.rename(`${path}.tmp`, path);
      },
    });
}

/** Trains (or continues) and returns the final checkpoint with the validation metrics in its metadata. */
const runTraining = (
  dataset: DatasetRef,
  config: TrainConfig,
  resume: TensorFile | undefined,
  attributes?: ReadonlyArray<FittedAttribute>,
  frozenText?: TensorFile,
) =>
  Effect.acquireUseRelease(
    Effect.tryPromise({ try: () => openDataset(dataset), catch: failure }),
    (ds) =>
      Effect.flatMap(
        TrainingCheckpoints,
        (checkpoints) =>
          track("training", config.minutes === undefined ? config.steps : Math.round(config.minutes * 60), (progress) =>
            Effect.tryPromise({
              try: async (signal) => {
                const started = performance.now();
                let done = 0, reported = 0;
                const size = tileSize(MODEL_PRESETS[config.preset]);
                const full = { ...config, size };
                const result = await trainModel(ds, full, {
                  ...(resume === undefined ? {} : { resume }),
                  ...(attributes === undefined ? {} : { attributes }),
                  ...(frozenText === undefined ? {} : { frozenText: frozenTextOf(frozenText) }),
                  signal,
                  checkpointEvery: checkpoints.every,
                  onCheckpoint: checkpoints.save,
                  onStep: (log) => {
                    done++;
                    const perStep = (performance.now() - started) / done / 1000;
                    const eta = Math.round(perStep * ((log.planned ?? config.steps) - log.step));
                    const note =
                      `loss ${log.total.toFixed(2)} (cls ${log.class.toFixed(2)} bce ${log.mask.toFixed(2)} dice ${
                        log.dice.toFixed(2)
                      }${log.center > 0 ? ` ctr ${log.center.toFixed(2)}` : ""}${
                        log.fix === undefined ? "" : ` fix ${log.fix.toFixed(2)}`
                      }${log.attr === undefined || log.attr === 0 ? "" : ` attr ${log.attr.toFixed(2)}`}${
                        log.cent === undefined || log.cent === 0 ? "" : ` cent ${log.cent.toFixed(2)}`
                      }${log.dense === undefined ? "" : ` dense ${log.dense.toFixed(2)}`}) ` +
                      `${log.planned === undefined ? "" : `step ${log.step} of ≈ ${log.planned} `}` +
                      `${(1 / perStep).toFixed(2)} steps/s ETA ${Math.floor(eta / 60)}m${
                        String(eta % 60).padStart(2, "0")
                      }s`;
                    // a resumed run starts past 0; a budgeted run counts seconds
                    const at = config.minutes === undefined
                      ? log.step
                      : Math.min(Math.round(config.minutes * 60), Math.round((performance.now() - started) / 1000));
                    Effect.runSync(progress.advance(at - reported, note));
                    reported = at;
                  },
                });
                const file = await trainingCheckpoint(result.params, result.optimizer, {
                  step: result.steps,
                  history: result.history,
                  config: full,
                  model: result.model,
                  classes: ds.classes,
                }, {
                  validation: JSON.stringify(result.validation),
                  split: JSON.stringify({ train: result.split.train.length, val: result.split.val.length }),
                });
                tf.dispose(namedTensors(result.params).map(([, t]) => t));
                result.optimizer.dispose();
                return file;
              },
              catch: failure,
            })),
      ),
    (ds) =>
      Effect.sync(() => ds.close()),
  );

/** Trains the baseline from scratch (its tile size is the preset's ViT img_size). */
export const trainBaseline = Stage.make({
  name: "model.train",
  // 4: the centre head starts with small weights; uncertain points in candidate order
  // 5: the conv preset's dense and centre branches, the dense MSGE loss (presets are keyed by name)
  version: 5,
  config: TrainConfig,
  inputs: { dataset: datasetRefCodec },
  output: safetensors,
  environment: backendTag,
  run: ({ dataset }, config) => runTraining(dataset, config, undefined),
});

/**
 * Trains a row with attribute prompts (L_attr): as `model.train`, with the fitted attributes of
 * the `attributes.words` stage as a second input, so the attribute chain is cached and shared.
 */
export const trainWithAttributes = Stage.make({
  name: "model.train.attributes",
  version: 2, // 2: as model.train 5
  config: TrainConfig,
  inputs: { dataset: datasetRefCodec, words: json(AttributeWords) },
  output: safetensors,
  environment: backendTag,
  run: ({ dataset, words }, config) => runTraining(dataset, config, undefined, words.attributes),
});

/** Continues a training run from one of its checkpoints up to `steps` (same config otherwise). */
export const continueTraining = Stage.make({
  name: "model.train.continue",
  version: 4, // 3: as model.train 4; 4: as model.train 5
  config: TrainConfig,
  inputs: { dataset: datasetRefCodec, checkpoint: fileRefCodec },
  output: safetensors,
  environment: backendTag,
  run: ({ dataset, checkpoint }, config) =>
    Effect.tryPromise({ try: () => Deno.readFile(checkpoint.path), catch: failure }).pipe(
      Effect.flatMap((bytes) => decodeSafetensors(bytes).pipe(Effect.mapError(failure))),
      Effect.flatMap((file) => runTraining(dataset, config, file)),
    ),
});

/** Continues an attribute-prompt row (as `model.train.attributes`) from one of its checkpoints up to `steps`. */
export const continueTrainingWithAttributes = Stage.make({
  name: "model.train.attributes.continue",
  version: 2, // 2: as model.train 5
  config: TrainConfig,
  inputs: { dataset: datasetRefCodec, checkpoint: fileRefCodec, words: json(AttributeWords) },
  output: safetensors,
  environment: backendTag,
  run: ({ dataset, checkpoint, words }, config) =>
    Effect.tryPromise({ try: () => Deno.readFile(checkpoint.path), catch: failure }).pipe(
      Effect.flatMap((bytes) => decodeSafetensors(bytes).pipe(Effect.mapError(failure))),
      Effect.flatMap((file) => runTraining(dataset, config, file, words.attributes)),
    ),
});

/**
 * A row with text (vl_fixed, sim, …: no attribute prompts) whose text encoder is frozen: the
 * `text.frozen` stage's prompt features stand in for the jointly trained tower.
 */
export const trainFrozenText = Stage.make({
  name: "model.train.frozen_text",
  version: 2, // 2: as model.train 5
  config: TrainConfig,
  inputs: { dataset: datasetRefCodec, text: safetensors },
  output: safetensors,
  environment: backendTag,
  run: ({ dataset, text }, config) => runTraining(dataset, config, undefined, undefined, text),
});

/** As `trainFrozenText` for rows with attribute prompts (the `attributes.words` stage's words). */
export const trainFrozenTextWithAttributes = Stage.make({
  name: "model.train.attributes.frozen_text",
  version: 2, // 2: as model.train 5
  config: TrainConfig,
  inputs: { dataset: datasetRefCodec, words: json(AttributeWords), text: safetensors },
  output: safetensors,
  environment: backendTag,
  run: ({ dataset, words, text }, config) => runTraining(dataset, config, undefined, words.attributes, text),
});
