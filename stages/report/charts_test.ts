/** The report's Vega-Lite specs: their data, and that each renders to a plausible PNG. */
import assert from "node:assert/strict";
import sharp from "sharp";
import { summarise } from "../model/ablation.ts";
import type { Scores } from "../model/scores.ts";
import {
  ablationBars,
  classBars,
  classScores,
  confusionHeatmap,
  type HistoryEntry,
  lossCurves,
  lossParts,
  renderPng,
  rollingMean,
  type TopLevelSpec,
} from "./charts.ts";
import { emptyConfusion } from "./confusion.ts";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The spec as plain JSON, to read its data without narrowing Vega-Lite's spec union. */
interface Loose {
  title: { text: string; subtitle: string };
  data: { values: Array<Record<string, unknown>> };
  encoding: Record<string, { scale?: { domain?: unknown[]; type?: string } }>;
}
const loose = (spec: TopLevelSpec): Loose => JSON.parse(JSON.stringify(spec));

/** Renders and checks the PNG signature and a plausible size (scale 2, so at least 2 × 200 px wide). */
const assertRenders = async (spec: TopLevelSpec) => {
  const png = await renderPng(spec);
  assert.deepEqual([...png.subarray(0, 8)], PNG_SIGNATURE);
  const { width = 0, height = 0, format } = await sharp(png).metadata();
  assert.equal(format, "png");
  assert.ok(width >= 400 && width <= 4000, `width ${width}`);
  assert.ok(height >= 300 && height <= 4000, `height ${height}`);
  return { width, height };
};

const history: HistoryEntry[] = Array.from({ length: 60 }, (_, i) => ({
  step: i + 1,
  total: 30 / (i + 1) + 1,
  class: 5 / (i + 1) + 0.5,
  mask: 0.2,
  fix: 0, // never positive: no line on a log scale
  presence: 0.3, // not a known loss part
  ms: 1000,
}));

Deno.test("rollingMean window 2: trailing means, the first value alone", () => {
  assert.deepEqual(rollingMean([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5]);
  assert.deepEqual(rollingMean([4], 25), [4]);
});

Deno.test("lossCurves: only the parts present (and positive), one point per step each, log y", async () => {
  assert.deepEqual(lossParts(history), ["total", "class", "mask"]);
  const spec = loose(lossCurves(history, 10));
  const parts = [...new Set(spec.data.values.map((v) => v.part))];
  assert.deepEqual(parts, ["total", "class", "mask"]);
  assert.deepEqual(spec.encoding.color?.scale?.domain, ["total", "class", "mask"]);
  assert.equal(spec.data.values.length, 3 * 60);
  assert.equal(spec.encoding.y?.scale?.type, "log");
  assert.match(spec.title.subtitle, /rolling mean over 10 steps/);
  // smoothed: the first 10 totals average to the 10th point
  const totals = spec.data.values.filter((v) => v.part === "total").map((v) => v.loss as number);
  const first10 = history.slice(0, 10).reduce((s, h) => s + (h.total as number), 0) / 10;
  assert.ok(Math.abs((totals[9] as number) - first10) < 1e-12);
  await assertRenders(lossCurves(history));
});

Deno.test("lossCurves: a long run is thinned to at most ~1000 points per part, last step kept", () => {
  const long: HistoryEntry[] = Array.from({ length: 5000 }, (_, i) => ({ step: i + 1, total: 1 + 1 / (i + 1) }));
  const values = loose(lossCurves(long)).data.values;
  assert.ok(values.length <= 1001, `${values.length}`);
  assert.equal(values.at(-1)?.step, 5000);
});

Deno.test("classScores + classBars: PQ when present, else F1 said in the title; renders", async () => {
  const classes = ["neoplastic", "inflammatory"];
  const f1 = classScores({ classF1: { neoplastic: 0.5, inflammatory: null } }, classes);
  assert.equal(f1.metric, "F1");
  assert.deepEqual(f1.values, [{ name: "neoplastic", value: 0.5 }, { name: "inflammatory", value: null }]);
  assert.match(loose(classBars(f1)).title.text, /F1/);
  assert.match(loose(classBars(f1)).title.subtitle, /no per-class PQ/);
  const pq = classScores({ classF1: { neoplastic: 0.5 }, classPQ: { neoplastic: 0.4, inflammatory: 0.3 } }, classes);
  assert.equal(pq.metric, "PQ");
  assert.match(loose(classBars(pq)).title.text, /PQ/);
  assert.deepEqual(loose(classBars(f1)).data.values.map((v) => v.label), ["0.500", "n/a"]);
  await assertRenders(classBars(pq));
});

Deno.test("confusionHeatmap K=3: one cell per (truth, pred) with its count and row share; renders", async () => {
  const c = {
    ...emptyConfusion(3),
    matched: [[3, 1, 0], [0, 0, 0], [2, 0, 2]],
    tiles: 4,
  };
  const spec = loose(confusionHeatmap(c, ["a", "b", "c"]));
  assert.equal(spec.data.values.length, 9);
  assert.deepEqual(spec.data.values[1], { truth: "a", pred: "b", count: 1, share: 0.25 });
  assert.equal(spec.data.values[4]?.share, 0, "an empty row has share 0, not NaN");
  assert.match(spec.title.subtitle, /4 held-out tiles/);
  await assertRenders(confusionHeatmap(c, ["a", "b", "c"]));
});

const scores = (f1: number, pq: number): Scores => ({
  tiles: 4,
  bPQ: pq,
  aji: 0.4,
  detectionF1: f1,
  classF1: { a: 0.5 },
  meanClassF1: 0.5,
  classPQ: { a: pq, b: null },
});

Deno.test("ablationBars: mean per (row, metric), ±sd whiskers only with two or more seeds; renders", async () => {
  const runs = [
    { row: "base", seed: 0, scores: scores(0.7, 0.5) },
    { row: "base", seed: 1, scores: scores(0.9, 0.5) },
    { row: "full", seed: 0, scores: scores(0.8, 0.6) },
  ];
  const summary = summarise(runs, ["base", "full"], ["a", "b"]);
  const spec = loose(ablationBars(summary));
  const det = spec.data.values.filter((v) => v.metric === "Det F1");
  assert.deepEqual(det.map((v) => v.row), ["base (2 seeds)", "full (1 seed)"]);
  assert.ok(Math.abs((det[0]?.mean as number) - 0.8) < 1e-12);
  assert.ok(Math.abs((det[0]?.hi as number) - (0.8 + Math.sqrt(0.02))) < 1e-12);
  assert.equal(det[1]?.lo, null);
  assert.deepEqual([...new Set(spec.data.values.map((v) => v.metric))], ["Det F1", "Cls F1", "PQ", "AJI"]);
  // class b is never defined: no bar for it
  const perClass = loose(ablationBars(summary, "classPQ"));
  assert.deepEqual([...new Set(perClass.data.values.map((v) => v.metric))], ["a"]);
  await assertRenders(ablationBars(summary));
  await assertRenders(ablationBars(summary, "classPQ"));
});
