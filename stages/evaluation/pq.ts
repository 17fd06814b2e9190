/**
 * Panoptic quality with the HoVer-Net conventions (../shared/design/specs/metrics.md, "PQ"):
 * τ ≥ 0.5 → pairs are the (unique) overlaps with IoU > τ; τ < 0.5 → Hungarian maximising ΣIoU,
 * keeping pairs with IoU > τ. SQ divides by TP + 1e-6. One side empty → 0; both empty → NaN.
 */
import { linearSumAssignment } from "./hungarian.ts";
import type { Overlap } from "./overlap.ts";

export interface PqResult {
  readonly pq: number;
  readonly dq: number;
  readonly sq: number;
  readonly tp: number;
  readonly fp: number;
  readonly fn: number;
}

/** The matched (TP) pairs of PQ: true index `t[k]` with pred index `p[k]` at IoU `iou[k]` (> τ). */
export interface PqMatching {
  readonly t: Int32Array;
  readonly p: Int32Array;
  readonly iou: Float64Array;
}

/** IoU of overlap pair k. */
export const pairIou = (ov: Overlap, k: number): number => {
  const inter = ov.pairs.inter[k] as number;
  return inter /
    ((ov.truth.areas[ov.pairs.t[k] as number] as number) + (ov.pred.areas[ov.pairs.p[k] as number] as number) - inter);
};

/** The TP pairs of PQ at IoU threshold `iou` (overlap order for τ ≥ 0.5, assignment order below). */
export const pqMatching = (ov: Overlap, iou = 0.5): PqMatching => {
  const nT = ov.truth.ids.length, nP = ov.pred.ids.length;
  const t: number[] = [], p: number[] = [], v: number[] = [];
  if (iou >= 0.5) {
    for (let k = 0; k < ov.pairs.inter.length; k++) {
      const x = pairIou(ov, k);
      if (x <= iou) continue;
      t.push(ov.pairs.t[k] as number);
      p.push(ov.pairs.p[k] as number);
      v.push(x);
    }
  } else if (nT > 0 && nP > 0) {
    // HoVer-Net: Hungarian over the full [true × pred] IoU matrix, maximising the total IoU
    const m = new Float64Array(nT * nP);
    for (let k = 0; k < ov.pairs.inter.length; k++) {
      m[(ov.pairs.t[k] as number) * nP + (ov.pairs.p[k] as number)] = pairIou(ov, k);
    }
    const { rows, cols } = linearSumAssignment(m, nT, nP, true);
    for (let k = 0; k < rows.length; k++) {
      const i = rows[k] as number, j = cols[k] as number, x = m[i * nP + j] as number;
      if (x <= iou) continue;
      t.push(i);
      p.push(j);
      v.push(x);
    }
  }
  return { t: Int32Array.from(t), p: Int32Array.from(p), iou: Float64Array.from(v) };
};

/** PQ, DQ, SQ from counts and the summed IoU of the TPs (all NaN when there is nothing at all). */
export const pqOfCounts = (tp: number, fp: number, fn: number, sumIou: number): PqResult => {
  if (tp + fp + fn === 0) return { pq: NaN, dq: NaN, sq: NaN, tp, fp, fn };
  const dq = tp / (tp + 0.5 * fp + 0.5 * fn);
  const sq = sumIou / (tp + 1e-6);
  return { pq: dq * sq, dq, sq, tp, fp, fn };
};

/** PQ, DQ, SQ and the TP/FP/FN counts at IoU threshold `iou`. */
export const panopticQuality = (ov: Overlap, iou = 0.5): PqResult => {
  const nT = ov.truth.ids.length, nP = ov.pred.ids.length;
  if (nT === 0 && nP === 0) return pqOfCounts(0, 0, 0, 0);
  const matched = pqMatching(ov, iou).iou;
  const tp = matched.length;
  return pqOfCounts(tp, nP - tp, nT - tp, matched.reduce((a, b) => a + b, 0));
};
