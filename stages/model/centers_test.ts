import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { initBackend } from "../backend/tf.ts";
import { mulberry32 } from "../data/random.ts";
import { centerFocalLoss, centerTargets, initCenters, proposalQueries, selectPeaks } from "./centers.ts";
import { initializer } from "./layers.ts";
import { sineEncoding } from "./transformer_decoder.ts";

await Effect.runPromise(initBackend("wasm"));

const close = (actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5) => {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    const [a, e] = [actual[i] as number, expected[i] as number];
    assert.ok(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)), `[${i}] ${a} vs ${e}`);
  }
};

Deno.test("centerTargets: a 2×2 nucleus at pixels (2–3, 2–3), stride 4 → 1 at its cell, Gaussians of σ = 0.5 cell", () => {
  const instances = new Int32Array(64);
  for (const [y, x] of [[2, 2], [2, 3], [3, 2], [3, 3]]) instances[(y as number) * 8 + (x as number)] = 7;
  // centroid (2.5, 2.5) px → cell coordinate (2.5 + 0.5)/4 − 0.5 = 0.25; σ = max(0.5, √(4/π)/4/3) = 0.5
  const side = Math.exp(-((0.75 ** 2 + 0.25 ** 2) / 0.5)), corner = Math.exp(-((0.75 ** 2 * 2) / 0.5));
  close(centerTargets(instances, 8, 8, 4), [1, side, side, corner]);
  assert.deepEqual([...centerTargets(new Int32Array(64), 8, 8, 4)], [0, 0, 0, 0], "no instance, no centre");
});

Deno.test("centerTargets: two nuclei keep the larger Gaussian where they overlap; a border centroid stays on the grid", () => {
  const instances = new Int32Array(16 * 16);
  for (let y = 0; y < 16; y++) for (let x = 0; x < 3; x++) instances[y * 16 + x] = 1; // left strip
  for (let y = 12; y < 16; y++) for (let x = 12; x < 16; x++) instances[y * 16 + x] = 2; // bottom-right block
  const t = centerTargets(instances, 16, 16, 4); // [4, 4]
  assert.equal(t[2 * 4 + 0], 1, "strip: centroid (7.5, 1) px → cell (1.5, −0.125) → peak (2, 0)");
  assert.equal(t[3 * 4 + 3], 1, "block: centroid (13.5, 13.5) px → cell (3, 3)");
  assert.equal(t.filter((v) => v === 1).length, 2);
  const alone = (id: number) => centerTargets(instances.map((v) => (v === id ? v : 0)), 16, 16, 4);
  const [strip, block] = [alone(1), alone(2)];
  assert.deepEqual([...t], [...t].map((_, i) => Math.max(strip[i] as number, block[i] as number)));
  assert.ok(block.some((v, i) => v > 0 && (strip[i] as number) > 0), "the two Gaussians do overlap");
});

Deno.test("selectPeaks: local maxima strongest first, then the strongest other cells; per image", () => {
  // image 0: peaks 9 (cell 5) and 7 (cell 15); image 1: all equal → every cell is a (tied) peak
  const values = [
    [0, 1, 0, 0, 2, 9, 3, 0, 0, 4, 0, 6, 0, 0, 5, 7],
    Array(16).fill(1),
  ].flat();
  const peaks = selectPeaks(tf.tensor3d(values, [2, 4, 4]), 3);
  assert.deepEqual([...peaks.cells], [5, 15, 11, 0, 1, 2]);
  assert.deepEqual([...peaks.yx.slice(0, 6)], [1, 1, 3, 3, 2, 3]);
  assert.throws(() => selectPeaks(tf.zeros([1, 2, 2]) as tf.Tensor3D, 5), /at least as many cells/);
});

Deno.test("centerFocalLoss equals CenterNet's formula in float64, and its gradient the finite differences", () => {
  const rng = mulberry32(3);
  const logits = Array.from({ length: 2 * 3 * 4 }, () => rng() * 6 - 3);
  const targets = Array.from({ length: 24 }, () => (rng() < 0.2 ? 1 : rng() * 0.9));
  const reference = (z: number[]) => {
    let sum = 0, count = 0;
    z.forEach((x, i) => {
      const p = 1 / (1 + Math.exp(-x)), t = targets[i] as number;
      if (t >= 1) [sum, count] = [sum + (1 - p) ** 2 * Math.log(p), count + 1];
      else sum += (1 - t) ** 4 * p ** 2 * Math.log(1 - p);
    });
    return -sum / Math.max(1, count);
  };
  const tt = tf.tensor3d(targets, [2, 3, 4]);
  const loss = (x: tf.Tensor) => centerFocalLoss(x as tf.Tensor3D, tt);
  const x = tf.tensor3d(logits, [2, 3, 4]);
  close([loss(x).dataSync()[0] as number], [reference(logits)], 1e-5);
  const grad = tf.grad(loss)(x).dataSync();
  const numeric = logits.map((_, i) => {
    const h = 1e-4, up = [...logits], down = [...logits];
    up[i] = (up[i] as number) + h, down[i] = (down[i] as number) - h;
    return (reference(up) - reference(down)) / (2 * h);
  });
  close(grad, numeric, 1e-3);
});

Deno.test("proposalQueries: projected features at the peaks, their sine positions, and the prior −γ·d² (γ = 1/18)", () => {
  const init = initializer(5), p = initCenters(init, 8);
  const features = tf.tensor4d(Array.from({ length: 2 * 3 * 3 * 8 }, (_, i) => Math.sin(i)), [2, 3, 3, 8]);
  const peaks = { cells: Int32Array.from([4, 0, 8, 5]), yx: Float32Array.from([1, 1, 0, 0, 2, 2, 1, 2]) };
  const out = proposalQueries(p, features, peaks, 2);
  assert.deepEqual(out.content.shape, [2, 2, 8]);
  // image 1, query 0 is cell 8 of image 1 → row 9 + 8 = 17 of the flattened features
  const row = tf.slice(tf.reshape(features, [18, 8]), [17, 0], [1, 8]);
  const expected = tf.add(tf.matMul(row, p.content.weight as tf.Tensor2D), p.content.bias as tf.Tensor);
  close(tf.slice(out.content, [1, 0, 0], [1, 1, 8]).dataSync(), expected.dataSync());
  close(
    tf.slice(out.positions, [0, 1, 0], [1, 1, 8]).dataSync(),
    sineEncoding(Float32Array.of(1 / 3), Float32Array.of(1 / 3), 8).dataSync(),
  );
  // image 0, query 0 at (1, 1): cell (0, 2) is at d² = 1 + 1 = 2
  assert.deepEqual(out.maskPrior.shape, [2, 2, 9]);
  close([out.maskPrior.dataSync()[2] as number], [-2 / 18]);
  close([out.maskPrior.dataSync()[4] as number], [0]);
});

Deno.test("proposalQueries on a finer mask grid (stride 2): distances in stride-4 cells to each fine cell's centre", () => {
  const p = initCenters(initializer(6), 4);
  const features = tf.zeros([1, 3, 3, 4]) as tf.Tensor4D;
  const peaks = { cells: Int32Array.from([4]), yx: Float32Array.from([1, 1]) };
  const { maskPrior } = proposalQueries(p, features, peaks, 1, [6, 6]);
  assert.deepEqual(maskPrior.shape, [1, 1, 36]);
  // fine cell (2, 2) has its centre at (2 + 0.5)/2 − 0.5 = 0.75 stride-4 cells: d² = 2 · 0.25² = 0.125
  close([maskPrior.dataSync()[2 * 6 + 2] as number], [-0.125 / 18]);
  // fine cell (0, 5): (−0.25, 2.25) → d² = 1.25² + 1.25² = 3.125
  close([maskPrior.dataSync()[5] as number], [-3.125 / 18]);
});
