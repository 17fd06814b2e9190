/**
 * `predict.image`: one image file predicted by a checkpoint, tiled and stitched, cached under the
 * contents of both (a rerun on the same image and model reads the result back). The output holds
 * the instance map at the model's resolution (`instances` I32 [h, w]), each instance's class and
 * score, and in its metadata the class names and the original size, so the task can map the
 * result back to the image's own pixels and measure attributes at the resolution they were fitted.
 */
import { Effect, Schema } from "effect";
import { safetensors, type TensorFile } from "../../pipeline/codec/safetensors.ts";
import { type Progress, track } from "../../pipeline/progress.ts";
import { fileRefCodec } from "../../pipeline/source.ts";
import * as Stage from "../../pipeline/stage.ts";
import { backendEnvironment } from "../backend/tf.ts";
import { DatasetError } from "../data/sample.ts";
import { type DecodeOptions, defaultDecodeOptions } from "../model/decoding.ts";
import { defaultDenseDecodeOptions } from "../model/dense_decoding.ts";
import { disposeModel, loadModel, modelTilePredictor } from "./model_tiles.ts";
import { readScaled } from "./scale.ts";
import { type ImagePrediction, predictTiled, tilePlacements } from "./tiling.ts";
import type { TtaOptions } from "./tta.ts";

export const PredictConfig = Schema.Struct({
  /** model pixels per image pixel (image µm/px ÷ model µm/px) */
  scale: Schema.Number.pipe(Schema.check(Schema.isGreaterThan(0))),
  /** pixels shared by neighbouring tiles (the largest nucleus diameter it stitches whole, ×2) */
  overlap: Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0))),
  /** tiles per forward pass */
  batch: Schema.Int.pipe(Schema.check(Schema.isGreaterThan(0))),
  /** decoding (decoding.ts): objectness threshold of a kept query */
  scoreThreshold: Schema.Number.pipe(
    Schema.withDecodingDefaultKey(Effect.succeed(defaultDecodeOptions.scoreThreshold)),
  ),
  /** decoding, models with dense supervision: pixels below this foreground probability are background */
  foregroundThreshold: Schema.optionalKey(Schema.Number),
  /** models with dense supervision: instances from the dense maps (dense_decoding.ts), classes from the queries */
  denseInstances: Schema.optionalKey(
    Schema.Struct({
      rule: Schema.Literals(["dense", "hybrid", "centers"]),
      energyThreshold: Schema.Number,
      minArea: Schema.Int,
      centerThreshold: Schema.optionalKey(Schema.Number),
      boundaryWeight: Schema.optionalKey(Schema.Number),
    }),
  ),
  /** decoding: per-class offsets of the queries' log class probabilities (decoding.ts) */
  classBias: Schema.optionalKey(Schema.Array(Schema.Number)),
  /** test-time augmentation (tta.ts): a nucleus is kept when this many of the 4 flips find it */
  ttaVotes: Schema.optionalKey(Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 4 })))),
  /** test-time augmentation (tta.ts): the 4 flips' dense, centre and type maps averaged before one decoding */
  ttaAverage: Schema.optionalKey(Schema.Literal(true)),
  /** with `ttaAverage`: the eight symmetries of the square (the 90° rotations too), not the four flips */
  ttaRot90: Schema.optionalKey(Schema.Literal(true)),
});
export type PredictConfig = typeof PredictConfig.Type;

/** The parts of a `predict.image` output. */
export interface StoredPrediction extends ImagePrediction {
  readonly classes: ReadonlyArray<string>;
  readonly originalHeight: number;
  readonly originalWidth: number;
}

/** Reads back what `predictImage` stored. */
export const storedPrediction = (file: TensorFile): StoredPrediction => {
  const t = (name: string) => {
    const v = file.tensors[name];
    if (v === undefined) throw new RangeError(`prediction: tensor '${name}' missing`);
    return v;
  };
  const inst = t("instances"), meta = file.metadata ?? {};
  return {
    height: inst.shape[0] as number,
    width: inst.shape[1] as number,
    instances: inst.data as Int32Array,
    classOf: t("classOf").data as Int32Array,
    scores: t("scores").data as Float32Array,
    classes: JSON.parse(meta.classes ?? "[]") as string[],
    originalHeight: Number(meta.originalHeight),
    originalWidth: Number(meta.originalWidth),
  };
};

/**
 * The decoding options of a prediction config (decoding.ts, dense_decoding.ts): shared by `predictImage` and the
 * whole-slide path (stages/slide/predict_slide.ts), so that both decode tiles alike.
 */
export const decodeOptionsOf = (config: PredictConfig): DecodeOptions => ({
  ...defaultDecodeOptions,
  scoreThreshold: config.scoreThreshold,
  ...(config.foregroundThreshold === undefined ? {} : { foregroundThreshold: config.foregroundThreshold }),
  ...(config.classBias === undefined ? {} : { classBias: config.classBias }),
  ...(config.denseInstances === undefined ? {} : {
    instances: config.denseInstances.rule,
    dense: {
      energyThreshold: config.denseInstances.energyThreshold,
      minArea: config.denseInstances.minArea,
      ...(config.denseInstances.centerThreshold === undefined
        ? {}
        : { centerThreshold: config.denseInstances.centerThreshold }),
      ...(config.denseInstances.boundaryWeight === undefined
        ? {}
        : { boundaryWeight: config.denseInstances.boundaryWeight }),
      foregroundThreshold: config.foregroundThreshold ?? defaultDenseDecodeOptions.foregroundThreshold,
    },
  }),
});

/** How a config combines the four flips (tta.ts), if it does. */
export const ttaOf = (config: Pick<PredictConfig, "ttaVotes" | "ttaAverage" | "ttaRot90">): TtaOptions | undefined =>
  config.ttaVotes !== undefined
    ? { votes: config.ttaVotes }
    : config.ttaAverage === true
    ? (config.ttaRot90 === true ? { average: true, rot90: true } : { average: true })
    : undefined;

const failure = (file: string) => (e: unknown) =>
  e instanceof DatasetError ? e : new DatasetError({ file, reason: e instanceof Error ? e.message : String(e) });

export const predictImage = Stage.make({
  name: "predict.image",
  // 2: nuclei no kept query owns take their centroid's query's class (decoding.ts), no longer the tile's commonest
  version: 2,
  config: PredictConfig,
  inputs: { image: fileRefCodec, checkpoint: fileRefCodec },
  output: safetensors,
  environment: backendEnvironment<Progress>(),
  run: ({ image, checkpoint }, config) =>
    Effect.gen(function* () {
      const [scaled, model] = yield* Effect.tryPromise({
        try: () => Promise.all([readScaled(image.path, config.scale), loadModel(checkpoint.path)]),
        catch: failure(image.path),
      });
      const total = tilePlacements(scaled.height, scaled.width, model.tile, config.overlap).length;
      const name = image.path.split("/").at(-1) ?? image.path;
      return yield* track(`predict ${name}`, total, (progress) =>
        Effect.tryPromise({
          try: async (): Promise<TensorFile> => {
            try {
              let reported = 0;
              const p = await predictTiled(
                scaled.rgb,
                scaled.height,
                scaled.width,
                modelTilePredictor(
                  model,
                  decodeOptionsOf(config),
                  ttaOf(config),
                ),
                {
                  tile: model.tile,
                  overlap: config.overlap,
                  batch: config.batch,
                  onProgress: (done) => {
                    Effect.runSync(progress.advance(done - reported, `${scaled.width}×${scaled.height} px`));
                    reported = done;
                  },
                },
              );
              const n = p.classOf.length;
              return {
                tensors: {
                  instances: { dtype: "I32", shape: [p.height, p.width], data: p.instances },
                  classOf: { dtype: "I32", shape: [n], data: p.classOf },
                  scores: { dtype: "F32", shape: [n], data: p.scores },
                },
                metadata: {
                  classes: JSON.stringify(model.classes),
                  originalHeight: String(scaled.originalHeight),
                  originalWidth: String(scaled.originalWidth),
                },
              };
            } finally {
              disposeModel(model);
            }
          },
          catch: failure(image.path),
        }));
    }),
});
