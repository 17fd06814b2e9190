/**
 * Data stages: pure and cached, keyed by the dataset's content (see source.ts).
 *
 *   datasetSummary   a dataset → {images, nuclei, classCounts, organCounts, sizes, warnings}
 *   datasetSamples   a dataset → its decoded samples in one safetensors entry (for the small sets
 *                    whose decoding is the slow part: CoNSeP .mat, MoNuSeg polygons, folders,
 *                    synthetic tiles; a PanNuke fold streams from its .npy files instead)
 *   datasetSplit     a dataset → train/val/test sample ids (PanNuke fold rotations, or a seeded
 *                    split stratified by each tile's dominant class)
 */
import { Effect, Schema } from "effect";
import { json } from "../../pipeline/codec/json.ts";
import { type HostTensor, safetensors, type TensorFile } from "../../pipeline/codec/safetensors.ts";
import { track } from "../../pipeline/progress.ts";
import * as Stage from "../../pipeline/stage.ts";
import { DatasetError, type Sample } from "./sample.ts";
import { dominantClass, pannukeSplit, stratifiedSplit } from "./splits.ts";
import { datasetRefCodec, openDataset } from "./source.ts";

export const DatasetSummary = Schema.Struct({
  kind: Schema.String,
  images: Schema.Number,
  nuclei: Schema.Number,
  /** nuclei per class name ("unknown" for class −1) */
  classCounts: Schema.Record(Schema.String, Schema.Number),
  /** images per organ ("unknown" when not given) */
  organCounts: Schema.Record(Schema.String, Schema.Number),
  /** images per size, "HxW" */
  sizes: Schema.Record(Schema.String, Schema.Number),
  warnings: Schema.Array(Schema.String),
});
export type DatasetSummary = typeof DatasetSummary.Type;

const asDatasetError = (e: unknown) =>
  e instanceof DatasetError
    ? e
    : new DatasetError({ file: "dataset", reason: e instanceof Error ? e.message : String(e) });

/** Counts images, nuclei per class, images per organ and per size, reading one sample at a time. */
export const datasetSummary = Stage.make({
  name: "data.summary",
  version: 1,
  inputs: { dataset: datasetRefCodec },
  output: json(DatasetSummary),
  run: ({ dataset }) =>
    Effect.acquireUseRelease(
      Effect.tryPromise({ try: () => openDataset(dataset), catch: asDatasetError }),
      (ds) =>
        track(`reading ${dataset.kind}`, ds.size, (progress) =>
          Effect.gen(function* () {
            const classCounts: Record<string, number> = Object.fromEntries(ds.classes.map((c) => [c, 0]));
            const organCounts: Record<string, number> = {}, sizes: Record<string, number> = {};
            let nuclei = 0;
            for (let i = 0; i < ds.size; i++) {
              const s = yield* Effect.tryPromise({ try: () => ds.sample(i), catch: asDatasetError });
              for (let k = 1; k < s.classOf.length; k++) {
                const name = ds.classes[s.classOf[k] as number] ?? "unknown";
                classCounts[name] = (classCounts[name] ?? 0) + 1;
              }
              nuclei += s.classOf.length - 1;
              const organ = s.organ === "" ? "unknown" : s.organ;
              organCounts[organ] = (organCounts[organ] ?? 0) + 1;
              sizes[`${s.height}x${s.width}`] = (sizes[`${s.height}x${s.width}`] ?? 0) + 1;
              yield* progress.advance(1);
            }
            return {
              kind: ds.kind,
              images: ds.size,
              nuclei,
              classCounts,
              organCounts,
              sizes,
              warnings: [...(ds.warnings?.() ?? [])],
            };
          })),
      (ds) => Effect.sync(() => ds.close()),
    ),
});

/** Reads every sample (one at a time, with progress). */
const readAll = <A>(dataset: Parameters<typeof openDataset>[0], visit: (s: Sample, i: number) => A) =>
  Effect.acquireUseRelease(
    Effect.tryPromise({ try: () => openDataset(dataset), catch: asDatasetError }),
    (ds) =>
      track(`reading ${dataset.kind}`, ds.size, (progress) =>
        Effect.gen(function* () {
          const out: A[] = [];
          for (let i = 0; i < ds.size; i++) {
            out.push(visit(yield* Effect.tryPromise({ try: () => ds.sample(i), catch: asDatasetError }), i));
            yield* progress.advance(1);
          }
          return { values: out, classes: ds.classes, kind: ds.kind };
        })),
    (ds) => Effect.sync(() => ds.close()),
  );

/** Samples as tensors `image/<i>` [H,W,3] U8, `instances/<i>` [H,W] I32, `classOf/<i>` I32; ids and organs in metadata. */
export const samplesToTensors = (
  samples: ReadonlyArray<Sample>,
  info: { kind: string; classes: ReadonlyArray<string> },
): TensorFile => {
  const tensors: Record<string, HostTensor> = {};
  samples.forEach((s, i) => {
    tensors[`image/${i}`] = { dtype: "U8", shape: [s.height, s.width, 3], data: s.image };
    tensors[`instances/${i}`] = { dtype: "I32", shape: [s.height, s.width], data: s.instances };
    tensors[`classOf/${i}`] = { dtype: "I32", shape: [s.classOf.length], data: s.classOf };
  });
  return {
    tensors,
    metadata: {
      kind: info.kind,
      classes: JSON.stringify(info.classes),
      ids: JSON.stringify(samples.map((s) => s.id)),
      organs: JSON.stringify(samples.map((s) => s.organ)),
    },
  };
};

/** The inverse of `samplesToTensors`. */
export const tensorsToSamples = (file: TensorFile): { kind: string; classes: string[]; samples: Sample[] } => {
  const meta = file.metadata ?? {};
  const ids = JSON.parse(meta.ids ?? "[]") as string[], organs = JSON.parse(meta.organs ?? "[]") as string[];
  const samples = ids.map((id, i): Sample => {
    const image = file.tensors[`image/${i}`],
      instances = file.tensors[`instances/${i}`],
      classOf = file.tensors[`classOf/${i}`];
    if (image?.dtype !== "U8" || instances?.dtype !== "I32" || classOf?.dtype !== "I32") {
      throw new DatasetError({ file: "dataset tensors", reason: `sample ${i} (${id}) is missing or has wrong dtypes` });
    }
    const [height, width] = image.shape as [number, number, number];
    return {
      id,
      organ: organs[i] ?? "",
      height,
      width,
      image: image.data,
      instances: instances.data,
      classOf: classOf.data,
    };
  });
  return { kind: meta.kind ?? "", classes: JSON.parse(meta.classes ?? "[]") as string[], samples };
};

/** Every decoded sample of a dataset, cached as one safetensors entry. */
export const datasetSamples = Stage.make({
  name: "data.samples",
  version: 1,
  inputs: { dataset: datasetRefCodec },
  output: safetensors,
  run: ({ dataset }) =>
    Effect.gen(function* () {
      if (dataset.kind === "pannuke") {
        return yield* new DatasetError({
          file: dataset.path,
          reason: "a PanNuke fold is streamed from its .npy files, not copied into the cache",
        });
      }
      const { values, classes, kind } = yield* readAll(dataset, (s) => s);
      return samplesToTensors(values, { kind, classes });
    }),
});

export const DatasetSplit = Schema.Struct({
  /** how the split was made, e.g. "PanNuke split 1 (folds 1-2-3)" */
  method: Schema.String,
  train: Schema.Array(Schema.String),
  val: Schema.Array(Schema.String),
  test: Schema.Array(Schema.String),
});
export type DatasetSplit = typeof DatasetSplit.Type;

/** Train/val/test sample ids: PanNuke rotations, or a seeded split stratified by dominant class. */
export const datasetSplit = Stage.make({
  name: "data.split",
  version: 1,
  config: Schema.Struct({
    /** fraction of each stratum for validation */
    val: Schema.Number.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0.2))),
    /** fraction of each stratum for test */
    test: Schema.Number.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0))),
    seed: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0))),
    /** PanNuke: which fold rotation (1: 1-2-3, 2: 2-1-3, 3: 3-2-1) */
    rotation: Schema.Literals([1, 2, 3]).pipe(Schema.withDecodingDefaultKey(Effect.succeed(1 as const))),
  }),
  inputs: { dataset: datasetRefCodec },
  output: json(DatasetSplit),
  run: ({ dataset }, { val, test, seed, rotation }) =>
    Effect.gen(function* () {
      const { values, classes } = yield* readAll(dataset, (s) => ({ id: s.id, key: dominantClass(s.classOf, []) }));
      const ids = values.map((v) => v.id);
      const byIndex = (xs: ReadonlyArray<number>) => xs.map((i) => ids[i] as string);
      const split = yield* Effect.try({
        try: () => {
          if (dataset.kind === "pannuke") {
            return {
              method: `PanNuke split ${rotation}`,
              split: pannukeSplit(ids.map((id) => Number(/^fold(\d+)\//.exec(id)?.[1] ?? 0)), rotation),
            };
          }
          const keys = values.map((
            v,
          ) => (v.key === "none" || v.key === "unknown" ? v.key : classes[Number(v.key)] ?? v.key));
          return {
            method: `stratified by dominant class, seed ${seed}, val ${val}, test ${test}`,
            split: stratifiedSplit(keys, { val, test }, seed),
          };
        },
        catch: (e) =>
          new DatasetError({ file: dataset.path || dataset.kind, reason: e instanceof Error ? e.message : String(e) }),
      });
      return {
        method: split.method,
        train: byIndex(split.split.train),
        val: byIndex(split.split.val),
        test: byIndex(split.split.test),
      };
    }),
});
