/**
 * The evaluation stages: pure, cached like any other. Inputs are file or directory references
 * (keyed by content), outputs are Schema-validated JSON with NaN as null.
 *
 *   instanceEvaluation   two 2-D instance maps          → PQ/DQ/SQ, TP/FP/FN, AJI, AJI+, Dice
 *   pannukeEvaluation    PanNuke masks, preds, types    → bPQ, mPQ, class PQ, tissues, detection, per image
 *   folderEvaluation     two folders of per-image maps  → mean instance metrics, detection/type F1
 */
import { Effect, Schema } from "effect";
import { json } from "../../pipeline/codec/json.ts";
import { NpyError, type NpyReader, openNpy, readNpy } from "../../pipeline/codec/npy.ts";
import { track } from "../../pipeline/progress.ts";
import { dirRefCodec, fileRefCodec } from "../../pipeline/source.ts";
import * as Stage from "../../pipeline/stage.ts";
import { centroids, detectionScores, emptyPairing, pairImage } from "./detection.ts";
import { InvalidInput } from "./errors.ts";
import { InstanceMetrics, instanceMetrics, Metric } from "./instance_metrics.ts";
import { type LabelMap, readLabelMap, sameSize } from "./maps.ts";
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

const LABEL_FILE = /\.(png|npy)$/i;

/** name → relative path of the instance maps of a folder (`instances/` if present, else the top level). */
const instanceFiles = (files: ReadonlyArray<{ readonly name: string }>): Map<string, string> => {
  const nested = files.some((f) => f.name.startsWith("instances/"));
  const out = new Map<string, string>();
  for (const { name } of files) {
    const inside = nested ? name.startsWith("instances/") && !name.slice(10).includes("/") : !name.includes("/");
    if (inside && LABEL_FILE.test(name)) out.set(name.slice(nested ? 10 : 0).replace(LABEL_FILE, ""), name);
  }
  return out;
};

/** The class of each instance: from `classes/NAME.json` ({id: class}) or the majority of a per-pixel class map. */
const classesOf = (root: string, files: ReadonlyArray<{ readonly name: string }>, name: string, instances: LabelMap) =>
  Effect.gen(function* () {
    const names = new Set(files.map((f) => f.name));
    const jsonName = `classes/${name}.json`;
    if (names.has(jsonName)) {
      const file = `${root}/${jsonName}`;
      const table = yield* Effect.tryPromise({
        try: async () => JSON.parse(await Deno.readTextFile(file)) as unknown,
        catch: (e) => new InvalidInput({ file, reason: `not valid JSON (${e instanceof Error ? e.message : e})` }),
      });
      if (
        typeof table !== "object" || table === null || Array.isArray(table) ||
        !Object.values(table).every(Number.isInteger)
      ) {
        return yield* new InvalidInput({ file, reason: 'expected an object {"<instance id>": <integer class>, …}' });
      }
      const map = table as Record<string, number>;
      return (id: number) => map[String(id)] ?? 0;
    }
    const pixelName = [`classes/${name}.png`, `classes/${name}.npy`].find((n) => names.has(n));
    if (pixelName === undefined) return undefined;
    const classMap = yield* readLabelMap(`${root}/${pixelName}`);
    yield* sameSize(instances, classMap, `${root}/instances/${name}`, `${root}/${pixelName}`);
    const votes = new Map<number, Map<number, number>>();
    for (let i = 0; i < instances.labels.length; i++) {
      const id = instances.labels[i] as number, c = classMap.labels[i] as number;
      if (id === 0 || c === 0) continue;
      let v = votes.get(id);
      if (v === undefined) votes.set(id, v = new Map());
      v.set(c, (v.get(c) ?? 0) + 1);
    }
    return (id: number) => {
      let best = 0, bestCount = 0;
      for (const [c, count] of [...(votes.get(id) ?? new Map<number, number>())].sort((a, b) => a[0] - b[0])) {
        if (count > bestCount) [best, bestCount] = [c, count];
      }
      return best;
    };
  });

/** Per-image instance metrics averaged over a folder, plus pooled detection and type F1. */
export const folderEvaluation = Stage.make({
  name: "evaluation.folder",
  version: 1,
  config: Iou,
  inputs: { truth: dirRefCodec, prediction: dirRefCodec },
  output: json(FolderMetrics),
  run: ({ truth, prediction }, { iou }) =>
    Effect.gen(function* () {
      const tFiles = instanceFiles(truth.files), pFiles = instanceFiles(prediction.files);
      if (tFiles.size === 0) {
        return yield* new InvalidInput({
          file: truth.path,
          reason: "no instance maps (instances/NAME.png|npy or NAME.png|npy)",
        });
      }
      const missing = [...tFiles.keys()].filter((n) => !pFiles.has(n));
      if (missing.length > 0) {
        return yield* new InvalidInput({
          file: prediction.path,
          reason: `no prediction for ${missing.length} image(s): ${missing.slice(0, 5).join(", ")}${
            missing.length > 5 ? ", …" : ""
          }`,
        });
      }
      const pairing = emptyPairing();
      let typed = false;
      const names = [...tFiles.keys()].sort();
      const perImage = yield* track("evaluating images", names.length, (progress) =>
        Effect.forEach(names, (name) =>
          Effect.gen(function* () {
            const tPath = `${truth.path}/${tFiles.get(name)}`, pPath = `${prediction.path}/${pFiles.get(name)}`;
            const t = yield* readLabelMap(tPath), p = yield* readLabelMap(pPath);
            yield* sameSize(t, p, tPath, pPath);
            const tClass = yield* classesOf(truth.path, truth.files, name, t);
            const pClass = yield* classesOf(prediction.path, prediction.files, name, p);
            typed ||= tClass !== undefined && pClass !== undefined;
            pairImage(
              centroids(
                t.labels,
                t.width,
                tClass ?? (() =>
                  0),
              ),
              centroids(
                p.labels,
                p.width,
                pClass ?? (() =>
                  0),
              ),
              pairing,
            );
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
          clsF1: typed ? nanMean([...det.typeF1].filter(([c]) => c > 0).map(([, v]) => v)) : NaN,
        },
        perImage,
      };
    }),
});
