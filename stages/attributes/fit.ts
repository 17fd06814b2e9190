/**
 * `fitAttributes`: features spec Part B end to end — labelled rows in, the §B6 JSON object out (selection by
 * separation and Spearman de-duplication, entropy or quantile binning with the 5-fold stability vote, words).
 * `wordOf` turns a fitted feature and a value into its word for the later prompt stages.
 *
 * Inputs: rows `{ label, values }` (missing, null or non-finite values are missing; rows without a label are
 * dropped), the Part B parameters (any subset; the rest default as in the spec table) and options (features,
 * which features to bin, cut finder). Output: plain JSON (never NaN or Infinity: undefined values are null).
 *
 * Gotchas:
 * - Row index i (folds, sort ties) counts the *labelled* rows in input order, after unlabelled rows are dropped.
 * - Every `class_counts` array is aligned with the nearest `classes` list (top level: all classes; in a binning
 *   entry: the classes present in that feature). Arrays, not objects, because JS objects reorder integer-like keys
 *   such as "10" and "2".
 * - `method: "quantile"` (the paper's ablation row 3) swaps only the cut finder: thresholds q(k/K), k = 1…K−1,
 *   K = `intervals` (default 5 → 4 thresholds), §B4 quantile rule, repeated values once; the §B4 fold vote and the
 *   words stay as for entropy binning, so the two rows of the ablation differ in one thing.
 * - Invalid parameters or options throw `AttributeError` (a tagged error whose message names the parameter).
 */
import { Data } from "effect";
import {
  assignFolds,
  type Criterion,
  entropyThresholds,
  quantileThresholds,
  type Sample,
  sortedSample,
  type Stability,
  stableThresholds,
} from "./binning.ts";
import { compareCodePoints, normaliseLabel, selectAttributes, type Selection } from "./selection.ts";
import { type Direction, type Family, familyOf, intervalBounds, intervalOf, intervalWords } from "./words.ts";
import { FEATURE_NAMES } from "./mask_features.ts";

/** The 11 per-nucleus features of spec §A3, in canonical order: the default feature list. */
export const ATTRIBUTE_FEATURES: readonly string[] = FEATURE_NAMES;

/** The Part B parameter table. */
export interface AttributeParams {
  /** redundancy if |ρ| > rho_max (strict) */
  readonly rho_max: number;
  /** number of attributes kept */
  readonly max_selected: number;
  /** at most this many thresholds per feature (≤ 4, so ≤ 5 intervals have words) */
  readonly max_thresholds: number;
  /** nodes at this depth are not split (root = depth 0) */
  readonly max_depth: number;
  /** split acceptance: MDLP or any positive gain */
  readonly criterion: Criterion;
  /** minimum samples on each side of a cut; null = max(5, ⌈n/100⌉) for each fit's n */
  readonly min_leaf: number | null;
  /** K of the stability check */
  readonly folds: number;
  /** fold assignment seed (an integer) */
  readonly seed: number;
  /** keep a threshold that recurs in ≥ ⌈min_support·K⌉ folds */
  readonly min_support: number;
  /** recurrence tolerance τ = tol · IQR */
  readonly tol: number;
  /** tie and positivity tolerance */
  readonly gain_eps: number;
}

/** The defaults of the Part B table. */
export const DEFAULT_PARAMS: AttributeParams = {
  rho_max: 0.7,
  max_selected: 4,
  max_thresholds: 4,
  max_depth: 4,
  criterion: "mdlp",
  min_leaf: null,
  folds: 5,
  seed: 0,
  min_support: 0.6,
  tol: 0.2,
  gain_eps: 1e-12,
};

/** Which features to bin: the selected ones (default), all, or a list. */
export type BinChoice = "selected" | "all" | readonly string[];

/** The cut finder: §B3 entropy binning (default) or equal-count quantiles (the paper's ablation row 3). */
export type BinMethod = "entropy" | "quantile";

/** What to fit besides the parameter table. */
export interface FitOptions {
  /** feature names, in canonical order (ties in S keep this order); default `ATTRIBUTE_FEATURES` */
  readonly features?: readonly string[];
  readonly bin?: BinChoice;
  readonly method?: BinMethod;
  /** `quantile` only: number of equal-count intervals, 1–5 (default 5 → 4 thresholds) */
  readonly intervals?: number;
}

/** One input row (a nucleus). */
export interface AttributeRow {
  readonly label: string | number | null;
  readonly values: Readonly<Record<string, number | null | undefined>>;
}

/** A parameter, option or input the fit cannot use. */
export class AttributeError extends Data.TaggedError("AttributeError")<{ readonly message: string }> {}

/** One interval of a binned feature, with the full-data values that fall in it. */
export interface BinInterval {
  readonly index: number;
  readonly lower_exclusive: number | null;
  readonly upper_inclusive: number | null;
  readonly word: string;
  readonly n: number;
  readonly class_counts: number[];
}

/** The §B6 `binning` entry of one feature. */
export interface FeatureBinning extends Stability {
  readonly n: number;
  readonly classes: string[];
  readonly family: Family;
  readonly direction: Direction;
  readonly intervals: BinInterval[];
  readonly words: string[];
}

/** The `params` record of the output: the table plus the options that shaped the result. */
export interface FitParamsRecord extends AttributeParams {
  readonly bin: "selected" | "all" | string[];
  readonly method: BinMethod;
  readonly intervals: number;
}

/** The §B6 output object. */
export interface AttributeFit {
  readonly spec_version: "1.0";
  readonly params: FitParamsRecord;
  readonly n_samples: number;
  readonly classes: string[];
  readonly class_counts: number[];
  readonly features: string[];
  readonly folds: number[];
  readonly selection: Selection;
  readonly binning: Record<string, FeatureBinning>;
}

const fail = (message: string): never => {
  throw new AttributeError({ message });
};

const checkInt = (name: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER) => {
  if (!(Number.isInteger(v) && v >= min && v <= max)) {
    fail(`${name}: expected an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? "∞" : max}], found ${v}`);
  }
};
const checkNumber = (name: string, v: number, ok: (v: number) => boolean, range: string) => {
  if (!(Number.isFinite(v) && ok(v))) fail(`${name}: expected a number ${range}, found ${v}`);
};

/** The full parameter table: defaults filled in, every value checked. Throws `AttributeError`. */
export const resolveParams = (partial: Partial<AttributeParams> = {}): AttributeParams => {
  const p: AttributeParams = { ...DEFAULT_PARAMS, ...partial };
  checkNumber("rho_max", p.rho_max, (v) => v >= 0 && v <= 1, "in [0, 1]");
  checkInt("max_selected", p.max_selected, 0);
  checkInt("max_thresholds", p.max_thresholds, 0, 4); // words exist for at most 5 intervals
  checkInt("max_depth", p.max_depth, 0);
  if (p.criterion !== "mdlp" && p.criterion !== "gain") fail(`criterion: expected mdlp or gain, found ${p.criterion}`);
  if (p.min_leaf !== null) checkInt("min_leaf", p.min_leaf, 1);
  checkInt("folds", p.folds, 2);
  checkInt("seed", p.seed, Number.MIN_SAFE_INTEGER);
  checkNumber("min_support", p.min_support, (v) => v > 0 && v <= 1, "in (0, 1]");
  checkNumber("tol", p.tol, (v) => v >= 0, "≥ 0");
  checkNumber("gain_eps", p.gain_eps, (v) => v >= 0, "≥ 0");
  return p;
};

const duplicate = (names: readonly string[]): string | undefined => names.find((n, i) => names.indexOf(n) !== i);

/**
 * Part B on labelled rows: selection (§B1–B2), binning with the stability vote (§B3–B4) and words (§B5) of the
 * features named by `options.bin`, as the §B6 JSON object. Throws `AttributeError` for bad parameters, unknown
 * features or no labelled row.
 *
 * @example
 * ```ts
 * import { fitAttributes, wordOf } from "./fit.ts";
 * const rows = Array.from({ length: 30 }, (_, i) => ({ label: i < 15 ? "a" : "b", values: { x: i } }));
 * const fit = fitAttributes(rows, { min_leaf: 2 }, { features: ["x"] });
 * const x = fit.binning["x"];
 * if (x !== undefined) console.log(fit.selection.selected, x.thresholds, wordOf(x, 3)); // [ "x" ] [ 14.5 ] low
 * ```
 */
export const fitAttributes = (
  rows: readonly AttributeRow[],
  params: Partial<AttributeParams> = {},
  options: FitOptions = {},
): AttributeFit => {
  const p = resolveParams(params);
  const features = [...(options.features ?? ATTRIBUTE_FEATURES)];
  const method = options.method ?? "entropy";
  if (method !== "entropy" && method !== "quantile") fail(`method: expected entropy or quantile, found ${method}`);
  const intervals = options.intervals ?? 5;
  checkInt("intervals", intervals, 1, 5);
  const dup = duplicate(features);
  if (dup !== undefined) fail(`features: '${dup}' is listed twice`);
  const bin = options.bin ?? "selected";
  if (typeof bin !== "string") {
    const unknown = bin.find((f) => !features.includes(f));
    if (unknown !== undefined) fail(`bin: '${unknown}' is not one of the features (${features.join(", ")})`);
    const twice = duplicate(bin);
    if (twice !== undefined) fail(`bin: '${twice}' is listed twice`);
  } else if (bin !== "selected" && bin !== "all") fail(`bin: expected selected, all or a list, found ${bin}`);

  // labelled rows, in input order; their position is the row index i of the spec
  const labelled: { label: string; row: AttributeRow }[] = [];
  for (const row of rows) {
    const label = normaliseLabel(row.label);
    if (label !== null) labelled.push({ label, row });
  }
  if (labelled.length === 0) fail("no labelled rows (every label is empty)");
  const classes = [...new Set(labelled.map((r) => r.label))].sort(compareCodePoints);
  const classIndex = new Map(classes.map((c, k) => [c, k]));
  const label = Int32Array.from(labelled, (r) => classIndex.get(r.label) as number);
  const classCounts = classes.map(() => 0);
  for (const c of label) (classCounts[c] as number)++;
  const columns = features.map((f) =>
    Float64Array.from(labelled, ({ row }) => {
      const v = Object.hasOwn(row.values, f) ? row.values[f] : undefined;
      return typeof v === "number" && Number.isFinite(v) ? v : NaN; // NaN marks "missing" from here on
    })
  );
  const folds = assignFolds(label, classes.length, p.folds, p.seed);

  const selection = selectAttributes(features, columns, label, classes, p);
  const toBin = typeof bin === "string" ? (bin === "selected" ? selection.selected : features) : [...bin];
  const fitCuts = method === "entropy"
    ? (s: Sample) => entropyThresholds(s.x, s.y, classes.length, p)
    : (s: Sample) => quantileThresholds(s.x, intervals);
  // fromEntries, not assignment: a feature called "__proto__" must stay a plain key
  const binning: Record<string, FeatureBinning> = Object.fromEntries(toBin.map((feature) => {
    const sample = sortedSample(columns[features.indexOf(feature)] as Float64Array, label, folds);
    return [feature, binFeature(feature, sample, classes, stableThresholds(sample, fitCuts, p))];
  }));
  return {
    spec_version: "1.0",
    params: { ...p, bin: typeof bin === "string" ? bin : [...bin], method, intervals },
    n_samples: labelled.length,
    classes,
    class_counts: classCounts,
    features,
    folds: Array.from(folds),
    selection,
    binning,
  };
};

/** The §B6 binning entry: the stability record, the family, and the kept intervals with their words and counts. */
const binFeature = (feature: string, s: Sample, classes: readonly string[], st: Stability): FeatureBinning => {
  const present = classes.flatMap((_, c) => (s.y.includes(c) ? [c] : []));
  const slot = new Map(present.map((c, k) => [c, k]));
  const words = intervalWords(feature, st.thresholds);
  const counts = words.map(() => present.map(() => 0));
  for (let p = 0; p < s.x.length; p++) {
    const row = counts[intervalOf(st.thresholds, s.x[p] as number)] as number[];
    (row[slot.get(s.y[p] as number) as number] as number)++;
  }
  const { family, direction } = familyOf(feature);
  // keys in the order §B6 lists them
  return {
    n: s.x.length,
    classes: present.map((c) => classes[c] as string),
    thresholds_full: st.thresholds_full,
    thresholds_folds: st.thresholds_folds,
    iqr: st.iqr,
    tau: st.tau,
    min_folds: st.min_folds,
    candidates: st.candidates,
    thresholds: st.thresholds,
    family,
    direction,
    intervals: intervalBounds(st.thresholds).map((b, j) => {
      const cc = counts[j] as number[];
      return { ...b, word: words[j] as string, n: cc.reduce((a, v) => a + v, 0), class_counts: cc };
    }),
    words,
  };
};

/** The word of `value` for a fitted feature; null for a missing (null, undefined, non-finite) value. */
export const wordOf = (
  binning: { readonly thresholds: readonly number[]; readonly words: readonly string[] },
  value: number | null | undefined,
): string | null =>
  typeof value === "number" && Number.isFinite(value)
    ? binning.words[intervalOf(binning.thresholds, value)] ?? null
    : null;

/** The `--summary` view: the selected features and, per binned feature, its thresholds and words. */
export const fitSummary = (fit: AttributeFit): {
  selected: string[];
  binning: Record<string, { thresholds: number[]; words: string[] }>;
} => ({
  selected: fit.selection.selected,
  binning: Object.fromEntries(
    Object.entries(fit.binning).map(([f, b]) => [f, { thresholds: b.thresholds, words: b.words }]),
  ),
});
