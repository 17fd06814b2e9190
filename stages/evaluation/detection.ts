/**
 * Detection and per-type classification F1 with HoVer-Net's `run_nuclei_type_stat` conventions
 * (../shared/design/specs/metrics.md, "Detection F1 and per-type F1"): float32 centroids, a dummy
 * point (0,0) of type 0 on an empty side, Hungarian minimising the total distance over all points,
 * pairs within 12 px (inclusive), counts pooled over images, per-type F1 weights [2,2,1,1].
 */
import { linearSumAssignment } from "./hungarian.ts";
import { labelTable } from "./overlap.ts";

/** A nucleus centre (x = column, y = row) and its type (−1 = unknown, in non-exhaustive mode). */
export interface Point {
  readonly x: number;
  readonly y: number;
  readonly type: number;
}

/** The pooled pairing of a set of images, before any metric is taken. */
export interface Pairing {
  /** [true type, pred type] of every pair */
  readonly pairs: Array<readonly [number, number]>;
  readonly unpairedTrue: number[];
  readonly unpairedPred: number[];
  /** every true type seen (dummies included) */
  readonly trueTypes: Set<number>;
}

export const emptyPairing = (): Pairing => ({ pairs: [], unpairedTrue: [], unpairedPred: [], trueTypes: new Set() });

const DUMMY: ReadonlyArray<Point> = [{ x: 0, y: 0, type: 0 }];

/** Pairs one image's points and adds them to `into` (float32 coordinates, dummy rule, Hungarian). */
export const pairImage = (
  truth: ReadonlyArray<Point>,
  pred: ReadonlyArray<Point>,
  into: Pairing,
  radius = 12,
): void => {
  const t = truth.length === 0 ? DUMMY : truth, p = pred.length === 0 ? DUMMY : pred;
  const tx = Float64Array.from(t, (q) => Math.fround(q.x)), ty = Float64Array.from(t, (q) => Math.fround(q.y));
  const px = Float64Array.from(p, (q) => Math.fround(q.x)), py = Float64Array.from(p, (q) => Math.fround(q.y));
  const d = new Float64Array(t.length * p.length);
  for (let i = 0; i < t.length; i++) {
    for (let j = 0; j < p.length; j++) {
      const dx = (tx[i] as number) - (px[j] as number), dy = (ty[i] as number) - (py[j] as number);
      d[i * p.length + j] = Math.sqrt(dx * dx + dy * dy);
    }
  }
  const { rows, cols } = linearSumAssignment(d, t.length, p.length);
  const tPaired = new Uint8Array(t.length), pPaired = new Uint8Array(p.length);
  for (let k = 0; k < rows.length; k++) {
    const i = rows[k] as number, j = cols[k] as number;
    if ((d[i * p.length + j] as number) > radius) continue;
    tPaired[i] = 1;
    pPaired[j] = 1;
    into.pairs.push([(t[i] as Point).type, (p[j] as Point).type]);
  }
  t.forEach((q, i) => {
    into.trueTypes.add(q.type);
    if (!tPaired[i]) into.unpairedTrue.push(q.type);
  });
  p.forEach((q, j) => {
    if (!pPaired[j]) into.unpairedPred.push(q.type);
  });
};

export interface DetectionResult {
  readonly f1: number;
  readonly precision: number;
  readonly recall: number;
  /** fraction of pairs with the right type; NaN without pairs */
  readonly accuracy: number;
  readonly tp: number;
  readonly fp: number;
  readonly fn: number;
  /** F1 of each scored type, keyed by the type number */
  readonly typeF1: ReadonlyMap<number, number>;
}

/**
 * Detection and per-type F1 of a pooled pairing. `types`: the types to score (default: the sorted
 * true types seen, dummy 0 included). Non-exhaustive mode: true type −1 is "unknown".
 */
export const detectionScores = (
  pairing: Pairing,
  options: { readonly types?: ReadonlyArray<number>; readonly exhaustive?: boolean } = {},
): DetectionResult => {
  const exhaustive = options.exhaustive ?? true;
  const tp = pairing.pairs.length, fp = pairing.unpairedPred.length, fn = pairing.unpairedTrue.length;
  const f1 = tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  const scoredPairs = exhaustive ? pairing.pairs : pairing.pairs.filter(([t]) => t !== -1);
  const accuracy = scoredPairs.length === 0 ? NaN : scoredPairs.filter(([t, p]) => t === p).length / scoredPairs.length;
  const types = options.types ?? [...pairing.trueTypes].sort((a, b) => a - b);
  const typeF1 = new Map<number, number>();
  for (const c of types) {
    let tpc = 0, fpc = 0, fnc = 0, ignored = 0;
    for (const [t, p] of pairing.pairs) {
      if (t === c && p === c) tpc++;
      else if (p === c) {
        fpc++;
        if (t === -1) ignored++;
      } else if (t === c) fnc++;
    }
    if (!exhaustive) fpc -= ignored;
    const fpd = pairing.unpairedPred.filter((x) => x === c).length,
      fnd = pairing.unpairedTrue.filter((x) => x === c).length;
    typeF1.set(c, (2 * tpc) / (2 * tpc + 2 * fpc + 2 * fnc + fpd + fnd));
  }
  const ratio = (a: number, b: number) => (b === 0 ? NaN : a / b);
  return { f1, precision: ratio(tp, tp + fp), recall: ratio(tp, tp + fn), accuracy, tp, fp, fn, typeF1 };
};

/** Centroids (pixel centre of mass) of every instance of a map, with the type given by `typeOf(id)`. */
export const centroids = (map: Int32Array, width: number, typeOf: (id: number) => number): Point[] => {
  const table = labelTable(map, width);
  return Array.from(table.ids, (id, k) => {
    const area = table.areas[k] as number;
    return { x: (table.sumX[k] as number) / area, y: (table.sumY[k] as number) / area, type: typeOf(id) };
  });
};
