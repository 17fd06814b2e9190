import assert from "node:assert/strict";
import { type FnCategories, type FpCategories, imageBreakdown, pooledBreakdown } from "./breakdown.ts";
import { instanceMetrics } from "./instance_metrics.ts";

const W = 20, H = 10;

/** A [H, W] = [10, 20] map painted with rectangles [id, x, y, width, height] (later ones overwrite). */
const paint = (...rects: ReadonlyArray<readonly [number, number, number, number, number]>): Int32Array => {
  const map = new Int32Array(W * H);
  for (const [id, x0, y0, w, h] of rects) {
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) map[y * W + x] = id;
  }
  return map;
};

const noFn: FnCategories = { missed: 0, merged: 0, split: 0, poorlySegmented: 0 };
const noFp: FpCategories = { spurious: 0, fragment: 0, merge: 0, poorlySegmented: 0 };
const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-12, `${what}: ${a} vs ${b}`);

// the hand-made images (4×4 = 16-pixel nuclei unless said otherwise); a matched nucleus "M" (id 9
// on both sides, IoU 1) gives the images with errors a TP, so that their SQ is not 0
const M = [9, 16, 6, 4, 4] as const;
const images = {
  // truth A, B; prediction A only: B is missed (0 % covered)
  missed: { truth: paint([1, 0, 0, 4, 4], [2, 8, 0, 4, 4]), pred: paint([1, 0, 0, 4, 4]) },
  // truths T1 | T2 touching (x 0..3 | 4..7); one prediction over both: IoU 16/32 = 0.5, not > 0.5 → no TP
  merge: { truth: paint([1, 0, 0, 4, 4], [2, 4, 0, 4, 4], M), pred: paint([1, 0, 0, 8, 4], M) },
  // truth T (8×4 = 32 px); predictions P1 | P2 its halves: IoU 16/32 = 0.5 each → no TP
  split: { truth: paint([1, 0, 0, 8, 4], M), pred: paint([1, 0, 0, 4, 4], [2, 4, 0, 4, 4], M) },
  // truth T; prediction T shifted 1 column (IoU 12/20 = 0.6, a TP) and one on background
  spurious: { truth: paint([1, 0, 0, 4, 4]), pred: paint([1, 1, 0, 4, 4], [2, 10, 4, 4, 4]) },
  // truth T; prediction shifted 2 columns: IoU 8/24 = 1/3; T 50 % covered, P 50 % on truth
  poor: { truth: paint([1, 0, 0, 4, 4]), pred: paint([1, 2, 0, 4, 4]) },
};

Deno.test("missed: a truth with no prediction on it is FN missed; A matched at IoU 1", () => {
  const b = imageBreakdown(images.missed.truth, images.missed.pred);
  assert.deepEqual([b.truth, b.pred, b.tp, b.fp, b.fn], [2, 1, 1, 0, 1]);
  assert.deepEqual(b.fnCategories, { ...noFn, missed: 1 });
  assert.deepEqual(b.fpCategories, noFp);
  // DQ = 1 / (1 + 0.5·0 + 0.5·1) = 2/3; SQ = 1 / (1 + 1e-6)
  near(b.pq, (2 / 3) / (1 + 1e-6), "pq");
});

Deno.test("missed: a truth under 50 % covered is missed; the small prediction inside it is FP poorly segmented", () => {
  // T 4×4 = 16 px; P 2×2 inside it: T 4/16 = 25 % covered (< 50 %) → missed; P 100 % on truth,
  // T has 1 prediction ≥ 20 % (no split), P covers 25 % of T (no merge) → poorly segmented
  const b = imageBreakdown(paint([1, 0, 0, 4, 4]), paint([1, 1, 1, 2, 2]));
  assert.deepEqual([b.tp, b.fp, b.fn], [0, 1, 1]);
  assert.deepEqual(b.fnCategories, { ...noFn, missed: 1 });
  assert.deepEqual(b.fpCategories, { ...noFp, poorlySegmented: 1 });
  assert.equal(b.pq, 0);
});

Deno.test("merge: two touching truths in one prediction are 2 FN merged and 1 FP merge", () => {
  // T1: covered 100 %, main prediction P also covers 16/16 of T2 → merged; T2 likewise.
  // P: 100 % on truth; T1 (first of the tie) has 1 prediction ≥ 20 % → not a fragment; P covers
  // ≥ 50 % of T1 and T2 → merge.  TP = M: DQ = 1 / (1 + 0.5 + 1) = 0.4
  const b = imageBreakdown(images.merge.truth, images.merge.pred);
  assert.deepEqual([b.truth, b.pred, b.tp, b.fp, b.fn], [3, 2, 1, 1, 2]);
  assert.deepEqual(b.fnCategories, { ...noFn, merged: 2 });
  assert.deepEqual(b.fpCategories, { ...noFp, merge: 1 });
  near(b.pq, 0.4 / (1 + 1e-6), "pq");
});

Deno.test("merge: when the merged prediction matches the larger truth, only the smaller one is FN merged", () => {
  // T1 4×4 = 16 px, T2 2×4 = 8 px touching; P covers both (24 px): IoU(T1, P) = 16/24 > 0.5 → TP;
  // T2 is FN, its main prediction P covers ≥ 50 % of T1 → merged; no FP
  const b = imageBreakdown(paint([1, 0, 0, 4, 4], [2, 4, 0, 2, 4]), paint([1, 0, 0, 6, 4]));
  assert.deepEqual([b.tp, b.fp, b.fn], [1, 0, 1]);
  assert.deepEqual(b.fnCategories, { ...noFn, merged: 1 });
  assert.deepEqual(b.fpCategories, noFp);
  // DQ = 1 / 1.5, SQ = (16/24) / (1 + 1e-6)
  near(b.pq, (2 / 3) * (2 / 3) / (1 + 1e-6), "pq");
});

Deno.test("split: one truth cut in two predictions is 1 FN split and 2 FP fragments", () => {
  // T: 100 % covered, main prediction P1 covers no other truth, P1 and P2 cover 50 % each (≥ 20 %) → split.
  // P1, P2: on truth; T has 2 predictions ≥ 20 % → fragment.  TP = M: DQ = 1 / (1 + 1 + 0.5) = 0.4
  const b = imageBreakdown(images.split.truth, images.split.pred);
  assert.deepEqual([b.truth, b.pred, b.tp, b.fp, b.fn], [2, 3, 1, 2, 1]);
  assert.deepEqual(b.fnCategories, { ...noFn, split: 1 });
  assert.deepEqual(b.fpCategories, { ...noFp, fragment: 2 });
  near(b.pq, 0.4 / (1 + 1e-6), "pq");
});

Deno.test("order: merged is checked before split, fragment before merge", () => {
  // T1 8×4 (x 0..7), T2 4×4 (x 8..11); P1 = x 4..11 (8×4), P2 = x 0..3.
  // IoU(T1,P1) = 16/48, IoU(T2,P1) = 16/32, IoU(T1,P2) = 16/32: no pair > 0.5.
  // T1: P1 and P2 tie at 16 px, P1 (lower index) covers all of T2 → merged (though also split);
  // T2: P1 covers 16/32 = 50 % of T1 → merged.  P1: overlaps T1 and T2 by 16, T1 first; T1 has
  // 2 predictions ≥ 20 % → fragment (though P1 covers ≥ 50 % of 2 truths); P2 → fragment.
  const b = imageBreakdown(paint([1, 0, 0, 8, 4], [2, 8, 0, 4, 4]), paint([1, 4, 0, 8, 4], [2, 0, 0, 4, 4]));
  assert.deepEqual([b.tp, b.fp, b.fn], [0, 2, 2]);
  assert.deepEqual(b.fnCategories, { ...noFn, merged: 2 });
  assert.deepEqual(b.fpCategories, { ...noFp, fragment: 2 });
});

Deno.test("spurious: a prediction on background is FP spurious; the shifted one is a TP at IoU 0.6", () => {
  const b = imageBreakdown(images.spurious.truth, images.spurious.pred);
  assert.deepEqual([b.truth, b.pred, b.tp, b.fp, b.fn], [1, 2, 1, 1, 0]);
  assert.deepEqual(b.fnCategories, noFn);
  assert.deepEqual(b.fpCategories, { ...noFp, spurious: 1 });
  near(b.sumIou, 0.6, "ΣIoU"); // 12 / (16 + 16 − 12)
  // DQ = 1 / 1.5, SQ = 0.6 / (1 + 1e-6)
  near(b.pq, (2 / 3) * 0.6 / (1 + 1e-6), "pq");
});

Deno.test("spurious: a prediction under 50 % on truth is spurious even when it touches a nucleus", () => {
  // T 4×4 matched exactly; P 4×4 at x 3..6 overlaps T on 4 of its 16 px (25 %) → spurious
  const b = imageBreakdown(paint([1, 0, 0, 4, 4]), paint([2, 3, 0, 4, 4], [1, 0, 0, 3, 4]));
  assert.deepEqual([b.tp, b.fp, b.fn], [1, 1, 0]); // IoU(T, id 1) = 12/16
  assert.deepEqual(b.fpCategories, { ...noFp, spurious: 1 });
});

Deno.test("poorly segmented: IoU 1/3 is FN and FP poorly segmented at τ = 0.5, a TP at τ = 0.3", () => {
  // T: 8/16 = 50 % covered (not missed); P is its only prediction ≥ 20 % and covers no other truth
  // → poorly segmented. P: 8/16 = 50 % on truth (not spurious); T not split; P covers ≥ 50 % of
  // only T → poorly segmented
  const b = imageBreakdown(images.poor.truth, images.poor.pred);
  assert.deepEqual([b.tp, b.fp, b.fn], [0, 1, 1]);
  assert.deepEqual(b.fnCategories, { ...noFn, poorlySegmented: 1 });
  assert.deepEqual(b.fpCategories, { ...noFp, poorlySegmented: 1 });
  assert.equal(b.pq, 0);
  // τ = 0.3: Hungarian pairs them at IoU 1/3 > 0.3 → DQ 1, SQ = (1/3) / (1 + 1e-6)
  const low = imageBreakdown(images.poor.truth, images.poor.pred, { iou: 0.3 });
  assert.deepEqual([low.tp, low.fp, low.fn], [1, 0, 0]);
  near(low.pq, (1 / 3) / (1 + 1e-6), "pq at τ = 0.3");
});

Deno.test("pooled: counts summed over 5 images, PQ of the sums, shares and counterfactual PQs by hand", () => {
  const named = Object.entries(images).map(([name, m]) => ({ name, breakdown: imageBreakdown(m.truth, m.pred) }));
  const b = pooledBreakdown(named);
  // TP = 1+1+1+1+0 = 4, FP = 0+1+2+1+1 = 5, FN = 1+2+1+0+1 = 5, ΣIoU = 1+1+1+0.6+0 = 3.6
  assert.deepEqual(
    { ...b.pooled, precision: 0, recall: 0, dq: 0, sq: 0, pq: 0 },
    { truth: 9, pred: 9, tp: 4, fp: 5, fn: 5, precision: 0, recall: 0, dq: 0, sq: 0, pq: 0 },
  );
  near(b.pooled.precision, 4 / 9, "precision");
  near(b.pooled.recall, 4 / 9, "recall");
  // DQ = 4 / (4 + 2.5 + 2.5) = 4/9; SQ = 3.6 / (4 + 1e-6); PQ = DQ·SQ
  const sq = 3.6 / (4 + 1e-6);
  near(b.pooled.dq, 4 / 9, "dq");
  near(b.pooled.sq, sq, "sq");
  near(b.pooled.pq, (4 / 9) * sq, "pq");
  // FN: 1 missed, 2 merged, 1 split, 1 poorly segmented (of 5); FP: 1 spurious, 2 fragments, 1 merge, 1 poor (of 5)
  assert.deepEqual(b.falseNegatives, {
    missed: { count: 1, share: 0.2 },
    merged: { count: 2, share: 0.4 },
    split: { count: 1, share: 0.2 },
    poorlySegmented: { count: 1, share: 0.2 },
  });
  assert.deepEqual(b.falsePositives, {
    spurious: { count: 1, share: 0.2 },
    fragment: { count: 2, share: 0.4 },
    merge: { count: 1, share: 0.2 },
    poorlySegmented: { count: 1, share: 0.2 },
  });
  const cf = b.counterfactualPQ;
  near(cf.spuriousRemoved, (4 / (4 + 0.5 * 4 + 0.5 * 5)) * sq, "spurious removed: FP 4"); // 4/8.5
  near(cf.mergedFound, (6 / (6 + 0.5 * 4 + 0.5 * 3)) * sq, "merged found: TP 6, FP 4, FN 3"); // 6/9.5
  near(cf.splitFound, (5 / (5 + 0.5 * 3 + 0.5 * 4)) * sq, "split found: TP 5, FP 3, FN 4"); // 5/8.5
  near(cf.missedFound, (5 / (5 + 0.5 * 5 + 0.5 * 4)) * sq, "missed found: TP 5, FP 5, FN 4"); // 5/9.5
  near(cf.poorlySegmentedFound, (5 / (5 + 0.5 * 4 + 0.5 * 4)) * sq, "poor found: TP 5, FP 4, FN 4"); // 5/9
  near(cf.perfectSQ, 4 / 9, "perfect SQ = DQ");
  // per-image PQs: 2/3, 0.4, 0.4, (2/3)·0.6 = 0.4, 0 — each over (1 + 1e-6); as evaluate folder's PQ
  near(b.meanPQ, (2 / 3 + 0.4 + 0.4 + 0.4 + 0) / (1 + 1e-6) / 5, "mean PQ");
  const folderMean = Object.values(images).reduce((s, m) => s + instanceMetrics(m.truth, m.pred).pq, 0) / 5;
  near(b.meanPQ, folderMean, "mean PQ = mean of instanceMetrics");
  assert.deepEqual(b.perImage.map((p) => [p.name, p.missed, p.merged, p.split, p.spurious, p.fragment, p.merge]), [
    ["missed", 1, 0, 0, 0, 0, 0],
    ["merge", 0, 2, 0, 0, 0, 1],
    ["split", 0, 0, 1, 0, 2, 0],
    ["spurious", 0, 0, 0, 1, 0, 0],
    ["poor", 0, 0, 0, 0, 0, 0],
  ]);
  assert.equal(b.types, null, "no types given → no type tables");
});

Deno.test("types: confusion over the PQ pairs and HoVer-Net type F1 with unmatched nuclei", () => {
  // truth: A (type 1), B (type 2) matched exactly, C (type 2) missed; prediction: A, B both type 1,
  // and a spurious S of type 1
  const truth = paint([1, 0, 0, 4, 4], [2, 6, 0, 4, 4], [3, 12, 0, 4, 4]);
  const pred = paint([1, 0, 0, 4, 4], [2, 6, 0, 4, 4], [5, 6, 6, 4, 4]);
  const tType = (id: number) => [0, 1, 2, 2][id] as number, pType = () => 1;
  const breakdown = imageBreakdown(truth, pred, { truthType: tType, predType: pType });
  const b = pooledBreakdown([{ name: "a", breakdown }], { typed: true, classNames: ["tumour", "lymphocyte"] });
  const t = b.types;
  assert.ok(t !== null);
  assert.deepEqual(t.types, [1, 2]);
  assert.deepEqual(t.names, ["tumour", "lymphocyte"], "type k named classes[k − 1]");
  assert.deepEqual(t.confusion, [[1, 0], [1, 0]]); // (1 → 1), (2 → 1)
  assert.deepEqual(t.unmatchedTrue, [0, 1]); // C, type 2
  assert.deepEqual(t.unmatchedPred, [1, 0]); // S, type 1
  // F1_c = 2TP_c / (2TP_c + 2FP_c + 2FN_c + FP_d,c + FN_d,c):
  //   type 1: TP 1, FP 1 (B called 1), FN 0, FP_d 1 (S) → 2 / (2 + 2 + 1) = 0.4
  //   type 2: TP 0, FN 1 (B), FN_d 1 (C)               → 0 / (2 + 1) = 0
  assert.deepEqual(t.pqPairs.typeF1, { 1: 0.4, 2: 0 });
  near(t.pqPairs.clsF1, 0.2, "Cls F1");
  near(t.pqPairs.accuracy, 0.5, "type accuracy");
  near(t.pqPairs.f1, 2 * 2 / (2 * 2 + 1 + 1), "detection F1 = DQ"); // 2/3
  assert.equal(t.centroidPairs.f1, 0, "no centroid pairing given → empty");
});

const rng = (seed: number) => () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 4294967296;
};

/** A 20×10 map of `n` random rectangles (later ones overwrite, ids 1..n, some may vanish). */
const randomMap = (rand: () => number, n: number): Int32Array =>
  paint(...Array.from({ length: n }, (_, i) => {
    const w = 1 + Math.floor(rand() * 6), h = 1 + Math.floor(rand() * 5);
    return [i + 1, Math.floor(rand() * (W - w)), Math.floor(rand() * (H - h)), w, h] as const;
  }));

Deno.test("100 random map pairs at τ 0.5 and 0.3: one image pooled = its PQ, categories add up to FN and FP", () => {
  const rand = rng(17);
  for (let k = 0; k < 100; k++) {
    const truth = randomMap(rand, 1 + Math.floor(rand() * 8)), pred = randomMap(rand, Math.floor(rand() * 8));
    for (const iou of [0.5, 0.3]) {
      const b = imageBreakdown(truth, pred, { iou }), m = instanceMetrics(truth, pred, iou);
      assert.deepEqual([b.tp, b.fp, b.fn], [m.tp, m.fp, m.fn], `case ${k}, τ ${iou}`);
      assert.equal(b.pq, m.pq, `case ${k}, τ ${iou}: same PQ as instanceMetrics`);
      const pooled = pooledBreakdown([{ name: "x", breakdown: b }], { iou });
      assert.equal(pooled.pooled.pq, m.pq, `case ${k}: pooled over one image`);
      const c = b.fnCategories, e = b.fpCategories;
      assert.equal(c.missed + c.merged + c.split + c.poorlySegmented, b.fn, `case ${k}: FN categories`);
      assert.equal(e.spurious + e.fragment + e.merge + e.poorlySegmented, b.fp, `case ${k}: FP categories`);
    }
  }
});

Deno.test("identical maps: PQ ≈ 1, no errors, every counterfactual equals the PQ except perfect SQ = 1", () => {
  const map = randomMap(rng(3), 6);
  const b = pooledBreakdown([{ name: "x", breakdown: imageBreakdown(map, map) }]);
  assert.equal(b.pooled.fp + b.pooled.fn, 0);
  near(b.pooled.pq, b.pooled.tp / (b.pooled.tp + 1e-6), "pq");
  for (const k of ["spuriousRemoved", "mergedFound", "splitFound", "missedFound", "poorlySegmentedFound"] as const) {
    near(b.counterfactualPQ[k], b.pooled.pq, k);
  }
  assert.equal(b.counterfactualPQ.perfectSQ, 1);
});
