/**
 * The evaluation stages: pure, cached like any other. Inputs are file or directory references
 * (keyed by content), outputs are Schema-validated JSON with NaN as null.
 *
 *   instanceEvaluation   two 2-D instance maps          → PQ/DQ/SQ, TP/FP/FN, AJI, AJI+, Dice
 *   pannukeEvaluation    PanNuke masks, preds, types    → bPQ, mPQ, class PQ, tissues, detection, per image
 *   folderEvaluation     two folders of per-image maps  → mean instance metrics, detection/type F1
 *   breakdownEvaluation  two folders of per-image maps  → where the PQ goes: pooled counts, error
 *                                                         categories, counterfactual PQs, confusion
 */
import { Effect, Schema } from "effect";
import { json } from "../../pipeline/codec/json.ts";
import { NpyError, type NpyReader, openNpy, readNpy } from "../../pipeline/codec/npy.ts";
import { track } from "../../pipeline/progress.ts";
import { dirRefCodec, fileRefCodec } from "../../pipeline/source.ts";
import * as Stage from "../../pipeline/stage.ts";
import { Breakdown, type ImageBreakdown, imageBreakdown, pooledBreakdown } from "./breakdown.ts";
import { detectionScores, emptyPairing } from "./detection.ts";
import { InvalidInput } from "./errors.ts";
import { InstanceMetrics, instanceMetrics, Metric } from "./instance_metrics.ts";
import { readLabelMap, sameSize } from "./maps.ts";
import { classNames, folderPairs, pairCentroids, readFolderPair } from "./_folder.ts";
import { nanMean, PANNUKE_CLASSES, PannukeAccumulator, pannukeImage } from "./pannuke.ts";

const Iou = Schema.Struct({
  /** IoU threshold of PQ: pairs need IoU > iou; below 0.5 pairs come from a Hungarian matching */
  iou: Schema.Number.pipe(
    Schema.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThan(1)),
    Schema.withDecodingDefaultKey(Effect.succeed(0.5)),
  ),
});

/** PQ/DQ/SQ, TP/FP/FN, AJI, AJI+ and Dice of two instance maps (.npy or 16-bit PNG). */
export const instanceEvaluation = Stage.make({
  name: "evaluation.instances",
  version: 1,
  config: Iou,
  inputs: { truth: fileRefCodec, prediction: fileRefCodec },
  output: json(InstanceMetrics),
  run: ({ truth, prediction }, { iou }) =>
    Effect.gen(function* () {
      const t = yield* readLabelMap(truth.path), p = yield* readLabelMap(prediction.path);
      yield* sameSize(t, p, truth.path, prediction.path);
      return instanceMetrics(t.labels, p.labels, iou);
    }),
});

const ByClass = Schema.Struct(
  Object.fromEntries(PANNUKE_CLASSES.map((c) => [c, Metric])) as Record<
    (typeof PANNUKE_CLASSES)[number],
    typeof Metric
  >,
);

export const PannukeMetrics = Schema.Struct({
  bPQ: Metric,
  mPQ: Metric,
  classPQ: ByClass,
  tissues: Schema.Record(Schema.String, Schema.Struct({ bPQ: Metric, mPQ: Metric })),
  detection: Schema.Struct({
    f1: Metric,
    precision: Metric,
    recall: Metric,
    accuracy: Metric,
    typeF1: ByClass,
    clsF1: Metric,
  }),
  perImage: Schema.Array(Schema.Struct({ bPQ: Metric, mPQ: Metric, classPQ: ByClass })),
});
export type PannukeMetrics = typeof PannukeMetrics.Type;

const npyFailure = (file: string) => (e: unknown) =>
  new InvalidInput({ file, reason: e instanceof NpyError ? e.reason : e instanceof Error ? e.message : String(e) });

/** Opens a PanNuke-layout array [N, H, W, C ≥ 5] with a numeric dtype. */
const openMasks = (file: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => openNpy(file), catch: npyFailure(file) }).pipe(Effect.flatMap((reader) => {
      const { shape, dtype } = reader.header;
      const problem = shape.length !== 4
        ? `expected PanNuke layout [N, H, W, 6], found shape (${shape.join(", ")})`
        : (shape[3] as number) < 5
        ? `expected at least 5 channels (neoplastic … epithelial), found ${shape[3]}`
        : dtype.startsWith("U")
        ? `expected numeric instance ids, found dtype ${dtype}`
        : undefined;
      return problem === undefined ? Effect.succeed(reader) : Effect.sync(() => reader.close()).pipe(
        Effect.andThen(Effect.fail(new InvalidInput({ file, reason: problem }))),
      );
    })),
    (reader) => Effect.sync(() => reader.close()),
  );

/** PanNuke bPQ/mPQ/class PQ/tissues/detection, streaming one image at a time. */
export const pannukeEvaluation = Stage.make({
  name: "evaluation.pannuke",
  version: 1,
  inputs: { truth: fileRefCodec, prediction: fileRefCodec, types: fileRefCodec },
  output: json(PannukeMetrics),
  run: ({ truth, prediction, types }) =>
    Effect.scoped(Effect.gen(function* () {
      const t: NpyReader = yield* openMasks(truth.path), p: NpyReader = yield* openMasks(prediction.path);
      const [n, h, w] = t.header.shape as [number, number, number, number];
      const [pn, ph, pw] = p.header.shape as [number, number, number, number];
      if (pn !== n || ph !== h || pw !== w) {
        return yield* new InvalidInput({
          file: prediction.path,
          reason: `shape (${p.header.shape.join(", ")}) does not match the truth's (${
            t.header.shape.join(", ")
          }) in N, H, W`,
        });
      }
      const tissueArray = yield* Effect.tryPromise({ try: () => readNpy(types.path), catch: npyFailure(types.path) });
      if (ArrayBuffer.isView(tissueArray.data) || tissueArray.data.length !== n) {
        return yield* new InvalidInput({
          file: types.path,
          reason:
            `expected ${n} tissue names (a unicode array, as PanNuke's types.npy), found dtype ${tissueArray.dtype} shape (${
              tissueArray.shape.join(", ")
            })`,
        });
      }
      const tissues = tissueArray.data as ReadonlyArray<string>;
      const acc = new PannukeAccumulator();
      yield* track("evaluating images", n, (progress) =>
        Effect.forEach(
          Array.from({ length: n }, (_, i) => i),
          (i) =>
            Effect.gen(function* () {
              const [ts, ps] = yield* Effect.tryPromise({
                try: () => Promise.all([t.read(i), p.read(i)]),
                catch: npyFailure(truth.path),
              });
              const result = yield* Effect.try({
                try: () =>
                  pannukeImage(
                    { height: h, width: w, channels: t.header.shape[3] as number, data: ts.data as ArrayLike<number> },
                    { height: h, width: w, channels: p.header.shape[3] as number, data: ps.data as ArrayLike<number> },
                    `image ${i}`,
                  ),
                catch: (e) =>
                  new InvalidInput({
                    file: `${truth.path} / ${prediction.path}`,
                    reason: e instanceof Error ? e.message : String(e),
                  }),
              });
              acc.add(result, tissues[i] as string);
              yield* progress.advance(1);
            }),
          { discard: true },
        ));
      return acc.result();
    })),
});

export const FolderMetrics = Schema.Struct({
  images: Schema.Number,
  pq: Metric,
  dq: Metric,
  sq: Metric,
  aji: Metric,
  ajiPlus: Metric,
  dice: Metric,
  detection: Schema.Struct({
    f1: Metric,
    precision: Metric,
    recall: Metric,
    accuracy: Metric,
    typeF1: Schema.Record(Schema.String, Metric),
    clsF1: Metric,
  }),
  perImage: Schema.Array(Schema.Struct({ name: Schema.String, ...InstanceMetrics.fields })),
});
export type FolderMetrics = typeof FolderMetrics.Type;

/** Per-image instance metrics averaged over a folder, plus pooled detection and type F1. */
export const folderEvaluation = Stage.make({
  name: "evaluation.folder",
  version: 1,
  config: Iou,
  inputs: { truth: dirRefCodec, prediction: dirRefCodec },
  output: json(FolderMetrics),
  run: ({ truth, prediction }, { iou }) =>
    Effect.gen(function* () {
      const pairs = yield* folderPairs(truth, prediction);
      const pairing = emptyPairing();
      let typed = false;
      const perImage = yield* track("evaluating images", pairs.length, (progress) =>
        Effect.forEach(pairs, (files) =>
          Effect.gen(function* () {
            const pair = yield* readFolderPair(truth, prediction, files);
            const { name, truth: t, pred: p, truthType, predType } = pair;
            typed ||= truthType !== undefined && predType !== undefined;
            pairCentroids(pair, pairing);
            yield* progress.advance(1);
            return { name, ...instanceMetrics(t.labels, p.labels, iou) };
          })));
      const det = detectionScores(pairing);
      const typeF1 = typed ? Object.fromEntries([...det.typeF1].map(([c, v]) => [String(c), v])) : {};
      const mean = (key: "pq" | "dq" | "sq" | "aji" | "ajiPlus" | "dice") =>
        perImage.reduce((s, m) =>
          s + m[key], 0) / perImage.length;
      return {
        images: perImage.length,
        pq: mean("pq"),
        dq: mean("dq"),
        sq: mean("sq"),
        aji: mean("aji"),
        ajiPlus: mean("ajiPlus"),
        dice: mean("dice"),
        detection: {
          f1: det.f1,
          precision: det.precision,
          recall: det.recall,
          accuracy: typed ? det.accuracy : NaN,
          typeF1,
          clsF1: typed
            ? nanMean(
              [...det.typeF1].filter(([c]) =>
                c > 0
              ).map(([, v]) => v),
            )
            : NaN,
        },
        perImage,
      };
    }),
});

/**
 * Where the PQ goes over two folders (the layout of `folderEvaluation`, whose per-image PQ it
 * reproduces): counts pooled over images, FN/FP categories, counterfactual PQs, the confusion
 * matrix of the PQ pairs and per-type F1 (breakdown.ts). Class names come from `dataset.json`.
 */
export const breakdownEvaluation = Stage.make({
  name: "evaluation.breakdown",
  version: 1,
  config: Iou,
  inputs: { truth: dirRefCodec, prediction: dirRefCodec },
  output: json(Breakdown),
  run: ({ truth, prediction }, { iou }) =>
    Effect.gen(function* () {
      const pairs = yield* folderPairs(truth, prediction);
      const names = yield* classNames(truth, prediction);
      const centroidPairing = emptyPairing();
      let typed = false;
      const images: Array<{ name: string; breakdown: ImageBreakdown }> = [];
      yield* track("breaking down images", pairs.length, (progress) =>
        Effect.forEach(pairs, (files) =>
          Effect.gen(function* () {
            const pair = yield* readFolderPair(truth, prediction, files);
            const { name, truth: t, pred: p, truthType, predType } = pair;
            typed ||= truthType !== undefined && predType !== undefined;
            pairCentroids(pair, centroidPairing);
            images.push({ name, breakdown: imageBreakdown(t.labels, p.labels, { iou, truthType, predType }) });
            yield* progress.advance(1);
          }), { discard: true }));
      return pooledBreakdown(images, { iou, centroids: centroidPairing, typed, classNames: names });
    }),
});
