import assert from "node:assert/strict";
import {
  assignFolds,
  bestCut,
  candidateCuts,
  ceilCount,
  defaultMinLeaf,
  entropy,
  entropyThresholds,
  hash32,
  quantile,
  quantileThresholds,
  sortedSample,
  stableThresholds,
} from "./binning.ts";

// §B7: x = 1…15, labels A A A A B A B B B B C C C C C (classes A=0, B=1, C=2), min_leaf 2, other defaults
const X = Float64Array.from({ length: 15 }, (_, i) => i + 1);
const Y = Int32Array.from("AAAABABBBBCCCCC", (c) => c.charCodeAt(0) - 65);
const PARAMS = { max_thresholds: 4, max_depth: 4, criterion: "mdlp", min_leaf: 2, gain_eps: 1e-12 } as const;
const close = (a: number, b: number, digits: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 0.5 * 10 ** -digits, `${what}: ${a} vs ${b}`);

Deno.test("hash32 check values of §B4", () => {
  assert.deepEqual([hash32(0), hash32(1), hash32(2), hash32(0x9e3779b9)], [0, 1753845952, 3507691905, 33350994]);
});

Deno.test("folds of the §B7 example, seed 0", () => {
  assert.deepEqual(Array.from(assignFolds(Y, 3, 5, 0)), [0, 3, 4, 1, 3, 2, 2, 1, 4, 0, 4, 0, 2, 1, 3]);
});

Deno.test("folds: every class and every fold differ in size by at most one; seeds change them", () => {
  const label = Int32Array.from(
    { length: 103 },
    (_, i) => (i * 7) % 4 === 0 ? 0 : i % 3 === 0 ? 1 : i % 5 === 0 ? 2 : 3,
  );
  for (const seed of [0, 1, 42, -3, 2 ** 40]) {
    const folds = assignFolds(label, 4, 5, seed);
    const perFold = [0, 0, 0, 0, 0];
    for (const f of folds) (perFold[f] as number)++;
    assert.ok(Math.max(...perFold) - Math.min(...perFold) <= 1, `seed ${seed}: ${perFold}`);
    for (let c = 0; c < 4; c++) {
      const sizes = [0, 0, 0, 0, 0];
      for (let i = 0; i < label.length; i++) if (label[i] === c) (sizes[folds[i] as number] as number)++;
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `seed ${seed} class ${c}: ${sizes}`);
    }
  }
  assert.notDeepEqual(assignFolds(label, 4, 5, 1), assignFolds(label, 4, 5, 0));
  // seeds are taken modulo 2^32, as Math.imul does
  assert.deepEqual(assignFolds(label, 4, 5, 2 ** 32 + 5), assignFolds(label, 4, 5, 5));
});

Deno.test("§B7 hand check of the first cut: H(root), gain 0.91830 at 10.5, Δ 1.88897, bound 0.37975", () => {
  const cut = bestCut(X, Y, 0, 15, 3, 2, "mdlp", 1e-12);
  assert.ok(cut !== null);
  assert.equal(cut.h, Math.log2(3));
  close(cut.h, 1.58496, 5, "H(root)");
  assert.equal(cut.threshold, 10.5);
  close(cut.gain, 0.91830, 5, "gain");
  assert.equal(cut.hLeft, 1);
  assert.equal(cut.hRight, 0);
  assert.deepEqual([cut.k, cut.kLeft, cut.kRight], [3, 2, 1]);
  close(cut.delta, 1.88897, 5, "Δ");
  close(cut.bound, 0.37975, 5, "bound");
  assert.ok(cut.accepted);
});

Deno.test("§B7 left node: 4.5 and 6.5 tie bit for bit at 0.60999; the smaller wins and passes MDLP (0.52773)", () => {
  const cuts = candidateCuts(X, Y, 0, 10, 3, 2);
  const g45 = cuts.find((c) => c.threshold === 4.5)?.gain, g65 = cuts.find((c) => c.threshold === 6.5)?.gain;
  assert.ok(g45 !== undefined && g65 !== undefined);
  assert.equal(g45, g65, "bit-identical gains");
  close(g45, 0.60999, 5, "gain");
  assert.equal(Math.max(...cuts.map((c) => c.gain)), g45, "no better cut");
  const best = bestCut(X, Y, 0, 10, 3, 2, "mdlp", 1e-12);
  assert.equal(best?.threshold, 4.5);
  close(best?.bound as number, 0.52773, 5, "bound");
  assert.ok(best?.accepted);
});

Deno.test("candidate cuts: only between distinct values, at least min_leaf on each side, midpoint thresholds", () => {
  const x = Float64Array.from([1, 1, 2, 2, 2, 3, 5, 5]);
  const y = Int32Array.from([0, 0, 1, 1, 0, 1, 1, 0]);
  assert.deepEqual(candidateCuts(x, y, 0, 8, 2, 1).map((c) => [c.i, c.threshold]), [[2, 1.5], [5, 2.5], [6, 4]]);
  assert.deepEqual(candidateCuts(x, y, 0, 8, 2, 3).map((c) => c.i), [5]);
  assert.deepEqual(candidateCuts(x, y, 0, 8, 2, 5), []);
  assert.equal(bestCut(x, y, 0, 8, 2, 5, "gain", 1e-12), null);
});

Deno.test("§B7 full-data thresholds [4.5, 10.5]; gain criterion and caps", () => {
  assert.deepEqual(entropyThresholds(X, Y, 3, PARAMS), [4.5, 10.5]);
  assert.deepEqual(entropyThresholds(X, Y, 3, { ...PARAMS, max_thresholds: 1 }), [10.5]);
  assert.deepEqual(entropyThresholds(X, Y, 3, { ...PARAMS, max_depth: 1 }), [10.5], "children at depth 1 stay closed");
  assert.deepEqual(entropyThresholds(X, Y, 3, { ...PARAMS, max_depth: 0 }), []);
  // without MDLP any positive gain splits: the {B, A, B, B, B, B} leaf gets its cut at 6.5 too
  assert.deepEqual(entropyThresholds(X, Y, 3, { ...PARAMS, criterion: "gain" }), [4.5, 6.5, 10.5]);
  // the default min_leaf (5 for n = 15) leaves only the cuts at 5.5 … 10.5
  assert.deepEqual(entropyThresholds(X, Y, 3, { ...PARAMS, min_leaf: null }), [10.5]);
});

Deno.test("best-first: the leaf with the larger (n/N)·gain splits first; equal priorities → leftmost", () => {
  // two identical blocks A…A B…B | A…A B…B: the root cut separates the blocks only weakly, then both blocks tie
  const x = Float64Array.from({ length: 40 }, (_, i) => i);
  const y = Int32Array.from({ length: 40 }, (_, i) => (i % 20 < 10 ? 0 : 1));
  const p = { ...PARAMS, criterion: "gain" as const, min_leaf: 1 };
  assert.deepEqual(entropyThresholds(x, y, 2, { ...p, max_thresholds: 1 }), [9.5]);
  assert.deepEqual(entropyThresholds(x, y, 2, { ...p, max_thresholds: 2 }), [9.5, 19.5]);
  assert.deepEqual(entropyThresholds(x, y, 2, { ...p, max_thresholds: 3 }), [9.5, 19.5, 29.5]);
});

Deno.test("default min_leaf is max(5, ceil(n/100))", () => {
  assert.deepEqual([0, 15, 500, 501, 1000, 1001].map(defaultMinLeaf), [5, 5, 5, 6, 10, 11]);
});

Deno.test("entropy in bits, classes in order, zero counts skipped", () => {
  assert.equal(entropy([5, 5, 5], 15), Math.log2(3));
  assert.equal(entropy([4, 0, 0], 4), 0);
  assert.equal(entropy([2, 0, 2], 4), 1);
});

Deno.test("quantile rule of §B4 and the §B7 IQR", () => {
  assert.equal(quantile(X, 0.75) - quantile(X, 0.25), 7);
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantile([1, 2, 3, 4], 1), 4);
  assert.equal(quantile([7], 0.25), 7);
  assert.equal(quantile([0, 10], 0.3), 3);
});

Deno.test("quantile cut finder: 5 intervals → 4 thresholds at q(k/5); repeated values kept once", () => {
  const x = Float64Array.from({ length: 11 }, (_, i) => i * 10);
  assert.deepEqual(quantileThresholds(x, 5), [20, 40, 60, 80]);
  assert.deepEqual(quantileThresholds(x, 3), [30 + (10 * (1 / 3) - 3) * 10, 60 + (10 * (2 / 3) - 6) * 10]); // 33.3…, 66.6…
  assert.deepEqual(quantileThresholds(x, 1), []);
  assert.deepEqual(quantileThresholds(Float64Array.from([0, 0, 0, 0, 0, 0, 0, 1, 2, 3]), 5), [0, 1 + (9 * 0.8 - 7)]); // q(.2)…q(.6) = 0, q(.8) = 1.2
  assert.deepEqual(quantileThresholds(new Float64Array(0), 5), []);
});

Deno.test("§B7 stability: per-fold thresholds, IQR 7, τ 1.4, supports [0.2, 1.0], kept [10.5]", () => {
  const fold = assignFolds(Y, 3, 5, 0);
  const sample = sortedSample(X, Y, fold);
  const st = stableThresholds(sample, (s) => entropyThresholds(s.x, s.y, 3, PARAMS), {
    folds: 5,
    min_support: 0.6,
    tol: 0.2,
  });
  assert.deepEqual(st.thresholds_full, [4.5, 10.5]);
  assert.deepEqual(st.thresholds_folds, [[10], [10.5], [4.5, 10.5], [6.5, 10.5], [11]]);
  assert.equal(st.iqr, 7);
  assert.equal(st.tau, 1.4000000000000001);
  assert.equal(st.min_folds, 3);
  assert.deepEqual(st.candidates.map((c) => c.support), [0.2, 1.0]);
  assert.deepEqual(st.candidates[0]?.matched, [null, null, 4.5, null, null]);
  assert.deepEqual(st.candidates[1]?.matched, [10, 10.5, 10.5, 10.5, 11]);
  assert.deepEqual(st.candidates.map((c) => c.median_matched), [4.5, 10.5]);
  assert.deepEqual(st.candidates.map((c) => c.kept), [false, true]);
  assert.deepEqual(st.thresholds, [10.5]);
});

Deno.test("stability: nearest fold threshold with ties → the smaller; τ from the range when IQR = 0", () => {
  const x = Float64Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 10]);
  const sample = { x, y: new Int32Array(10), fold: Int32Array.from([0, 1, 0, 1, 0, 1, 0, 1, 0, 1]) };
  const fits = [[4], [3, 5], [6]]; // full, fold 0, fold 1
  let call = 0;
  const st = stableThresholds(sample, () => fits[call++] as number[], { folds: 2, min_support: 0.5, tol: 0.1 });
  assert.equal(st.iqr, 0);
  assert.equal(st.tau, 1, "0.1 × (10 − 0)");
  assert.deepEqual(st.candidates[0]?.matched, [3, null], "3 and 5 are equally near 4: 3 wins; 6 is 2 away > τ");
  assert.equal(st.candidates[0]?.support, 0.5);
  assert.deepEqual(st.thresholds, [4]);
});

Deno.test("stability: no present value → no thresholds, IQR and τ null", () => {
  const empty = { x: new Float64Array(0), y: new Int32Array(0), fold: new Int32Array(0) };
  const st = stableThresholds(empty, (s) => entropyThresholds(s.x, s.y, 2, PARAMS), {
    folds: 5,
    min_support: 0.6,
    tol: 0.2,
  });
  assert.deepEqual([st.thresholds_full, st.thresholds_folds.length, st.iqr, st.tau], [[], 5, null, null]);
});

Deno.test("min folds ⌈min_support·K⌉ ignores binary rounding", () => {
  assert.equal(ceilCount(0.6 * 5), 3);
  assert.equal(0.07 * 100, 7.000000000000001);
  assert.equal(ceilCount(0.07 * 100), 7);
  assert.equal(ceilCount(0.61 * 5), 4);
  assert.equal(ceilCount(0.5 * 5), 3);
});
