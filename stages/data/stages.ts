/**
 * Data stages: pure and cached, keyed by the dataset's content (see source.ts).
 *
 *   datasetSummary   a dataset → {images, nuclei, classCounts, organCounts, sizes, warnings}
 */
import { Effect, Schema } from "effect";
import { json } from "../../pipeline/codec/json.ts";
import { track } from "../../pipeline/progress.ts";
import * as Stage from "../../pipeline/stage.ts";
import { DatasetError } from "./sample.ts";
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
