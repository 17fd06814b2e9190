/** Ablation summaries and scores on hand-computed cases. */
import assert from "node:assert/strict";
import { ablationChartSvg, ablationMarkdown, spread, summarise } from "./ablation.ts";
import { type Scores, scoreTiles } from "./scores.ts";

Deno.test("spread: mean and sample sd over the defined values; one value has no sd", () => {
  const s = spread([0.5, 0.7, null, NaN, 0.6]);
  assert.equal(s.n, 3);
  assert.ok(Math.abs(s.mean - 0.6) < 1e-12);
  assert.ok(Math.abs(s.sd - 0.1) < 1e-12); // deviations ±0.1, 0: √(0.02 / 2)
  assert.ok(Number.isNaN(spread([0.4]).sd));
  assert.ok(Number.isNaN(spread([]).mean));
});

const scores = (f1: number, pq: number | null): Scores => ({
  tiles: 2,
  bPQ: pq,
  aji: 0.5,
  detectionF1: f1,
  classF1: { a: 0.2, b: null },
  meanClassF1: 0.2,
  classPQ: { a: pq, b: null },
});

Deno.test("summarise + ablationMarkdown: rows in the given order, mean ± sd, – where undefined", () => {
  const runs = [
    { row: "vl", seed: 0, scores: scores(0.8, 0.6) },
    { row: "base", seed: 0, scores: scores(0.7, 0.5) },
    { row: "base", seed: 1, scores: scores(0.9, null) },
  ];
  const summary = summarise(runs, ["base", "vl"], ["a", "b"]);
  assert.deepEqual(summary.map((r) => [r.row, r.seeds]), [["base", [0, 1]], ["vl", [0]]]);
  const md = ablationMarkdown(summary, ["a", "b"]).split("\n");
  assert.equal(md[0], "| row | seeds | Det F1 | Cls F1 | PQ | AJI | PQ a | PQ b |");
  // Det F1 0.7, 0.9 → 0.8 ± 0.141; PQ has one defined value → 0.500 ± –; class b never defined → –
  assert.equal(md[2], "| base | 2 | 0.800 ± 0.141 | 0.200 ± 0.000 | 0.500 ± – | 0.500 ± 0.000 | 0.500 ± – | – |");
  assert.equal(md[3], "| vl | 1 | 0.800 ± – | 0.200 ± – | 0.600 ± – | 0.500 ± – | 0.600 ± – | – |");
  const svg = ablationChartSvg(summary, "t < u");
  assert.match(svg, /^<svg /);
  assert.match(svg, /t &lt; u/);
  // ±sd whiskers where a row has two seeds (Det F1, Cls F1, AJI of "base"), and the y axis
  assert.equal((svg.match(/<line x1="[\d.]+" x2="[\d.]+" y1="[\d.]+" y2="[\d.]+" stroke="black"\/>/g) ?? []).length, 4);
});

Deno.test("scoreTiles: per-class PQ on the instances of each class, over the tiles that hold it", () => {
  // 1×8 strip: truth ids 1 (class 0) on px 0–1, 2 (class 1) on px 4–5; the prediction finds id 1's
  // pixels exactly (class 0) and covers px 4–7 as one class-1 instance (IoU 2/4 = 0.5, not > 0.5)
  const tile = {
    width: 8,
    truth: Int32Array.of(1, 1, 0, 0, 2, 2, 0, 0),
    truthClassOf: [-1, 0, 1],
    prediction: Int32Array.of(1, 1, 0, 0, 2, 2, 2, 2),
    predictionClassOf: [-1, 0, 1],
  };
  const s = scoreTiles(["a", "b"], [tile]);
  assert.ok(Math.abs((s.classPQ.a ?? 0) - 1) < 1e-5); // one perfect match (PQ's ε = 1e-6 in the IoU sum)
  assert.equal(s.classPQ.b, 0); // IoU 0.5 is no match: PQ 0
  assert.equal(s.tiles, 1);
  const empty = scoreTiles(["a", "b"], [{ ...tile, truth: new Int32Array(8), prediction: new Int32Array(8) }]);
  assert.deepEqual(empty.classPQ, { a: null, b: null }, "a class absent from every tile has no PQ");
});
