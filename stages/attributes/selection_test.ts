import assert from "node:assert/strict";
import {
  averageRanks,
  cohensD,
  compareCodePoints,
  median,
  normaliseLabel,
  selectAttributes,
  separation,
  spearman,
} from "./selection.ts";

const col = (...v: (number | null)[]) => Float64Array.from(v, (x) => x ?? NaN);

Deno.test("labels: numeric-looking labels are normalised, blanks are no label, others kept (trimmed)", () => {
  assert.deepEqual(["1.0", "01", "1", " 1 ", "+1", "1e0", "1.000"].map(normaliseLabel), Array(7).fill("1"));
  assert.deepEqual([1, 2.0, -0, 0.5, 1e21].map(normaliseLabel), ["1", "2", "0", "0.5", "1000000000000000000000"]);
  assert.deepEqual(["0.50", ".5", "-2.50", "1e-7"].map(normaliseLabel), ["0.5", "0.5", "-2.5", "1e-7"]);
  assert.deepEqual([null, undefined, "", "  ", NaN].map(normaliseLabel), [null, null, null, null, null]);
  assert.deepEqual(["tumour", " tumour ", "0x10", "1,5", "Infinity", "1e999"].map(normaliseLabel), [
    "tumour",
    "tumour",
    "0x10",
    "1,5",
    "Infinity",
    "1e999",
  ]);
});

Deno.test("class order is ascending code point order, also outside the BMP", () => {
  const labels = ["b", "a", "Z", "é", "\u{1F600}", "\uFF21", "10", "2", "ab"];
  assert.deepEqual([...labels].sort(compareCodePoints), ["10", "2", "Z", "a", "ab", "b", "é", "\uFF21", "\u{1F600}"]);
  // UTF-16 order (JS default sort) puts the surrogate pair of U+1F600 before U+FF21
  assert.deepEqual(["\uFF21", "\u{1F600}"].sort(), ["\u{1F600}", "\uFF21"]);
});

Deno.test("median: odd, even (mean of the middle two), empty", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([]), null);
});

Deno.test("Cohen's d_s: pooled SD with ddof 1; null when the pooled variance is 0", () => {
  assert.equal(cohensD([1, 2, 3], [4, 5, 6]), -3);
  // s²_a = 1, s²_b = 10 (n 3 and 5): s²_p = (2·1 + 4·10)/6 = 7
  assert.equal(cohensD([1, 2, 3], [6, 8, 10, 12, 14]), (2 - 10) / Math.sqrt(7));
  assert.equal(cohensD([2, 2], [2, 2, 2]), null);
  assert.equal(cohensD([1, 1], [3, 3]), null, "pooled variance 0 even with different means");
});

Deno.test("§B7 separation: the three d values and S = 2.953401538084737", () => {
  const x = Float64Array.from({ length: 15 }, (_, i) => i + 1);
  const label = Int32Array.from("AAAABABBBBCCCCC", (c) => c.charCodeAt(0) - 65);
  const s = separation(x, label, ["A", "B", "C"]);
  assert.equal(s.S, 2.953401538084737);
  assert.equal(s.n_pairs, 3);
  assert.deepEqual(s.classes, ["A", "B", "C"]);
  assert.deepEqual(s.pairs.map((p) => [p.a, p.b, p.d]), [
    ["A", "B", -2.391426126586167],
    ["A", "C", -5.566025975621235],
    ["B", "C", -2.953401538084737],
  ]);
  assert.deepEqual(s.pairs.map((p) => p.abs_d), [2.391426126586167, 5.566025975621235, 2.953401538084737]);
});

Deno.test("separation: classes with < 2 present values are left out; skipped pairs have d = null; S of none = null", () => {
  // class 0: 1, 2, 3; class 1: 5, 5 (constant); class 2: 7 only (and one missing)
  const x = col(1, 2, 3, 5, 5, 7, null);
  const label = Int32Array.from([0, 0, 0, 1, 1, 2, 2]);
  const s = separation(x, label, ["a", "b", "c"]);
  assert.deepEqual(s.classes, ["a", "b"]);
  assert.equal(s.n_pairs, 1);
  assert.equal(s.S, 3 / Math.sqrt(2 / 3), "s²_p = (2·1 + 1·0)/3");
  const constant = separation(col(4, 4, 4, 4), Int32Array.from([0, 0, 1, 1]), ["a", "b"]);
  assert.deepEqual(constant, {
    S: null,
    n_pairs: 0,
    classes: ["a", "b"],
    pairs: [{ a: "a", b: "b", d: null, abs_d: null }],
  });
});

Deno.test("average ranks: ties share the mean of their 1-based ranks", () => {
  assert.deepEqual(Array.from(averageRanks([10, 20, 20, 5, 20])), [2, 4, 4, 1, 4]);
  assert.deepEqual(Array.from(averageRanks([3, 3])), [1.5, 1.5]);
});

Deno.test("Spearman ρ against hand-computed values", () => {
  // ranks of y: 1, 2, 3.5, 5, 3.5 → Σdxdy = 8, Σdx² = 10, Σdy² = 9.5
  assert.equal(spearman(col(1, 2, 3, 4, 5), col(5, 6, 7, 8, 7)), 8 / Math.sqrt(95));
  assert.equal(spearman(col(1, 2, 3, 4), col(40, 30, 20, 10)), -1);
  assert.equal(spearman(col(1, 2, 3, 4), col(1, 4, 9, 16)), 1);
  // only rows 0, 3, 4 have both: ranks (1, 2, 3) and (2, 1, 3) → 1 / 2
  assert.equal(spearman(col(1, null, 3, 2, 5), col(2, 4, null, 1, 3)), 0.5);
  assert.equal(spearman(col(1, 2, null), col(1, 2, 3)), null, "fewer than 3 rows");
  assert.equal(spearman(col(1, 2, 3), col(7, 7, 7)), null, "constant ranks");
});

Deno.test("greedy selection: ranking by S, strict |ρ| > rho_max, first kept blocker, dropped features block nothing", () => {
  // a: strong separation; b: a monotone copy of a (ρ = 1); c: weaker, anti-correlated with b only in part;
  // d: constant (S null, unranked)
  const label = Int32Array.from([0, 0, 0, 0, 1, 1, 1, 1]);
  const a = col(1, 2, 3, 4, 11, 12, 13, 14);
  const b = col(1, 4, 9, 16, 121, 144, 169, 196);
  const c = col(4, 3, 2, 1, 6, 4, 8, 5);
  const d = col(1, 1, 1, 1, 1, 1, 1, 1);
  const features = ["b", "a", "c", "d"];
  const sel = selectAttributes(features, [b, a, c, d], label, ["x", "y"], { rho_max: 0.7, max_selected: 4 });
  assert.deepEqual(sel.ranking.map((r) => r.feature), ["a", "b", "c"]);
  assert.deepEqual(sel.unranked, ["d"]);
  assert.deepEqual(sel.kept, ["a", "c"]);
  assert.deepEqual(sel.dropped, [{ feature: "b", redundant_with: "a", rho: 1 }]);
  assert.deepEqual(sel.selected, ["a", "c"]);
  assert.equal(sel.spearman[0]?.[1], 1);
  assert.equal(sel.spearman[3]?.[3], null);
  assert.equal(sel.spearman[1]?.[2], sel.spearman[2]?.[1]);
  // ranks of c: 4.5 3 2 1 7 4.5 8 6 → Σdxdy = 24.5, Σdx² = 42, Σdy² = 41.5
  const rhoAC = 24.5 / Math.sqrt(42 * 41.5); // 0.5868…
  assert.ok(Math.abs((spearman(a, c) as number) - rhoAC) < 1e-15);
  const at = (rho_max: number) =>
    selectAttributes(features, [b, a, c, d], label, ["x", "y"], { rho_max, max_selected: 4 });
  assert.deepEqual(at(0.59).kept, ["a", "c"]);
  const tight = at(0.58);
  assert.deepEqual(tight.kept, ["a"]);
  assert.deepEqual(tight.dropped.map((x) => [x.feature, x.redundant_with]), [["b", "a"], ["c", "a"]]);
  assert.deepEqual(
    selectAttributes(features, [b, a, c, d], label, ["x", "y"], { rho_max: 0.7, max_selected: 1 }).selected,
    [
      "a",
    ],
  );
});

Deno.test("selection: exact ties in S keep the feature order", () => {
  const label = Int32Array.from([0, 0, 1, 1]);
  const f = col(1, 2, 3, 4), g = col(4, 3, 2, 1);
  const sel = selectAttributes(["g", "f"], [g, f], label, ["x", "y"], { rho_max: 1, max_selected: 4 });
  assert.deepEqual(sel.ranking.map((r) => r.feature), ["g", "f"]);
  assert.deepEqual(sel.kept, ["g", "f"], "|ρ| = 1 is not > 1");
});
