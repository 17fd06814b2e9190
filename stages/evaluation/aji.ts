/**
 * Aggregated Jaccard Index (MoNuSeg) and AJI+ (HoVer-Net), from the overlap table
 * (../shared/design/specs/metrics.md, "AJI", "AJI+"). s(g,p) = I / (U + 1e-6) for overlapping
 * pairs, 0 otherwise.
 */
import { linearSumAssignment } from "./hungarian.ts";
import type { Overlap } from "./overlap.ts";

const unionOf = (ov: Overlap, k: number): number =>
  (ov.truth.areas[ov.pairs.t[k] as number] as number) + (ov.pred.areas[ov.pairs.p[k] as number] as number) -
  (ov.pairs.inter[k] as number);

const sum = (xs: Float64Array): number => xs.reduce((a, b) => a + b, 0);

/**
 * AJI: each true instance takes the pred with the highest s (lowest pred id on ties); one pred may
 * serve several truths (its union is counted each time); preds never chosen add their areas.
 */
export const aji = (ov: Overlap): number => {
  const nT = ov.truth.ids.length, nP = ov.pred.ids.length;
  if (nT === 0 && nP === 0) return NaN;
  if (nT === 0 || nP === 0) return 0;
  const bestS = new Float64Array(nT), best = new Int32Array(nT).fill(-1);
  // pairs are in ascending (t, p) order, so a strictly greater s keeps the lowest pred id on ties
  for (let k = 0; k < ov.pairs.inter.length; k++) {
    const t = ov.pairs.t[k] as number, s = (ov.pairs.inter[k] as number) / (unionOf(ov, k) + 1e-6);
    if (s > (bestS[t] as number)) [bestS[t], best[t]] = [s, k];
  }
  let inter = 0, union = 0;
  const chosen = new Uint8Array(nP);
  for (let t = 0; t < nT; t++) {
    const k = best[t] as number;
    if (k < 0) {
      union += ov.truth.areas[t] as number;
      continue;
    }
    inter += ov.pairs.inter[k] as number;
    union += unionOf(ov, k);
    chosen[ov.pairs.p[k] as number] = 1;
  }
  for (let p = 0; p < nP; p++) if (!chosen[p]) union += ov.pred.areas[p] as number;
  return inter / union;
};

/** AJI+: one-to-one pairs by Hungarian maximising Σs; unassigned truths and preds add their areas. */
export const ajiPlus = (ov: Overlap): number => {
  const nT = ov.truth.ids.length, nP = ov.pred.ids.length;
  if (nT === 0 && nP === 0) return NaN;
  if (nT === 0 || nP === 0) return 0;
  const s = new Float64Array(nT * nP), k4 = new Int32Array(nT * nP).fill(-1);
  for (let k = 0; k < ov.pairs.inter.length; k++) {
    const cell = (ov.pairs.t[k] as number) * nP + (ov.pairs.p[k] as number);
    s[cell] = (ov.pairs.inter[k] as number) / (unionOf(ov, k) + 1e-6);
    k4[cell] = k;
  }
  const { rows, cols } = linearSumAssignment(s, nT, nP, true);
  const tUsed = new Uint8Array(nT), pUsed = new Uint8Array(nP);
  let inter = 0, union = 0;
  for (let i = 0; i < rows.length; i++) {
    const t = rows[i] as number, p = cols[i] as number, cell = t * nP + p;
    if (!((s[cell] as number) > 0)) continue;
    const k = k4[cell] as number;
    inter += ov.pairs.inter[k] as number;
    union += unionOf(ov, k);
    tUsed[t] = 1;
    pUsed[p] = 1;
  }
  for (let t = 0; t < nT; t++) if (!tUsed[t]) union += ov.truth.areas[t] as number;
  for (let p = 0; p < nP; p++) if (!pUsed[p]) union += ov.pred.areas[p] as number;
  return inter / union;
};

/** Dice on foreground: 2|T∩P| / (|T| + |P|); both empty → NaN. */
export const dice = (ov: Overlap): number => {
  const t = sum(ov.truth.areas), p = sum(ov.pred.areas), i = sum(ov.pairs.inter);
  return t + p === 0 ? NaN : (2 * i) / (t + p);
};
