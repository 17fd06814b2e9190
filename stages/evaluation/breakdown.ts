/**
 * Where the PQ goes: a decomposition of the loss of panoptic quality over a set of images into
 * detection (DQ, precision, recall), segmentation of the matched nuclei (SQ), merges and splits of
 * touching nuclei, and type errors (a confusion matrix over the matched pairs).
 *
 * Inputs: per image, a true and a predicted instance map (row-major [H, W] Int32Array, 0 =
 * background, any non-negative ids) and optionally each nucleus's type. Output: counts pooled over
 * the images (summed), the metrics of the pooled counts, and counterfactual PQs.
 *
 * Matching is PQ's own (pq.ts): TP = the pairs with IoU > τ (Hungarian below τ = 0.5). FN = true
 * nuclei without a pair, FP = predicted nuclei without one. "P covers x % of T" means
 * |T ∩ P| ≥ x % of |T| (the comparisons are exact, on integer pixel counts).
 *
 * False negatives — each unmatched true nucleus T is, checked in this order:
 *   missed            less than 50 % of T's pixels lie in any predicted nucleus
 *   merged            else, with P the prediction covering most of T (lowest index on ties):
 *                     P also covers ≥ 50 % of at least one other true nucleus
 *   split             else, ≥ 2 predictions each cover ≥ 20 % of T
 *   poorly segmented  otherwise (covered, but no prediction with IoU > τ)
 * False positives — each unmatched prediction P is, checked in this order:
 *   spurious          less than 50 % of P's pixels lie on true foreground
 *   fragment          else, with T the true nucleus P overlaps most (lowest index on ties):
 *                     ≥ 2 predictions each cover ≥ 20 % of T (T is split)
 *   merge             else, P covers ≥ 50 % of ≥ 2 true nuclei
 *   poorly segmented  otherwise
 *
 * Pooled metrics use PQ's formulas on the summed counts (pq.ts `pqOfCounts`): DQ = TP / (TP +
 * ½FP + ½FN), SQ = ΣIoU / (TP + 1e-6), PQ = DQ·SQ; so one image pooled equals its own PQ.
 *
 * Counterfactual PQs are upper bounds of what fixing one category would buy, all else unchanged,
 * each at the current SQ (the fixed nuclei are assumed as well segmented as today's TPs):
 *   spuriousRemoved        DQ(TP, FP − spurious, FN) · SQ
 *   mergedFound            DQ(TP + merged, FP − merge, FN − merged) · SQ
 *   splitFound             DQ(TP + split, FP − fragment, FN − split) · SQ
 *   missedFound            DQ(TP + missed, FP, FN − missed) · SQ
 *   poorlySegmentedFound   DQ(TP + poor FN, FP − poor FP, FN − poor FN) · SQ
 *   perfectSQ              DQ · 1
 *
 * Types: the confusion matrix counts TP pairs by (true type, predicted type); per-type F1 is
 * HoVer-Net's formula (detection.ts `detectionScores`), applied once to the PQ pairs (FN and FP as
 * the unpaired nuclei) and once, as `evaluate folder` does, to the centroid pairing within 12 px.
 *
 * Common task: `imageBreakdown` per image pair, then `pooledBreakdown` over them.
 *
 * Gotcha: the categories are not exclusive causes — a merged pair of truths yields one FN
 * "merged" (the other truth may still be a TP, or another "merged" FN) and the prediction either
 * is a TP or an FP "merge"; counterfactuals are therefore not additive.
 */
import { Schema } from "effect";
import { type DetectionResult, detectionScores, emptyPairing, type Pairing } from "./detection.ts";
import { Metric } from "./instance_metrics.ts";
import { overlap } from "./overlap.ts";
import { nanMean } from "./pannuke.ts";
import { pqMatching, pqOfCounts } from "./pq.ts";

/** The categories of the unmatched true nuclei. */
export interface FnCategories {
  readonly missed: number;
  readonly merged: number;
  readonly split: number;
  readonly poorlySegmented: number;
}

/** The categories of the unmatched predicted nuclei. */
export interface FpCategories {
  readonly spurious: number;
  readonly fragment: number;
  readonly merge: number;
  readonly poorlySegmented: number;
}

/** The counts of one image pair. */
export interface ImageBreakdown {
  /** true and predicted nuclei */
  readonly truth: number;
  readonly pred: number;
  readonly tp: number;
  readonly fp: number;
  readonly fn: number;
  /** Σ IoU over the TP pairs */
  readonly sumIou: number;
  /** this image's PQ (NaN when both maps are empty), as `evaluate folder` reports it */
  readonly pq: number;
  readonly fnCategories: FnCategories;
  readonly fpCategories: FpCategories;
  /** [true type, pred type] of every TP pair and the types of the unmatched nuclei (empty without types) */
  readonly types: Pairing;
}

/** Instance id → type (0 = none). */
export type TypeOf = (id: number) => number;

export interface ImageBreakdownOptions {
  /** PQ IoU threshold τ (default 0.5) */
  readonly iou?: number;
  /** the type of each true / predicted nucleus; both are needed for the type counts */
  readonly truthType?: TypeOf | undefined;
  readonly predType?: TypeOf | undefined;
}

/** The TP/FP/FN counts, ΣIoU, error categories and type pairs of one image pair (maps of equal length). */
export const imageBreakdown = (
  truth: Int32Array,
  pred: Int32Array,
  options: ImageBreakdownOptions = {},
): ImageBreakdown => {
  const iou = options.iou ?? 0.5;
  const ov = overlap(truth, pred);
  const nT = ov.truth.ids.length, nP = ov.pred.ids.length;
  const tArea = ov.truth.areas, pArea = ov.pred.areas;
  const match = pqMatching(ov, iou);
  const tp = match.t.length, sumIou = match.iou.reduce((a, b) => a + b, 0);

  // one pass over the overlapping pairs (ascending true index, then pred index)
  const tCovered = new Float64Array(nT), tBest = new Int32Array(nT).fill(-1), tBestInter = new Float64Array(nT);
  const tParts = new Int32Array(nT); // predictions covering ≥ 20 % of T
  const pOnTruth = new Float64Array(nP), pBest = new Int32Array(nP).fill(-1), pBestInter = new Float64Array(nP);
  const pCovers = new Int32Array(nP); // true nuclei P covers ≥ 50 % of
  for (let k = 0; k < ov.pairs.inter.length; k++) {
    const t = ov.pairs.t[k] as number, p = ov.pairs.p[k] as number, inter = ov.pairs.inter[k] as number;
    const area = tArea[t] as number;
    tCovered[t] = (tCovered[t] as number) + inter;
    if (inter > (tBestInter[t] as number)) [tBest[t], tBestInter[t]] = [p, inter];
    if (5 * inter >= area) tParts[t] = (tParts[t] as number) + 1;
    pOnTruth[p] = (pOnTruth[p] as number) + inter;
    if (inter > (pBestInter[p] as number)) [pBest[p], pBestInter[p]] = [t, inter];
    if (2 * inter >= area) pCovers[p] = (pCovers[p] as number) + 1;
  }
  const tMatched = new Uint8Array(nT), pMatched = new Uint8Array(nP);
  for (let k = 0; k < tp; k++) {
    tMatched[match.t[k] as number] = 1;
    pMatched[match.p[k] as number] = 1;
  }

  const fnc = { missed: 0, merged: 0, split: 0, poorlySegmented: 0 };
  for (let t = 0; t < nT; t++) {
    if (tMatched[t]) continue;
    const area = tArea[t] as number, p = tBest[t] as number;
    if (2 * (tCovered[t] as number) < area) fnc.missed++;
    else if ((pCovers[p] as number) - (2 * (tBestInter[t] as number) >= area ? 1 : 0) >= 1) fnc.merged++;
    else if ((tParts[t] as number) >= 2) fnc.split++;
    else fnc.poorlySegmented++;
  }
  const fpc = { spurious: 0, fragment: 0, merge: 0, poorlySegmented: 0 };
  for (let p = 0; p < nP; p++) {
    if (pMatched[p]) continue;
    if (2 * (pOnTruth[p] as number) < (pArea[p] as number)) fpc.spurious++;
    else if ((tParts[pBest[p] as number] as number) >= 2) fpc.fragment++;
    else if ((pCovers[p] as number) >= 2) fpc.merge++;
    else fpc.poorlySegmented++;
  }

  const types = emptyPairing();
  const { truthType, predType } = options;
  if (truthType !== undefined && predType !== undefined) {
    const tType = Int32Array.from(ov.truth.ids, truthType), pType = Int32Array.from(ov.pred.ids, predType);
    for (let k = 0; k < tp; k++) {
      types.pairs.push([tType[match.t[k] as number] as number, pType[match.p[k] as number] as number]);
    }
    tType.forEach((c, t) => {
      types.trueTypes.add(c);
      if (!tMatched[t]) types.unpairedTrue.push(c);
    });
    pType.forEach((c, p) => {
      if (!pMatched[p]) types.unpairedPred.push(c);
    });
  }
  const pq = nT + nP === 0 ? NaN : pqOfCounts(tp, nP - tp, nT - tp, sumIou).pq;
  return {
    truth: nT,
    pred: nP,
    tp,
    fp: nP - tp,
    fn: nT - tp,
    sumIou,
    pq,
    fnCategories: fnc,
    fpCategories: fpc,
    types,
  };
};

const Share = Schema.Struct({
  count: Schema.Number,
  /** count / FN (or / FP); null when there are none */
  share: Metric,
});

const TypeF1 = Schema.Struct({
  /** detection F1 of this pairing */
  f1: Metric,
  /** fraction of pairs with equal types */
  accuracy: Metric,
  /** per-type F1 (HoVer-Net's formula), keyed by type */
  typeF1: Schema.Record(Schema.String, Metric),
  /** mean of typeF1 over the types > 0 */
  clsF1: Metric,
});

/** The pooled breakdown of a set of images (the JSON of `evaluate breakdown`; NaN as null). */
export const Breakdown = Schema.Struct({
  images: Schema.Number,
  iou: Schema.Number,
  /** mean of the per-image PQs (= `evaluate folder`'s PQ) */
  meanPQ: Metric,
  /** metrics of the counts summed over images */
  pooled: Schema.Struct({
    truth: Schema.Number,
    pred: Schema.Number,
    tp: Schema.Number,
    fp: Schema.Number,
    fn: Schema.Number,
    precision: Metric,
    recall: Metric,
    dq: Metric,
    sq: Metric,
    pq: Metric,
  }),
  falseNegatives: Schema.Struct({ missed: Share, merged: Share, split: Share, poorlySegmented: Share }),
  falsePositives: Schema.Struct({ spurious: Share, fragment: Share, merge: Share, poorlySegmented: Share }),
  /** counterfactual upper bounds of the pooled PQ, one category fixed at a time (module header) */
  counterfactualPQ: Schema.Struct({
    spuriousRemoved: Metric,
    mergedFound: Metric,
    splitFound: Metric,
    missedFound: Metric,
    poorlySegmentedFound: Metric,
    perfectSQ: Metric,
  }),
  /** null when a side has no class maps */
  types: Schema.NullOr(Schema.Struct({
    /** the types seen on either side, ascending, and their names */
    types: Schema.Array(Schema.Number),
    names: Schema.Array(Schema.String),
    /** confusion[i][j]: TP pairs of true type types[i] and predicted type types[j] */
    confusion: Schema.Array(Schema.Array(Schema.Number)),
    /** FN per true type and FP per predicted type, indexed like `types` */
    unmatchedTrue: Schema.Array(Schema.Number),
    unmatchedPred: Schema.Array(Schema.Number),
    /** HoVer-Net's type scores on the PQ pairs */
    pqPairs: TypeF1,
    /** HoVer-Net's type scores on the centroid pairing (≤ 12 px), as `evaluate folder` reports them */
    centroidPairs: TypeF1,
  })),
  perImage: Schema.Array(Schema.Struct({
    name: Schema.String,
    pq: Metric,
    truth: Schema.Number,
    pred: Schema.Number,
    tp: Schema.Number,
    fp: Schema.Number,
    fn: Schema.Number,
    missed: Schema.Number,
    merged: Schema.Number,
    split: Schema.Number,
    poorlySegmentedFN: Schema.Number,
    spurious: Schema.Number,
    fragment: Schema.Number,
    merge: Schema.Number,
    poorlySegmentedFP: Schema.Number,
  })),
});
export type Breakdown = typeof Breakdown.Type;

export interface PooledOptions {
  readonly iou?: number;
  /** the centroid pairing of the same images (detection.ts `pairImage`); with types, scored as `evaluate folder` */
  readonly centroids?: Pairing | undefined;
  /** whether the type tables are wanted: some image had types on both sides (as `evaluate folder` decides) */
  readonly typed?: boolean;
  /** names of classes 0.. (dataset.json); type k ≥ 1 is named `classNames[k − 1]`, type 0 "none" */
  readonly classNames?: ReadonlyArray<string> | undefined;
}

/** DQ of counts (NaN when all are zero). */
const dqOf = (tp: number, fp: number, fn: number): number => pqOfCounts(tp, fp, fn, 0).dq;

const typeScores = (d: DetectionResult): typeof TypeF1.Type => ({
  f1: d.f1,
  accuracy: d.accuracy,
  typeF1: Object.fromEntries([...d.typeF1].map(([c, v]) => [String(c), v])),
  clsF1: nanMean([...d.typeF1].filter(([c]) => c > 0).map(([, v]) => v)),
});

/** Sums image breakdowns and derives the pooled metrics, shares, counterfactuals and type tables. */
export const pooledBreakdown = (
  images: ReadonlyArray<{ readonly name: string; readonly breakdown: ImageBreakdown }>,
  options: PooledOptions = {},
): Breakdown => {
  const sum = (f: (b: ImageBreakdown) => number) => images.reduce((s, i) => s + f(i.breakdown), 0);
  const truth = sum((b) => b.truth), pred = sum((b) => b.pred);
  const tp = sum((b) => b.tp), fp = sum((b) => b.fp), fn = sum((b) => b.fn);
  const { pq, dq, sq } = pqOfCounts(tp, fp, fn, sum((b) => b.sumIou));
  const fnc = {
    missed: sum((b) => b.fnCategories.missed),
    merged: sum((b) => b.fnCategories.merged),
    split: sum((b) => b.fnCategories.split),
    poorlySegmented: sum((b) => b.fnCategories.poorlySegmented),
  };
  const fpc = {
    spurious: sum((b) => b.fpCategories.spurious),
    fragment: sum((b) => b.fpCategories.fragment),
    merge: sum((b) => b.fpCategories.merge),
    poorlySegmented: sum((b) => b.fpCategories.poorlySegmented),
  };
  const ratio = (a: number, b: number) => (b === 0 ? NaN : a / b);
  const share = <K extends string>(counts: Record<K, number>, total: number) =>
    Object.fromEntries(
      Object.entries<number>(counts).map(([k, c]) => [k, { count: c, share: ratio(c, total) }]),
    ) as Record<K, { count: number; share: number }>;
  const found = (k: number, removed: number) => dqOf(tp + k, fp - removed, fn - k) * sq;
  return {
    images: images.length,
    iou: options.iou ?? 0.5,
    meanPQ: sum((b) => b.pq) / images.length,
    pooled: { truth, pred, tp, fp, fn, precision: ratio(tp, tp + fp), recall: ratio(tp, tp + fn), dq, sq, pq },
    falseNegatives: share(fnc, fn),
    falsePositives: share(fpc, fp),
    counterfactualPQ: {
      spuriousRemoved: found(0, fpc.spurious),
      mergedFound: found(fnc.merged, fpc.merge),
      splitFound: found(fnc.split, fpc.fragment),
      missedFound: found(fnc.missed, 0),
      poorlySegmentedFound: found(fnc.poorlySegmented, fpc.poorlySegmented),
      perfectSQ: dq,
    },
    types: options.typed ? typeTables(images.map((i) => i.breakdown.types), options) : null,
    perImage: images.map(({ name, breakdown: b }) => ({
      name,
      pq: b.pq,
      truth: b.truth,
      pred: b.pred,
      tp: b.tp,
      fp: b.fp,
      fn: b.fn,
      missed: b.fnCategories.missed,
      merged: b.fnCategories.merged,
      split: b.fnCategories.split,
      poorlySegmentedFN: b.fnCategories.poorlySegmented,
      spurious: b.fpCategories.spurious,
      fragment: b.fpCategories.fragment,
      merge: b.fpCategories.merge,
      poorlySegmentedFP: b.fpCategories.poorlySegmented,
    })),
  };
};

/** The confusion matrix and type scores of the pooled PQ pairs (and of the centroid pairing, if given). */
const typeTables = (perImage: ReadonlyArray<Pairing>, options: PooledOptions): NonNullable<Breakdown["types"]> => {
  const pooled = emptyPairing();
  for (const p of perImage) {
    pooled.pairs.push(...p.pairs);
    pooled.unpairedTrue.push(...p.unpairedTrue);
    pooled.unpairedPred.push(...p.unpairedPred);
    p.trueTypes.forEach((c) => pooled.trueTypes.add(c));
  }
  const types = [
    ...new Set([...pooled.pairs.flat(), ...pooled.unpairedTrue, ...pooled.unpairedPred]),
  ].sort((a, b) => a - b);
  const index = new Map(types.map((c, i) => [c, i]));
  const confusion = types.map(() => new Array<number>(types.length).fill(0));
  for (const [t, p] of pooled.pairs) {
    const row = confusion[index.get(t) as number] as number[], j = index.get(p) as number;
    row[j] = (row[j] as number) + 1;
  }
  const tally = (xs: ReadonlyArray<number>) => {
    const out = new Array<number>(types.length).fill(0);
    for (const c of xs) out[index.get(c) as number] = (out[index.get(c) as number] as number) + 1;
    return out;
  };
  const names = options.classNames;
  const centroid = options.centroids ?? emptyPairing();
  return {
    types,
    names: types.map((c) => names === undefined ? String(c) : c === 0 ? "none" : names[c - 1] ?? String(c)),
    confusion,
    unmatchedTrue: tally(pooled.unpairedTrue),
    unmatchedPred: tally(pooled.unpairedPred),
    pqPairs: typeScores(detectionScores(pooled)),
    centroidPairs: typeScores(detectionScores(centroid)),
  };
};
