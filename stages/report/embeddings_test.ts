import assert from "node:assert/strict";
import { embeddingChart, iouMatches, type MatchedEmbeddings, nearestAnchorAccuracy, umapLayout } from "./embeddings.ts";
import { renderPng } from "./charts.ts";

Deno.test("iouMatches: pairs above IoU 0.5 only, predicted id → true id", () => {
  // 1×8 strip: truth 1 = [0,4), truth 2 = [4,8); prediction 5 = [0,3) (IoU 3/4), 6 = [3,6) (IoU 2/4 with 2: not > 0.5)
  const truth = Int32Array.from([1, 1, 1, 1, 2, 2, 2, 2]), pred = Int32Array.from([5, 5, 5, 6, 6, 6, 0, 0]);
  assert.deepEqual([...iouMatches(truth, pred)], [[5, 1]]);
});

const unit = (v: number[]) => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};

Deno.test("nearestAnchorAccuracy: the share of queries closest to their own class's anchor", () => {
  const e: MatchedEmbeddings = {
    vectors: [unit([1, 0.1]), unit([0.9, 0.3]), unit([0.1, 1]), unit([1, 0.2])],
    labels: [0, 0, 1, 1], // the last one sits near class 0's anchor
    anchors: [[1, 0], [0, 1]],
    classes: ["a", "b"],
    tiles: 1,
  };
  assert.equal(nearestAnchorAccuracy(e), 0.75);
  assert.ok(Number.isNaN(nearestAnchorAccuracy({ ...e, vectors: [], labels: [] })));
});

Deno.test("umapLayout is seeded (same points, same layout) and keeps clusters apart; the chart renders", async () => {
  let s = 7;
  const rand = () => (s = (s * 16807) % 2147483647) / 2147483647;
  const points = Array.from({ length: 60 }, (_, i) => [i < 30 ? 5 : -5, 0, 0, 0].map((c) => c + rand()));
  const a = umapLayout(points), b = umapLayout(points);
  assert.deepEqual(a, b);
  const centre = (rows: number[][]) => [0, 1].map((k) => rows.reduce((t, r) => t + (r[k] as number), 0) / rows.length);
  const [c1, c2] = [centre(a.slice(0, 30)), centre(a.slice(30))] as [number[], number[]];
  const spread = Math.max(
    ...a.slice(0, 30).map((r) =>
      Math.hypot((r[0] as number) - (c1[0] as number), (r[1] as number) - (c1[1] as number))
    ),
  );
  assert.ok(
    Math.hypot((c1[0] as number) - (c2[0] as number), (c1[1] as number) - (c2[1] as number)) > spread,
    "two clusters",
  );
  const e: MatchedEmbeddings = {
    vectors: points.slice(0, 58),
    labels: points.slice(0, 58).map((_, i) => (i < 30 ? 0 : 1)),
    anchors: points.slice(58),
    classes: ["a", "b"],
    tiles: 2,
  };
  const png = await renderPng(embeddingChart(e, a));
  assert.deepEqual([...png.slice(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
});
