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

/** IoU of overlap pair k. */
export const pairIou = (ov: Overlap, k: number): number => {
  const inter = ov.pairs.inter[k] as number;
  return inter /
    ((ov.truth.areas[ov.pairs.t[k] as number] as number) + (ov.pred.areas[ov.pairs.p[k] as number] as number) - inter);
};

/** PQ, DQ, SQ and the TP/FP/FN counts at IoU threshold `iou`. */
export const panopticQuality = (ov: Overlap, iou = 0.5): PqResult => {
  const nT = ov.truth.ids.length, nP = ov.pred.ids.length;
  if (nT === 0 && nP === 0) return { pq: NaN, dq: NaN, sq: NaN, tp: 0, fp: 0, fn: 0 };
  const matched: number[] = []; // IoUs of the kept pairs
  if (iou >= 0.5) {
    for (let k = 0; k < ov.pairs.inter.length; k++) {
      const v = pairIou(ov, k);
      if (v > iou) matched.push(v);
    }
  } else if (nT > 0 && nP > 0) {
    // HoVer-Net: Hungarian over the full [true × pred] IoU matrix, maximising the total IoU
    const m = new Float64Array(nT * nP);
    for (let k = 0; k < ov.pairs.inter.length; k++) {
      m[(ov.pairs.t[k] as number) * nP + (ov.pairs.p[k] as number)] = pairIou(ov, k);
    }
    const { rows, cols } = linearSumAssignment(m, nT, nP, true);
    for (let k = 0; k < rows.length; k++) {
      const v = m[(rows[k] as number) * nP + (cols[k] as number)] as number;
      if (v > iou) matched.push(v);
    }
  }
  const tp = matched.length, fp = nP - tp, fn = nT - tp;
  const dq = tp / (tp + 0.5 * fp + 0.5 * fn);
  const sq = matched.reduce((a, b) => a + b, 0) / (tp + 1e-6);
  return { pq: dq * sq, dq, sq, tp, fp, fn };
};
