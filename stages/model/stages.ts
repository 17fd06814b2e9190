/**
 * The training stage: a dataset → a trained baseline checkpoint, cached by (dataset content,
 * training config, seed, steps, backend). The checkpoint is safetensors (every parameter under its
 * path) with JSON metadata: model config, classes, the loss history and the validation metrics.
 */
import { Effect, Schema } from "effect";
import { safetensors } from "../../pipeline/codec/safetensors.ts";
import { type Progress, track } from "../../pipeline/progress.ts";
import * as Stage from "../../pipeline/stage.ts";
import { TfBackend } from "../backend/tf.ts";
import { DatasetError } from "../data/sample.ts";
import { datasetRefCodec, openDataset } from "../data/source.ts";
import * as tf from "@tensorflow/tfjs";
import { namedTensors, saveCheckpoint } from "./checkpoint.ts";
import { MODEL_PRESETS } from "./model.ts";
import { trainModel } from "./train.ts";

export const TrainConfig = Schema.Struct({
  preset: Schema.Literals(["micro", "tiny", "vit_b", "vit_l", "vit_h"]).pipe(
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
});
export type TrainConfig = typeof TrainConfig.Type;

const failure = (
  e: unknown,
) => (e instanceof DatasetError
  ? e
  : new DatasetError({ file: "training", reason: e instanceof Error ? e.message : String(e) }));

/** Results depend on the backend's arithmetic: its name and tfjs version are part of the key. */
const backendTag: Effect.Effect<string, never, TfBackend | Progress> = Effect.map(TfBackend, (b) => b.environment);

/** Trains the baseline (its tile size is the preset's ViT img_size). */
export const trainBaseline = Stage.make({
  name: "model.train",
  version: 1,
  config: TrainConfig,
  inputs: { dataset: datasetRefCodec },
  output: safetensors,
  environment: backendTag,
  run: ({ dataset }, config) =>
    Effect.acquireUseRelease(
      Effect.tryPromise({ try: () => openDataset(dataset), catch: failure }),
      (ds) =>
        track("training", config.steps, (progress) =>
          Effect.tryPromise({
            try: async () => {
              const started = performance.now();
              const size = MODEL_PRESETS[config.preset].vit.img_size;
              const result = await trainModel(ds, { ...config, size }, (log) => {
                const perStep = (performance.now() - started) / log.step / 1000;
                const eta = Math.round(perStep * (config.steps - log.step));
                const note =
                  `loss ${log.total.toFixed(2)} (cls ${log.class.toFixed(2)} bce ${log.mask.toFixed(2)} dice ${
                    log.dice.toFixed(2)
                  }) ` +
                  `${(1 / perStep).toFixed(2)} steps/s ETA ${Math.floor(eta / 60)}m${
                    String(eta % 60).padStart(2, "0")
                  }s`;
                Effect.runSync(progress.advance(1, note));
              });
              const file = saveCheckpoint(result.params, {
                format: "ivaan-checkpoint/1",
                config: JSON.stringify(config),
                model: JSON.stringify(result.model),
                classes: JSON.stringify(ds.classes),
                history: JSON.stringify(result.history),
                validation: JSON.stringify(result.validation),
                split: JSON.stringify({ train: result.split.train.length, val: result.split.val.length }),
              });
              tf.dispose(namedTensors(result.params).map(([, t]) => t));
              return file;
            },
            catch: failure,
          })),
      (ds) => Effect.sync(() => ds.close()),
    ),
});
