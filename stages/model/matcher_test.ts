/**
 * Matcher: point sampling against hand-computed bilinear values (grid_sample, align_corners=False,
 * zero padding), the matching cost against a float64 re-computation, and the assignment against
 * brute force over all injective assignments of the same cost matrix.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { mulberry32, type Rng } from "../data/random.ts";
import { bilinearTaps, matchingCost, matchQueries, pointSample, randomPoints } from "./matcher.ts";

await tf.setBackend("cpu");

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(a), Math.abs(b)), `${what}: ${a} vs ${b}`);

Deno.test("pointSample masks=[1,2,2] pixel centres, centre, corners, edges and an interior point", () => {
  const masks = tf.tensor3d([[[4, 8], [12, 16]]]); // [1, 2, 2]
  const cases: ReadonlyArray<readonly [number, number, number]> = [
    // align_corners=False: pixel (r, c) has its centre at ((c + ½)/w, (r + ½)/h)
    [0.25, 0.25, 4],
    [0.75, 0.25, 8], // x runs along the width
    [0.25, 0.75, 12],
    [0.75, 0.75, 16],
    [0.5, 0.5, 10], // mean of the four
    // corners reach half a pixel past the outer centres: one tap of weight ¼, the rest zero padding
    [0, 0, 1],
    [1, 0, 2],
    [0, 1, 3],
    [1, 1, 4],
    [0, 0.5, 4], // left edge midway: ¼·4 + ¼·12
    // x = 0.3·2 − ½ = 0.1, y = 0.6·2 − ½ = 0.7: .27·4 + .03·8 + .63·12 + .07·16
    [0.3, 0.6, 10],
  ];
  const coords = tf.tensor2d(cases.map(([x, y]) => [x, y])); // [P, 2]
  const values = pointSample(masks, coords);
  assert.deepEqual(values.shape, [1, cases.length]);
  Array.from(values.dataSync()).forEach((v, i) =>
    close(v, (cases[i] as readonly number[])[2] as number, 1e-6, `point ${i}`)
  );
  tf.dispose([masks, coords, values]);
});

Deno.test("pointSample masks=[2,2,3] per-mask coords=[2,2,2] uses each mask's own points", () => {
  const masks = tf.tensor3d([[[0, 1, 2], [3, 4, 5]], [[10, 11, 12], [13, 14, 15]]]); // [2, 2, 3]
  const coords = tf.tensor3d([[[0.5, 0.25], [5 / 6, 0.75]], [[1 / 6, 0.25], [0.5, 0.5]]]); // [2, 2, 2]
  const values = pointSample(masks, coords);
  assert.deepEqual(values.shape, [2, 2]);
  Array.from(values.dataSync()).forEach((v, i) => close(v, [1, 5, 10, 12.5][i] as number, 1e-6, `point ${i}`));
  tf.dispose([masks, coords, values]);
});

Deno.test("pointSample gradient w.r.t. masks = the bilinear tap weights", () => {
  const masks = tf.tensor3d([[[4, 8], [12, 16]]]); // [1, 2, 2]
  const coords = tf.tensor2d([[0.3, 0.6]]); // [1, 2]
  const grad = tf.grad((m: tf.Tensor) => tf.sum(pointSample(m as tf.Tensor3D, coords)))(masks);
  Array.from(grad.dataSync()).forEach((g, i) => close(g, [0.27, 0.03, 0.63, 0.07][i] as number, 1e-6, `tap ${i}`));
  tf.dispose([masks, coords, grad]);
});

Deno.test("pointSample rejects coords=[3] and a per-mask count that differs from K", () => {
  const masks = tf.zeros([2, 2, 2]) as tf.Tensor3D; // [2, 2, 2]
  const coords = tf.zeros([3, 4, 2]) as tf.Tensor3D; // [3, 4, 2]
  assert.throws(() => pointSample(masks, coords), /pointSample: coords must be/);
  tf.dispose([masks, coords]);
});

// ---------------------------------------------------------------------------------------------
// a float64 matcher from the formulas, on the same points

const bilinear = (m: Float64Array, h: number, w: number, x: number, y: number): number => {
  const { index, weight } = bilinearTaps(Float32Array.of(x, y), h, w);
  return [0, 1, 2, 3].reduce((s, k) => s + (weight[k] as number) * (m[index[k] as number] as number), 0);
};
const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

const referenceCost = (
  logits: Float64Array,
  masks: Float64Array,
  [Q, C1, h, w]: readonly [number, number, number, number],
  classes: Int32Array,
  targetMasks: Float64Array,
  [H, W]: readonly [number, number],
  xy: Float32Array,
): Float64Array => {
  const N = classes.length, P = xy.length / 2;
  const at = (m: Float64Array, k: number, hh: number, ww: number) =>
    Array.from(
      { length: P },
      (_, p) =>
        bilinear(m.subarray(k * hh * ww, (k + 1) * hh * ww), hh, ww, xy[2 * p] as number, xy[2 * p + 1] as number),
    );
  const out = Array.from({ length: Q }, (_, q) => at(masks, q, h, w));
  const tgt = Array.from({ length: N }, (_, n) => at(targetMasks, n, H, W));
  const cost = new Float64Array(Q * N);
  for (let q = 0; q < Q; q++) {
    const row = Array.from(logits.subarray(q * C1, (q + 1) * C1));
    const mx = Math.max(...row), z = row.reduce((s, v) => s + Math.exp(v - mx), 0);
    const x = out[q] as number[];
    for (let n = 0; n < N; n++) {
      const t = tgt[n] as number[];
      const prob = Math.exp((row[classes[n] as number] as number) - mx) / z;
      const bce = x.reduce((s, xi, p) =>
        s + (t[p] as number) * softplus(-xi) + (1 - (t[p] as number)) * softplus(xi), 0) / P;
      const sp = x.reduce((s, xi) => s + sigmoid(xi), 0), st = t.reduce((s, v) => s + v, 0);
      const spt = x.reduce((s, xi, p) => s + sigmoid(xi) * (t[p] as number), 0);
      cost[q * N + n] = -2 * prob + 5 * bce + 5 * (1 - (2 * spt + 1) / (sp + st + 1));
    }
  }
  return cost;
};

/** Minimum total over all injective assignments of the smaller side into the larger. */
const bruteForce = (cost: Float64Array, Q: number, N: number): { best: number; second: number; pairs: string } => {
  const tall = Q >= N, small = tall ? N : Q, large = tall ? Q : N;
  let best = Infinity, second = Infinity, pairs = "";
  const used = new Uint8Array(large), chosen: number[] = [];
  const visit = (i: number, total: number) => {
    if (i === small) {
      const key = chosen.map((j, k) => tall ? `${j}:${k}` : `${k}:${j}`).sort().join(",");
      if (total < best) [second, best, pairs] = [best, total, key];
      else if (total < second) second = total;
      return;
    }
    for (let j = 0; j < large; j++) {
      if (used[j]) continue;
      used[j] = 1, chosen.push(j);
      visit(i + 1, total + (cost[tall ? j * N + i : i * N + j] as number));
      used[j] = 0, chosen.pop();
    }
  };
  visit(0, 0);
  return { best, second, pairs };
};

const normal = (rng: Rng, n: number, scale: number) =>
  Float64Array.from(
    { length: n },
    () => Math.fround(scale * Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng())),
  );

Deno.test("matchQueries Q≤6 N≤4 equals brute force over the same cost matrix, 60 random cases", () => {
  const rng = mulberry32(7);
  let compared = 0;
  for (let trial = 0; trial < 60; trial++) {
    const Q = 1 + Math.floor(rng() * 6), N = Math.floor(rng() * 5), C1 = 2 + Math.floor(rng() * 4);
    const [h, w, H, W] = [5, 6, 8, 7] as const;
    const logits = normal(rng, Q * C1, 2), masks = normal(rng, Q * h * w, 3);
    const classes = Int32Array.from({ length: N }, () => Math.floor(rng() * (C1 - 1)));
    const targetMasks = Float64Array.from({ length: N * H * W }, () => (rng() < 0.4 ? 1 : 0));
    const points = 64, seed = 100 + trial;
    const xy = randomPoints(mulberry32(seed), points); // the matcher's own points for this seed
    const cost = tf.tidy(() => {
      const predLogits = tf.tensor2d(Float32Array.from(logits), [Q, C1]); // [Q, C+1]
      const predMasks = tf.tensor3d(Float32Array.from(masks), [Q, h, w]); // [Q, h, w]
      const target = { classes, masks: tf.tensor3d(Float32Array.from(targetMasks), [N, H, W]) }; // [N, H, W]
      const coords = tf.tensor2d(xy, [points, 2]); // [P, 2]
      const cost = matchingCost(predLogits, predMasks, target, coords);
      const match = matchQueries(predLogits, predMasks, target, { points, seed });
      const reference = referenceCost(logits, masks, [Q, C1, h, w], classes, targetMasks, [H, W], xy);
      reference.forEach((r, i) => close(cost[i] as number, r, 1e-5, `trial ${trial} cost ${i}`));
      assert.equal(match.queryIndex.length, Math.min(Q, N));
      const total = Array.from(match.queryIndex).reduce(
        (s, q, i) => s + (cost[q * N + (match.targetIndex[i] as number)] as number),
        0,
      );
      const brute = bruteForce(cost, Q, N);
      close(total, Math.min(Q, N) === 0 ? 0 : brute.best, 1e-9, `trial ${trial} optimal total`);
      if (brute.second - brute.best > 1e-6) {
        const pairs = Array.from(match.queryIndex, (q, i) => `${q}:${match.targetIndex[i]}`).sort().join(",");
        assert.equal(pairs, brute.pairs, `trial ${trial} unique optimum`);
        compared++;
      }
      return tf.scalar(0);
    });
    cost.dispose();
  }
  assert.ok(compared >= 40, `only ${compared} cases had a unique optimum`);
});

Deno.test("matchQueries prefers the query whose class and mask fit; returns sorted queries", () => {
  const predLogits = tf.tensor2d([[0, 0, 4], [4, 0, 0], [0, 4, 0]]); // [Q=3, C+1=3]
  const full = tf.fill([1, 4, 4], 6), empty = tf.fill([1, 4, 4], -6); // [1, 4, 4]
  const predMasks = tf.concat([empty, full, empty]) as tf.Tensor3D; // [3, 4, 4]
  const targets = { classes: new Int32Array([1, 0]), masks: tf.ones([2, 8, 8]) as tf.Tensor3D }; // [2, 8, 8]
  const match = matchQueries(predLogits, predMasks, targets, { points: 128, seed: 3 });
  assert.deepEqual(Array.from(match.queryIndex), [1, 2]);
  assert.deepEqual(Array.from(match.targetIndex), [1, 0]);
  tf.dispose([predLogits, full, empty, predMasks, targets.masks]);
});

Deno.test("matchQueries N=0 → no pairs; leaves no tensors behind", () => {
  const before = tf.memory().numTensors;
  const predLogits = tf.zeros([3, 2]) as tf.Tensor2D, predMasks = tf.zeros([3, 2, 2]) as tf.Tensor3D; // [3, 2], [3, 2, 2]
  const targets = { classes: new Int32Array([0]), masks: tf.ones([1, 2, 2]) as tf.Tensor3D }; // [1, 2, 2]
  const empty = { classes: new Int32Array(0), masks: tf.zeros([0, 2, 2]) as tf.Tensor3D }; // [0, 2, 2]
  assert.equal(matchQueries(predLogits, predMasks, empty).queryIndex.length, 0);
  const mid = tf.memory().numTensors;
  matchQueries(predLogits, predMasks, targets, { points: 32 });
  assert.equal(tf.memory().numTensors, mid);
  tf.dispose([predLogits, predMasks, targets.masks, empty.masks]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("pointSample rows=[2,0] equals sampling the gathered masks, value and gradient", () => {
  const rng = mulberry32(11);
  const masks = tf.tensor3d(Array.from({ length: 3 * 4 * 5 }, () => rng() * 4 - 2), [3, 4, 5]); // [3, 4, 5]
  const coords = tf.tensor3d(randomPoints(rng, 2 * 7), [2, 7, 2]); // [2, 7, 2]
  const rows = Int32Array.of(2, 0);
  const weights = tf.tensor2d(Array.from({ length: 14 }, () => rng()), [2, 7]); // [2, 7]
  const viaRows = (m: tf.Tensor) => tf.sum(tf.mul(pointSample(m as tf.Tensor3D, coords, rows), weights));
  const viaGather = (m: tf.Tensor) =>
    tf.sum(tf.mul(pointSample(tf.gather(m, tf.tensor1d(rows, "int32")) as tf.Tensor3D, coords), weights));
  const [a, b] = [viaRows(masks), viaGather(masks)];
  close(a.dataSync()[0] as number, b.dataSync()[0] as number, 1e-6, "value");
  const [ga, gb] = [tf.grad(viaRows)(masks), tf.grad(viaGather)(masks)];
  const [da, db] = [ga.dataSync(), gb.dataSync()];
  da.forEach((g, i) => close(g, db[i] as number, 1e-6, `gradient ${i}`));
  assert.ok(Array.from(da.subarray(20, 40)).every((g) => g === 0), "row 1 is not sampled: zero gradient");
  assert.throws(() => pointSample(masks, coords, Int32Array.of(3, 0)), /pointSample: row 3 outside the 3 masks/);
  tf.dispose([masks, coords, weights, a, b, ga, gb]);
});
