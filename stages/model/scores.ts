/**
 * Scores of predicted instance maps against the truth, as the training validation and the ablation
 * table report them: bPQ (PQ of the binary instance maps per tile, NaN-mean — PanNuke's
 * convention), AJI (mean over tiles), detection F1 and per-class F1 (centroid pairing within 12 px
 * over all tiles), and per-class PQ (per tile on the instances of that class, NaN-mean over the
 * tiles that hold the class).
 *
 * `heldoutScores` is the same as a cached stage on `model.heldout`'s output.
 */
import { Effect, Schema } from "effect";
import { json } from "../../pipeline/codec/json.ts";
import { safetensors, type TensorFile } from "../../pipeline/codec/safetensors.ts";
import * as Stage from "../../pipeline/stage.ts";
import { centroids, detectionScores, emptyPairing, pairImage } from "../evaluation/detection.ts";
import { instanceMetrics } from "../evaluation/instance_metrics.ts";
import { overlap } from "../evaluation/overlap.ts";
import { nanMean } from "../evaluation/pannuke.ts";
import { panopticQuality } from "../evaluation/pq.ts";
import { DatasetError } from "../data/sample.ts";

/** One scored tile: instance maps (0 = background) and the class of each id (−1 = none). */
export interface ScoredTile {
  readonly width: number;
  readonly truth: Int32Array;
  readonly truthClassOf: ArrayLike<number>;
  readonly prediction: Int32Array;
  readonly predictionClassOf: ArrayLike<number>;
}

const Metric = Schema.NullOr(Schema.Number);

export const Scores = Schema.Struct({
  tiles: Schema.Number,
  bPQ: Metric,
  aji: Metric,
  detectionF1: Metric,
  classF1: Schema.Record(Schema.String, Metric),
  meanClassF1: Metric,
  classPQ: Schema.Record(Schema.String, Metric),
});
/** NaN is written as null (JSON has no NaN). */
export type Scores = typeof Scores.Type;

const orNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** The instances of class `c` alone (others → 0). */
const ofClass = (map: Int32Array, classOf: ArrayLike<number>, c: number): Int32Array =>
  map.map((id) => (id > 0 && classOf[id] === c ? id : 0));

/** Scores of `tiles` for classes `classNames` (class k = index k). */
export const scoreTiles = (classNames: ReadonlyArray<string>, tiles: ReadonlyArray<ScoredTile>): Scores => {
  const pqs: number[] = [], ajis: number[] = [];
  const classPQs: number[][] = classNames.map(() => []);
  const pairing = emptyPairing();
  for (const t of tiles) {
    const m = instanceMetrics(t.truth, t.prediction);
    pqs.push(m.pq);
    ajis.push(m.aji);
    pairImage(
      centroids(t.truth, t.width, (id) => (t.truthClassOf[id] as number) + 1),
      centroids(t.prediction, t.width, (id) => (t.predictionClassOf[id] as number) + 1),
      pairing,
    );
    classNames.forEach((_, c) => {
      const truth = ofClass(t.truth, t.truthClassOf, c);
      if (!truth.some((id) => id > 0)) return; // the class is absent from this tile's truth
      const pred = ofClass(t.prediction, t.predictionClassOf, c);
      classPQs[c]?.push(panopticQuality(overlap(truth, pred, t.width)).pq);
    });
  }
  const det = detectionScores(pairing, { types: classNames.map((_, c) => c + 1) });
  const classF1 = classNames.map((_, c) => det.typeF1.get(c + 1) as number);
  return {
    tiles: tiles.length,
    bPQ: orNull(nanMean(pqs)),
    aji: orNull(nanMean(ajis)),
    detectionF1: orNull(det.f1),
    classF1: Object.fromEntries(classNames.map((n, c) => [n, orNull(classF1[c] as number)])),
    meanClassF1: orNull(nanMean(classF1)),
    classPQ: Object.fromEntries(classNames.map((n, c) => [n, orNull(nanMean(classPQs[c] ?? []))])),
  };
};

/** The tiles of a `model.heldout` output. */
export const heldoutTiles = (file: TensorFile): { classes: string[]; tiles: ScoredTile[] } => {
  const meta = file.metadata ?? {};
  const truth = file.tensors.truth, pred = file.tensors.prediction;
  if (truth?.dtype !== "I32" || pred?.dtype !== "I32") throw new RangeError("held-out predictions lack their maps");
  const [n, h, w] = truth.shape as [number, number, number];
  const truthClasses = JSON.parse(meta.truthClasses ?? "[]") as number[][];
  const predClasses = JSON.parse(meta.predictionClasses ?? "[]") as number[][];
  const tiles = Array.from({ length: n }, (_, t): ScoredTile => ({
    width: w,
    truth: truth.data.subarray(t * h * w, (t + 1) * h * w),
    truthClassOf: truthClasses[t] ?? [],
    prediction: pred.data.subarray(t * h * w, (t + 1) * h * w),
    predictionClassOf: predClasses[t] ?? [],
  }));
  return { classes: JSON.parse(meta.classes ?? "[]") as string[], tiles };
};

/** Scores of a held-out split (`model.heldout`'s output). */
export const heldoutScores = Stage.make({
  name: "model.scores",
  version: 1,
  inputs: { heldout: safetensors },
  output: json(Scores),
  run: ({ heldout }) =>
    Effect.try({
      try: () => {
        const { classes, tiles } = heldoutTiles(heldout);
        return scoreTiles(classes, tiles);
      },
      catch: (e) => new DatasetError({ file: "held-out scores", reason: e instanceof Error ? e.message : String(e) }),
    }),
});
