/**
 * Attribute selection (features spec §B1–§B2): Cohen's d per class pair, the separation score
 * S(m) = median |d|, Spearman ρ between features, and the greedy de-duplication that keeps the most separating,
 * non-redundant features. Also the Part B label rules (normalised label strings, code-point class order).
 *
 * Inputs: one column per feature (`Float64Array`, NaN = missing) over the labelled rows, each row's class index
 * into `classes` (already in class order). Outputs: plain JSON objects (`null` where a value is undefined).
 *
 * Gotchas: sums run in row order, as written in the spec (two-pass variance), so results match the oracle to the
 * last bits in practice; ρ uses only rows where both features are present; features whose S is null are never
 * ranked or selected; a dropped feature never blocks a later one.
 */

// a decimal number as a CSV cell or label would spell it; no hex, no "Infinity", no digit separators
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** The number `text` (already trimmed) spells in plain decimal notation (∞ when it overflows), else null. */
export const parseDecimal = (text: string): number | null => (DECIMAL.test(text) ? Number(text) : null);

/** True when `text` (already trimmed) spells a finite decimal number. */
export const isDecimal = (text: string): boolean => Number.isFinite(parseDecimal(text) ?? NaN);

/**
 * The Part B label string of a label cell, or null for "no label" (null, NaN, empty or blank).
 * Numbers and numeric-looking strings are normalised: integral values print without decimals
 * (`"1.0"`, `"01"`, `1` → `"1"`), others as the shortest round-trip decimal (`"0.50"` → `"0.5"`).
 * Other strings are kept, trimmed of surrounding white space.
 */
export const normaliseLabel = (label: string | number | null | undefined): string | null => {
  if (label === null || label === undefined) return null;
  if (typeof label === "number") return Number.isFinite(label) ? numberLabel(label) : null;
  const text = label.trim();
  if (text === "") return null;
  return isDecimal(text) ? numberLabel(Number(text)) : text;
};

const numberLabel = (v: number): string =>
  // BigInt prints every integral double in full (String(1e21) would give "1e+21"); -0 → "0"
  Number.isInteger(v) ? BigInt(v).toString() : String(v);

/** Ascending Unicode code-point order (Python's `sorted`); differs from `sort()` only outside the BMP. */
export const compareCodePoints = (a: string, b: string): number => {
  const ia = a[Symbol.iterator](), ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next(), y = ib.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const cx = x.value.codePointAt(0) as number, cy = y.value.codePointAt(0) as number;
    if (cx !== cy) return cx - cy;
  }
};

/** Median of a list (mean of the two middle values for an even count); null when empty. */
export const median = (values: readonly number[]): number | null => {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] as number : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** Mean and ddof-1 variance, two-pass, summed in the given order. */
const meanVar = (x: readonly number[]): { mean: number; variance: number } => {
  let sum = 0;
  for (const v of x) sum += v;
  const mean = sum / x.length;
  let ss = 0;
  for (const v of x) ss += (v - mean) * (v - mean);
  return { mean, variance: ss / (x.length - 1) };
};

/**
 * Cohen's d_s of two groups (each ≥ 2 values): (mean_a − mean_b) / pooled SD, ddof 1, no Hedges correction.
 * Null when the pooled variance is 0.
 */
export const cohensD = (a: readonly number[], b: readonly number[]): number | null => {
  const A = meanVar(a), B = meanVar(b);
  const pooled = ((a.length - 1) * A.variance + (b.length - 1) * B.variance) / (a.length + b.length - 2);
  return pooled === 0 ? null : (A.mean - B.mean) / Math.sqrt(pooled);
};

/** One class pair of §B1; `d` and `abs_d` are null for a skipped pair (pooled variance 0). */
export interface PairEffect {
  readonly a: string;
  readonly b: string;
  readonly d: number | null;
  readonly abs_d: number | null;
}

/** §B1 for one feature. `classes`: the classes with ≥ 2 present values; `n_pairs`: the non-skipped pairs. */
export interface Separation {
  readonly S: number | null;
  readonly n_pairs: number;
  readonly classes: string[];
  readonly pairs: PairEffect[];
}

/** S(m) and the pairwise d of one feature column (NaN = missing); `label[i]` indexes `classes`. */
export const separation = (column: Float64Array, label: Int32Array, classes: readonly string[]): Separation => {
  const groups: number[][] = classes.map(() => []);
  for (let i = 0; i < column.length; i++) {
    const v = column[i] as number;
    if (!Number.isNaN(v)) (groups[label[i] as number] as number[]).push(v);
  }
  const kept = classes.flatMap((_, c) => ((groups[c] as number[]).length >= 2 ? [c] : []));
  const pairs: PairEffect[] = [];
  const abs: number[] = [];
  for (let p = 0; p < kept.length; p++) {
    for (let q = p + 1; q < kept.length; q++) {
      const a = kept[p] as number, b = kept[q] as number;
      const d = cohensD(groups[a] as number[], groups[b] as number[]);
      pairs.push({ a: classes[a] as string, b: classes[b] as string, d, abs_d: d === null ? null : Math.abs(d) });
      if (d !== null) abs.push(Math.abs(d));
    }
  }
  return { S: median(abs), n_pairs: abs.length, classes: kept.map((c) => classes[c] as string), pairs };
};

/** Average 1-based ranks (ties share the mean of their ranks), as `scipy.stats.rankdata`. */
export const averageRanks = (x: readonly number[]): Float64Array => {
  const order = Array.from(x.keys()).sort((i, j) => (x[i] as number) - (x[j] as number) || i - j);
  const ranks = new Float64Array(x.length);
  for (let s = 0; s < order.length;) {
    let e = s + 1;
    while (e < order.length && x[order[e] as number] === x[order[s] as number]) e++;
    const r = (s + 1 + e) / 2; // mean of the ranks s+1 … e
    for (let k = s; k < e; k++) ranks[order[k] as number] = r;
    s = e;
  }
  return ranks;
};

/**
 * Spearman ρ of two columns (NaN = missing) on the rows where both are present: Pearson correlation of the
 * average ranks. Null with fewer than 3 such rows or a constant rank vector.
 */
export const spearman = (f: Float64Array, g: Float64Array): number | null => {
  const xs: number[] = [], ys: number[] = [];
  for (let i = 0; i < f.length; i++) {
    const a = f[i] as number, b = g[i] as number;
    if (!Number.isNaN(a) && !Number.isNaN(b)) {
      xs.push(a);
      ys.push(b);
    }
  }
  if (xs.length < 3) return null;
  const rx = averageRanks(xs), ry = averageRanks(ys);
  const n = rx.length;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) {
    mx += rx[i] as number;
    my += ry[i] as number;
  }
  mx /= n;
  my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (rx[i] as number) - mx, dy = (ry[i] as number) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return null;
  // rounding can push |ρ| a hair above 1 for identical orders; scipy clips the same way
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
};

/** A feature removed by the Spearman step, with the first kept feature it is redundant with. */
export interface Dropped {
  readonly feature: string;
  readonly redundant_with: string;
  readonly rho: number;
}

/** The `selection` object of §B6. `spearman[i][j]` = ρ(features[i], features[j]). */
export interface Selection {
  readonly separation: Record<string, Separation>;
  readonly ranking: { readonly feature: string; readonly S: number }[];
  readonly unranked: string[];
  readonly spearman: (number | null)[][];
  readonly kept: string[];
  readonly dropped: Dropped[];
  readonly selected: string[];
}

/** §B1–§B2 over all features: separation, ranking by S (ties → feature order), greedy de-duplication. */
export const selectAttributes = (
  features: readonly string[],
  columns: readonly Float64Array[],
  label: Int32Array,
  classes: readonly string[],
  params: { readonly rho_max: number; readonly max_selected: number },
): Selection => {
  const sep = features.map((_, f) => separation(columns[f] as Float64Array, label, classes));
  // ρ is symmetric (bit for bit: the same sums, multiplied in either order), so compute the upper triangle
  const rho: (number | null)[][] = features.map(() => features.map(() => null));
  for (let f = 0; f < features.length; f++) {
    for (let g = f; g < features.length; g++) {
      const r = spearman(columns[f] as Float64Array, columns[g] as Float64Array);
      (rho[f] as (number | null)[])[g] = r;
      (rho[g] as (number | null)[])[f] = r;
    }
  }
  const ranked = features.flatMap((_, f) => ((sep[f] as Separation).S === null ? [] : [f]))
    // Array.prototype.sort is stable, so exact ties keep the feature order
    .sort((f, g) => ((sep[g] as Separation).S as number) - ((sep[f] as Separation).S as number));
  const kept: number[] = [];
  const dropped: Dropped[] = [];
  for (const f of ranked) {
    const blocker = kept.find((g) => {
      const r = (rho[f] as (number | null)[])[g];
      return r !== null && r !== undefined && Math.abs(r) > params.rho_max;
    });
    if (blocker === undefined) kept.push(f);
    else {
      dropped.push({
        feature: features[f] as string,
        redundant_with: features[blocker] as string,
        rho: (rho[f] as (number | null)[])[blocker] as number,
      });
    }
  }
  const name = (f: number) => features[f] as string;
  return {
    separation: Object.fromEntries(features.map((m, f) => [m, sep[f] as Separation])),
    ranking: ranked.map((f) => ({ feature: name(f), S: (sep[f] as Separation).S as number })),
    unranked: features.filter((_, f) => (sep[f] as Separation).S === null),
    spearman: rho,
    kept: kept.map(name),
    dropped,
    selected: kept.slice(0, params.max_selected).map(name),
  };
};
