/**
 * Supervised entropy binning of one feature (features spec §B3), its 5-fold stability check (§B4), and the
 * equal-count `quantile` cut finder of the paper's ablation row 3.
 *
 * Inputs: a `Sample` — the present values of one feature sorted by (value, row index), with each row's class
 * index and fold. Outputs: ascending thresholds; the stability record of §B6 (`thresholds_full`, the per-fold
 * fits, IQR, τ, the vote per candidate, the kept thresholds).
 *
 * Gotchas:
 * - Every float is computed in the order the spec writes it (gain = H − (n_L/n)·H_L − (n_R/n)·H_R, MDLP's Δ), so
 *   ties are reproducible; ties are then broken with `gain_eps` (best cut → smallest threshold; best leaf →
 *   leftmost), never by float noise.
 * - Only the *best* cut of a node is tested for acceptance; if it fails, the node is closed.
 * - `min_leaf` null means the default max(5, ⌈n/100⌉) with n = the samples of *that* fit, so a fold fit (80 %)
 *   may use a smaller value than the full fit.
 * - Folds depend only on the labels and the seed (a hash, not an RNG), so any language reproduces them.
 */
import { median } from "./selection.ts";

/** Split acceptance of §B3: Fayyad–Irani MDLP (default) or any positive gain. */
export type Criterion = "mdlp" | "gain";

/** The §B3 parameters of one entropy fit. */
export interface EntropyParams {
  readonly max_thresholds: number;
  readonly max_depth: number;
  readonly criterion: Criterion;
  /** null: max(5, ⌈n/100⌉) for the n of each fit */
  readonly min_leaf: number | null;
  readonly gain_eps: number;
}

/** The present values of one feature, sorted by (value, row index); `y` class indices, `fold` fold numbers. */
export interface Sample {
  readonly x: Float64Array;
  readonly y: Int32Array;
  readonly fold: Int32Array;
}

/** The default `min_leaf` for a fit of n samples: max(5, ⌈n/100⌉), the ceiling as an integer division. */
export const defaultMinLeaf = (n: number): number => Math.max(5, Math.floor((n + 99) / 100));

/** Entropy in bits of class counts: −Σ p·log2 p over the classes with n_c > 0, in class order. */
export const entropy = (counts: ArrayLike<number>, n: number): number => {
  let h = 0;
  for (let c = 0; c < counts.length; c++) {
    const k = counts[c] as number;
    if (k > 0) {
      const p = k / n;
      h -= p * Math.log2(p);
    }
  }
  return h;
};

const present = (counts: ArrayLike<number>): number => {
  let k = 0;
  for (let c = 0; c < counts.length; c++) if ((counts[c] as number) > 0) k++;
  return k;
};

/** One candidate cut of a node: between node positions i−1 and i, threshold = the midpoint. */
export interface CandidateCut {
  /** node-relative position of the first value on the right */
  readonly i: number;
  readonly threshold: number;
  readonly gain: number;
}

/**
 * All candidate cuts of the node `[lo, hi)` of a sorted sample with their gains: x[i−1] < x[i] strictly and at
 * least `minLeaf` values on each side.
 */
export const candidateCuts = (
  x: Float64Array,
  y: Int32Array,
  lo: number,
  hi: number,
  nClasses: number,
  minLeaf: number,
): CandidateCut[] => {
  const n = hi - lo;
  const node = new Float64Array(nClasses), left = new Float64Array(nClasses), right = new Float64Array(nClasses);
  for (let p = lo; p < hi; p++) (node[y[p] as number] as number)++;
  const h = entropy(node, n);
  const cuts: CandidateCut[] = [];
  for (let i = 1; i < n; i++) {
    (left[y[lo + i - 1] as number] as number)++;
    const a = x[lo + i - 1] as number, b = x[lo + i] as number;
    if (!(a < b) || i < minLeaf || n - i < minLeaf) continue;
    for (let c = 0; c < nClasses; c++) right[c] = (node[c] as number) - (left[c] as number);
    const gain = h - (i / n) * entropy(left, i) - ((n - i) / n) * entropy(right, n - i);
    cuts.push({ i, threshold: (a + b) / 2, gain });
  }
  return cuts;
};

/** A node's best cut with everything the acceptance test used (the numbers of the §B7 hand check). */
export interface BestCut extends CandidateCut {
  readonly h: number;
  readonly hLeft: number;
  readonly hRight: number;
  /** classes present in node, left, right */
  readonly k: number;
  readonly kLeft: number;
  readonly kRight: number;
  /** MDLP: Δ and the bound (log2(n − 1) + Δ) / n the gain must exceed */
  readonly delta: number;
  readonly bound: number;
  readonly accepted: boolean;
}

/** The best cut of `[lo, hi)` (ties → smallest threshold) and whether `criterion` accepts it; null: no candidate. */
export const bestCut = (
  x: Float64Array,
  y: Int32Array,
  lo: number,
  hi: number,
  nClasses: number,
  minLeaf: number,
  criterion: Criterion,
  gainEps: number,
): BestCut | null => {
  let best: CandidateCut | undefined;
  for (const cut of candidateCuts(x, y, lo, hi, nClasses, minLeaf)) {
    if (best === undefined || cut.gain > best.gain + gainEps) best = cut;
  }
  if (best === undefined) return null;
  const n = hi - lo;
  const node = new Float64Array(nClasses), left = new Float64Array(nClasses), right = new Float64Array(nClasses);
  for (let p = lo; p < hi; p++) {
    const c = y[p] as number;
    (node[c] as number)++;
    if (p < lo + best.i) (left[c] as number)++;
    else (right[c] as number)++;
  }
  const h = entropy(node, n), hLeft = entropy(left, best.i), hRight = entropy(right, n - best.i);
  const k = present(node), kLeft = present(left), kRight = present(right);
  // Fayyad & Irani (1993), MDL stopping rule
  const delta = Math.log2(3 ** k - 2) - (k * h - kLeft * hLeft - kRight * hRight);
  const bound = (Math.log2(n - 1) + delta) / n;
  const accepted = best.gain > gainEps && (criterion === "gain" || best.gain > bound);
  return { ...best, h, hLeft, hRight, k, kLeft, kRight, delta, bound, accepted };
};

interface Leaf {
  readonly lo: number;
  readonly hi: number;
  readonly depth: number;
  /** the accepted best cut, or null: the leaf is closed */
  readonly cut: BestCut | null;
}

/**
 * §B3 best-first entropy binning of a sorted sample: repeatedly split the open leaf with the largest
 * (n_node / N)·gain (ties → leftmost) until `max_thresholds` thresholds exist or no leaf is acceptable.
 * Returns the thresholds ascending.
 */
export const entropyThresholds = (
  x: Float64Array,
  y: Int32Array,
  nClasses: number,
  params: EntropyParams,
): number[] => {
  const N = x.length;
  const minLeaf = params.min_leaf ?? defaultMinLeaf(N);
  const leaf = (lo: number, hi: number, depth: number): Leaf => {
    const cut = depth >= params.max_depth
      ? null
      : bestCut(x, y, lo, hi, nClasses, minLeaf, params.criterion, params.gain_eps);
    return { lo, hi, depth, cut: cut !== null && cut.accepted ? cut : null };
  };
  const leaves: Leaf[] = [leaf(0, N, 0)]; // left to right
  const thresholds: number[] = [];
  while (thresholds.length < params.max_thresholds) {
    let pick = -1, best = -Infinity, cut: BestCut | null = null;
    for (const [j, l] of leaves.entries()) {
      if (l.cut === null) continue;
      const priority = ((l.hi - l.lo) / N) * l.cut.gain; // the drop of H(Y | bins) this split buys
      if (pick < 0 || priority > best + params.gain_eps) [pick, best, cut] = [j, priority, l.cut];
    }
    if (cut === null) break;
    const { lo, hi, depth } = leaves[pick] as Leaf;
    thresholds.push(cut.threshold);
    leaves.splice(pick, 1, leaf(lo, lo + cut.i, depth + 1), leaf(lo + cut.i, hi, depth + 1));
  }
  return thresholds.sort((a, b) => a - b);
};

/** §B4 quantile of sorted values: linear interpolation at h = (n−1)·p. Needs n ≥ 1. */
export const quantile = (sorted: ArrayLike<number>, p: number): number => {
  const n = sorted.length;
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  if (lo + 1 >= n) return sorted[n - 1] as number;
  const a = sorted[lo] as number;
  return a + (h - lo) * ((sorted[lo + 1] as number) - a);
};

/**
 * The ablation's equal-count cut finder: thresholds q(k/K), k = 1…K−1, of the sorted values (K = `intervals`),
 * with the §B4 quantile rule; repeated values (heavy ties) are kept once. Labels are not used.
 */
export const quantileThresholds = (sorted: Float64Array, intervals: number): number[] => {
  const out: number[] = [];
  if (sorted.length === 0) return out;
  for (let k = 1; k < intervals; k++) {
    const q = quantile(sorted, k / intervals);
    if (out.length === 0 || q !== out[out.length - 1]) out.push(q);
  }
  return out;
};

/** §B4 mixing hash (the "lowbias32" constants); check values 0 → 0, 1 → 1753845952. */
export const hash32 = (v: number): number => {
  let x = v >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
};

/**
 * §B4 stratified fold of every labelled row: within each class (in class order) rows are ordered by
 * (hash32(base + i), i) and dealt round-robin, continuing where the previous class stopped, so classes and
 * folds differ in size by at most one. `label[i]` = class index of row i.
 */
export const assignFolds = (label: Int32Array, nClasses: number, folds: number, seed: number): Int32Array => {
  const base = Math.imul(seed, 0x9e3779b9) >>> 0;
  const key = Float64Array.from(label, (_, i) => hash32((base + i) >>> 0));
  const byClass: number[][] = Array.from({ length: nClasses }, () => []);
  for (let i = 0; i < label.length; i++) (byClass[label[i] as number] as number[]).push(i);
  const out = new Int32Array(label.length);
  let offset = 0;
  for (const members of byClass) {
    members.sort((i, j) => (key[i] as number) - (key[j] as number) || i - j);
    for (const [j, i] of members.entries()) out[i] = (j + offset) % folds;
    offset += members.length;
  }
  return out;
};

/** The present values of a column (NaN = missing) sorted by (value, row index), with their classes and folds. */
export const sortedSample = (column: Float64Array, label: Int32Array, fold: Int32Array): Sample => {
  const idx: number[] = [];
  for (let i = 0; i < column.length; i++) if (!Number.isNaN(column[i] as number)) idx.push(i);
  idx.sort((i, j) => (column[i] as number) - (column[j] as number) || i - j);
  return {
    x: Float64Array.from(idx, (i) => column[i] as number),
    y: Int32Array.from(idx, (i) => label[i] as number),
    fold: Int32Array.from(idx, (i) => fold[i] as number),
  };
};

/** The rows of a sample whose fold is not `f` (the training part of fold f); stays sorted. */
export const trainingPart = (s: Sample, f: number): Sample => {
  const keep: number[] = [];
  for (let p = 0; p < s.x.length; p++) if (s.fold[p] !== f) keep.push(p);
  return {
    x: Float64Array.from(keep, (p) => s.x[p] as number),
    y: Int32Array.from(keep, (p) => s.y[p] as number),
    fold: Int32Array.from(keep, (p) => s.fold[p] as number),
  };
};

/** ⌈v⌉ of a product like min_support·K, ignoring binary rounding (0.7·10 = 7.000000000000001 → 7, not 8). */
export const ceilCount = (v: number): number => {
  const r = Math.round(v);
  return Math.abs(v - r) <= 1e-9 * Math.max(1, Math.abs(v)) ? r : Math.ceil(v);
};

/** One full-data threshold and its fold vote. `matched[f]`: fold f's nearest threshold when it supports t, else null. */
export interface StabilityCandidate {
  readonly threshold: number;
  readonly matched: (number | null)[];
  readonly support: number;
  readonly kept: boolean;
  readonly median_matched: number | null;
}

/** The §B4 record of one feature. `iqr` and `tau` are null only when the feature has no present value. */
export interface Stability {
  readonly thresholds_full: number[];
  readonly thresholds_folds: number[][];
  readonly iqr: number | null;
  readonly tau: number | null;
  readonly min_folds: number;
  readonly candidates: StabilityCandidate[];
  readonly thresholds: number[];
}

/**
 * §B4: fit on all values and on each fold's training part with `fit`, then keep the full-data thresholds that
 * recur (nearest fold threshold within τ = tol·IQR, or tol·range when IQR = 0) in ≥ ⌈min_support·K⌉ folds.
 */
export const stableThresholds = (
  sample: Sample,
  fit: (s: Sample) => number[],
  params: { readonly folds: number; readonly min_support: number; readonly tol: number },
): Stability => {
  const K = params.folds;
  const full = fit(sample);
  const perFold = Array.from({ length: K }, (_, f) => fit(trainingPart(sample, f)));
  const n = sample.x.length;
  const iqr = n === 0 ? null : quantile(sample.x, 0.75) - quantile(sample.x, 0.25);
  const tau = iqr === null
    ? null
    : iqr === 0
    ? params.tol * ((sample.x[n - 1] as number) - (sample.x[0] as number))
    : params.tol * iqr;
  const minFolds = ceilCount(params.min_support * K);
  const candidates = full.map((t): StabilityCandidate => {
    const matched = perFold.map((tf) => {
      let u: number | null = null;
      for (const v of tf) if (u === null || Math.abs(v - t) < Math.abs(u - t)) u = v; // ascending: ties → smaller
      return u !== null && Math.abs(u - t) <= (tau as number) ? u : null;
    });
    const votes = matched.filter((u): u is number => u !== null);
    return {
      threshold: t,
      matched,
      support: votes.length / K,
      kept: votes.length >= minFolds,
      median_matched: median(votes),
    };
  });
  return {
    thresholds_full: full,
    thresholds_folds: perFold,
    iqr,
    tau,
    min_folds: minFolds,
    candidates,
    thresholds: candidates.filter((c) => c.kept).map((c) => c.threshold),
  };
};
