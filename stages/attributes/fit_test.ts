import assert from "node:assert/strict";
import { ATTRIBUTE_FEATURES, AttributeError, type AttributeRow, fitAttributes, fitSummary, wordOf } from "./fit.ts";

// §B7
const LABELS = "AAAABABBBBCCCCC";
const EXAMPLE: AttributeRow[] = [...LABELS].map((label, i) => ({ label, values: { x: i + 1 } }));
const fitExample = () => fitAttributes(EXAMPLE, { min_leaf: 2 }, { features: ["x"] });

Deno.test("§B7 worked example end to end: every listed number", () => {
  const fit = fitExample();
  assert.equal(fit.spec_version, "1.0");
  assert.equal(fit.n_samples, 15);
  assert.deepEqual(fit.classes, ["A", "B", "C"]);
  assert.deepEqual(fit.class_counts, [5, 5, 5]);
  assert.deepEqual(fit.features, ["x"]);
  assert.deepEqual(fit.folds, [0, 3, 4, 1, 3, 2, 2, 1, 4, 0, 4, 0, 2, 1, 3]);
  const sep = fit.selection.separation["x"];
  assert.equal(sep?.S, 2.953401538084737);
  assert.deepEqual(sep?.pairs.map((p) => p.d), [-2.391426126586167, -5.566025975621235, -2.953401538084737]);
  assert.deepEqual(fit.selection.selected, ["x"]);
  const b = fit.binning["x"];
  assert.ok(b !== undefined);
  assert.deepEqual(b.thresholds_full, [4.5, 10.5]);
  assert.deepEqual(b.thresholds_folds, [[10.0], [10.5], [4.5, 10.5], [6.5, 10.5], [11.0]]);
  assert.equal(b.iqr, 7.0);
  assert.equal(b.tau, 1.4000000000000001);
  assert.deepEqual(b.candidates.map((c) => c.support), [0.2, 1.0]);
  assert.deepEqual(b.thresholds, [10.5]);
  assert.deepEqual(b.words, ["low", "high"]);
  assert.deepEqual([b.family, b.direction], ["generic", "+"]);
  assert.deepEqual(b.intervals, [
    { index: 0, lower_exclusive: null, upper_inclusive: 10.5, word: "low", n: 10, class_counts: [5, 5, 0] },
    { index: 1, lower_exclusive: 10.5, upper_inclusive: null, word: "high", n: 5, class_counts: [0, 0, 5] },
  ]);
  assert.deepEqual(Object.keys(fit), [
    "spec_version",
    "params",
    "n_samples",
    "classes",
    "class_counts",
    "features",
    "folds",
    "selection",
    "binning",
  ]);
  assert.deepEqual(Object.keys(b), [
    "n",
    "classes",
    "thresholds_full",
    "thresholds_folds",
    "iqr",
    "tau",
    "min_folds",
    "candidates",
    "thresholds",
    "family",
    "direction",
    "intervals",
    "words",
  ]);
});

Deno.test("wordOf: the word of a value's interval; null for missing values", () => {
  const b = fitExample().binning["x"];
  assert.ok(b !== undefined);
  assert.deepEqual([1, 10.5, 10.51, 100].map((v) => wordOf(b, v)), ["low", "low", "high", "high"]);
  assert.deepEqual([null, undefined, NaN, Infinity].map((v) => wordOf(b, v)), [null, null, null, null]);
});

Deno.test("params: every Part B default is reported; min_leaf null means the per-fit default", () => {
  const fit = fitAttributes(EXAMPLE, {}, { features: ["x"] });
  assert.deepEqual(fit.params, {
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
    bin: "selected",
    method: "entropy",
    intervals: 5,
  });
  // min_leaf 5 for n = 15 (and for the 12-row fold fits): only cuts between positions 5 and 10 remain
  assert.deepEqual(fit.binning["x"]?.thresholds_full, [10.5]);
});

Deno.test("labels: unlabelled rows dropped, numeric labels normalised, classes in code-point order", () => {
  const rows: AttributeRow[] = [
    { label: "2.0", values: { area: 1 } },
    { label: null, values: { area: 2 } },
    { label: 10, values: { area: 3 } },
    { label: "02", values: { area: 4 } },
    { label: " ", values: { area: 5 } },
    { label: "10", values: { area: Infinity } },
    { label: "b", values: { area: null } },
  ];
  const fit = fitAttributes(rows, {}, { bin: "all" });
  assert.equal(fit.n_samples, 5);
  assert.deepEqual(fit.classes, ["10", "2", "b"]);
  assert.deepEqual(fit.class_counts, [2, 2, 1]);
  assert.deepEqual(fit.features, [...ATTRIBUTE_FEATURES]);
  assert.equal(fit.folds.length, 5);
  assert.equal(fit.binning["area"]?.n, 3, "Infinity and null are missing");
  assert.deepEqual(fit.binning["area"]?.classes, ["10", "2"]);
  assert.equal(fit.binning["solidity"]?.n, 0, "a column absent from every row is all missing");
  assert.equal(fit.binning["solidity"]?.iqr, null);
  assert.deepEqual(fit.binning["solidity"]?.words, ["slightly irregular"], "one interval: the middle word");
  assert.doesNotMatch(JSON.stringify(fit), /NaN|Infinity/);
  assert.deepEqual(JSON.parse(JSON.stringify(fit)), fit, "plain JSON values only");
});

Deno.test("bin: selected (in selection order), all, or a list; quantile method", () => {
  const rows: AttributeRow[] = Array.from({ length: 60 }, (_, i) => ({
    label: i % 3 === 0 ? "a" : i % 3 === 1 ? "b" : "c",
    values: { p: (i % 3) * 10 + (i % 7), q: i % 5, r: (i * 37) % 11 },
  }));
  const base = { features: ["r", "q", "p"] };
  const selected = fitAttributes(rows, { max_selected: 1 }, base);
  assert.deepEqual(selected.selection.selected, ["p"]);
  assert.deepEqual(Object.keys(selected.binning), ["p"]);
  assert.deepEqual(Object.keys(fitAttributes(rows, {}, { ...base, bin: "all" }).binning), ["r", "q", "p"]);
  assert.deepEqual(Object.keys(fitAttributes(rows, {}, { ...base, bin: ["q", "r"] }).binning), ["q", "r"]);
  const quantile = fitAttributes(rows, {}, { ...base, bin: ["q"], method: "quantile" }).binning["q"];
  // q = 0…4, twelve each: q(0.2) = 0.8, q(0.4) = 1.6, … — all stable across folds
  assert.equal(quantile?.thresholds_full.length, 4);
  assert.deepEqual(quantile?.words, ["very low", "low", "medium", "high", "very high"]);
  const three = fitAttributes(rows, {}, { ...base, bin: ["q"], method: "quantile", intervals: 3 }).binning["q"];
  assert.equal(three?.thresholds_full.length, 2);
});

Deno.test("bad parameters and options throw AttributeError naming the parameter", () => {
  const bad: [Parameters<typeof fitAttributes>[1], Parameters<typeof fitAttributes>[2], RegExp][] = [
    [{ min_leaf: 0 }, {}, /^min_leaf: /],
    [{ folds: 1 }, {}, /^folds: /],
    [{ max_thresholds: 5 }, {}, /^max_thresholds: .*\[0, 4\]/],
    [{ rho_max: 1.5 }, {}, /^rho_max: /],
    [{ min_support: 0 }, {}, /^min_support: /],
    [{ seed: 0.5 }, {}, /^seed: /],
    [{ tol: NaN }, {}, /^tol: /],
    [{}, { bin: ["y"] }, /^bin: 'y' is not one of the features \(x\)/],
    [{}, { bin: ["x", "x"] }, /^bin: 'x' is listed twice/],
    [{}, { features: ["x", "x"] }, /^features: 'x' is listed twice/],
    [{}, { method: "quantile", intervals: 6 }, /^intervals: /],
  ];
  for (const [params, options, message] of bad) {
    assert.throws(() => fitAttributes(EXAMPLE, params, { features: ["x"], ...options }), (e: unknown) => {
      assert.ok(e instanceof AttributeError);
      assert.match(e.message, message);
      return true;
    });
  }
  assert.throws(() => fitAttributes([{ label: "", values: {} }]), /no labelled rows/);
});

Deno.test("fitSummary: selected features and per binned feature thresholds and words", () => {
  assert.deepEqual(fitSummary(fitExample()), {
    selected: ["x"],
    binning: { x: { thresholds: [10.5], words: ["low", "high"] } },
  });
});
