import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { initBackend } from "../backend/tf.ts";
import { denseLoss, denseTargets } from "./dense.ts";

await Effect.runPromise(initBackend("wasm"));

// a 4×4 map with one nucleus on rows 1–2, columns 0–2: centroid (x 1, y 1.5)
const MAP = Int32Array.from([
  0,
  0,
  0,
  0,
  7,
  7,
  7,
  0,
  7,
  7,
  7,
  0,
  0,
  0,
  0,
  0,
]);

Deno.test("denseTargets stride 1: foreground, and x − cx, y − cy scaled to ±1 on each side of the centroid", () => {
  const t = denseTargets(MAP, 4, 4, 1);
  const channel = (c: number) => Array.from({ length: 16 }, (_, p) => t[p * 3 + c]);
  assert.deepEqual(channel(0), [0, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0]);
  // dx ∈ {−1, 0, 1}, largest 1 on each side
  assert.deepEqual(channel(1), [0, 0, 0, 0, -1, 0, 1, 0, -1, 0, 1, 0, 0, 0, 0, 0]);
  // dy ∈ {−0.5, 0.5}, largest 0.5 on each side
  assert.deepEqual(channel(2), [0, 0, 0, 0, -1, -1, -1, 0, 1, 1, 1, 0, 0, 0, 0, 0]);
});

Deno.test("denseTargets stride 2: each cell is the mean of its 2×2 pixels", () => {
  const t = Array.from(denseTargets(MAP, 4, 4, 2));
  // cell (0, 0): pixels (1, 0) and (1, 1) are foreground with h −1 and 0, v −1 and −1
  // cell (0, 1): pixel (1, 2) with h 1, v −1; cells (1, ·) mirror them with v +1
  assert.deepEqual(t, [0.5, -0.25, -0.5, 0.25, 0.25, -0.25, 0.5, -0.25, 0.5, 0.25, 0.25, 0.25]);
});

Deno.test("denseTargets: two touching nuclei each get their own centroid and scale", () => {
  const t = denseTargets(Int32Array.from([1, 1, 2, 2, 2]), 1, 5, 1);
  assert.deepEqual(Array.from({ length: 5 }, (_, p) => t[p * 3 + 1]), [-1, 1, -1, 0, 1]);
});

Deno.test("denseLoss: BCE, dice and MSE of hand-checked values; near 0 for a confident exact prediction", () => {
  const targets = tf.tensor4d([1, 0.5, -0.5, 0, 0, 0], [1, 1, 2, 3]);
  const zero = tf.tidy(() => {
    const { bce, dice, distance } = denseLoss(tf.zeros([1, 1, 2, 3]) as tf.Tensor4D, targets);
    return [bce.dataSync()[0], dice.dataSync()[0], distance.dataSync()[0]];
  });
  // logits 0: BCE = log 2; p = ½: dice = 1 − (2·½ + 1)/(½ + ½ + 1 + 1) = 1/3; MSE = (0.25 + 0.25 + 0 + 0)/4
  assert.ok(Math.abs((zero[0] as number) - Math.LN2) < 1e-6);
  assert.ok(Math.abs((zero[1] as number) - 1 / 3) < 1e-6);
  assert.ok(Math.abs((zero[2] as number) - 0.125) < 1e-6);
  const exact = tf.tidy(() => {
    const { bce, dice, distance } = denseLoss(tf.tensor4d([20, 0.5, -0.5, -20, 0, 0], [1, 1, 2, 3]), targets);
    return [bce.dataSync()[0], dice.dataSync()[0], distance.dataSync()[0]];
  });
  assert.ok((exact[0] as number) < 1e-6 && (exact[1] as number) < 1e-6 && exact[2] === 0, `${exact}`);
  targets.dispose();
});
