import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { initBackend } from "../backend/tf.ts";
import { denseLoss, denseMaps, denseTargets, initDense, typeLoss, typeTargets } from "./dense.ts";
import { initializer } from "./layers.ts";

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

Deno.test("denseLoss MSGE: the maps' gradient error on the nuclei's interior cells, hand-computed; 0 for h shifted by a constant", () => {
  // 3×4 maps, one interior row (y 1) with interior cells x 1, 2; foreground weight 1 at (1, 1), ½ at (1, 2)
  const fg = [0, 0, 0, 0, 0, 1, 0.5, 0, 0, 0, 0, 0];
  const hTrue = [0, 0, 0, 0, -1, -0.5, 0.5, 1, 0, 0, 0, 0];
  const vTrue = [0, 0, 0, 0, 0, -1, -1, 0, 0, 1, 1, 0];
  const maps = (h: number[], v: number[], f: number[]) =>
    tf.tensor4d(f.flatMap((x, p) => [x, h[p] as number, v[p] as number]), [1, 3, 4, 3]);
  const targets = maps(hTrue, vTrue, fg);
  const gradientOf = (h: number[], v: number[]) =>
    tf.tidy(() => denseLoss(maps(h, v, fg), targets).gradient.dataSync()[0] as number);
  // h + 0.3 everywhere: same differences; v flat 0: ∂v/∂y is 0 against the truth's (1 − 0)·… at
  // (1, 1): v(2, 1) − v(0, 1) = 1, at (1, 2): 1 − 0 = 1 → squared errors 1 and 1, weights 1 and ½
  assert.ok(Math.abs(gradientOf(hTrue.map((x) => x + 0.3), vTrue)) < 1e-6);
  assert.ok(Math.abs(gradientOf(hTrue, vTrue.map(() => 0)) - (1 * 1 + 0.5 * 1) / 1.5) < 1e-5);
  // h flat 0: ∂h/∂x of the truth at (1, 1) = 0.5 − (−1) = 1.5, at (1, 2) = 1 − (−0.5) = 1.5
  assert.ok(Math.abs(gradientOf(hTrue.map(() => 0), vTrue) - (1 * 2.25 + 0.5 * 2.25) / 1.5) < 1e-5);
  targets.dispose();
});

Deno.test("initDense / denseMaps with a branch: 3×3 convs D → C → C, then 1×1 → 3, the spatial size kept", () => {
  const init = initializer(3);
  const plain = initDense(init, 6), branched = initDense(init, 6, 4);
  assert.equal(plain.branch, undefined);
  assert.deepEqual(plain.head.weight.shape, [1, 1, 6, 3]);
  assert.deepEqual(branched.branch?.map((c) => c.weight.shape), [[3, 3, 6, 4], [3, 3, 4, 4]]);
  assert.deepEqual(branched.head.weight.shape, [1, 1, 4, 3]);
  const shape = tf.tidy(() => denseMaps(branched, tf.ones([2, 5, 7, 6]) as tf.Tensor4D).shape);
  assert.deepEqual(shape, [2, 5, 7, 3]);
  tf.dispose([plain, branched] as unknown as tf.Tensor[]);
});

Deno.test("typeTargets: each cell's fraction of background and of each class's nuclei", () => {
  // MAP's nucleus is instance 7; as kept instance 1 of class 2 (of 3), at stride 2: cells of 2×2 pixels
  const kept = MAP.map((v) => (v === 7 ? 1 : 0));
  const t = typeTargets(kept, [2], 4, 4, 2, 3); // [2·2·4]
  // cell (0,0): pixels (0,0),(0,1) background, (1,0),(1,1) nucleus → 0.5 / 0.5 on class channel 3
  assert.deepEqual(Array.from(t.subarray(0, 4)), [0.5, 0, 0, 0.5]);
  assert.deepEqual(Array.from(t.subarray(4, 8)), [0.75, 0, 0, 0.25]); // cell (0,1): one nucleus pixel (1,2)
  assert.deepEqual(Array.from(t.subarray(8, 12)), [0.5, 0, 0, 0.5]); // cell (1,0)
  for (let cell = 0; cell < 4; cell++) {
    const sum = Array.from(t.subarray(cell * 4, cell * 4 + 4)).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-6, `cell ${cell} sums to 1`);
  }
  assert.throws(() => typeTargets(kept, [3], 4, 4, 2, 3), /class 3 of 3/);
});

Deno.test("typeLoss: soft cross-entropy plus the present classes' mean 1 − dice, against float64; near 0 when exact", () => {
  const logits = [2, -1, 0.5, 0, 1, 3, -2, 0.5], targets = [1, 0, 0, 0, 0.5, 0.5, 0, 0]; // 2 cells × 4 channels
  const loss = tf.tidy(() =>
    typeLoss(tf.tensor4d(logits, [1, 1, 2, 4]), tf.tensor4d(targets, [1, 1, 2, 4])).dataSync()[0] as number
  );
  const p = [0, 1].map((cell) => {
    const z = logits.slice(cell * 4, cell * 4 + 4), m = Math.max(...z), e = z.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  });
  const ce = [0, 1].map((cell) =>
    -[0, 1, 2, 3].reduce((a, c) => a + (targets[cell * 4 + c] as number) * Math.log(p[cell]?.[c] as number), 0)
  );
  const dice = [0, 1].map((c) => {
    const inter = (p[0]?.[c] as number) * (targets[c] as number) + (p[1]?.[c] as number) * (targets[4 + c] as number);
    const total = (p[0]?.[c] as number) + (p[1]?.[c] as number) + (targets[c] as number) + (targets[4 + c] as number);
    return 1 - (2 * inter + 1) / (total + 1);
  }); // channels 0 and 1 are present; 2 and 3 are not
  const expected = (ce[0]! + ce[1]!) / 2 + (dice[0]! + dice[1]!) / 2;
  assert.ok(Math.abs(loss - expected) < 1e-5, `${loss} vs ${expected}`);
  const exact = tf.tidy(() =>
    typeLoss(
      tf.tensor4d([20, -20, -20, -20, -20, 20, -20, -20], [1, 1, 2, 4]),
      tf.tensor4d([1, 0, 0, 0, 0, 1, 0, 0], [1, 1, 2, 4]),
    )
      .dataSync()[0] as number
  );
  assert.ok(exact < 1e-4, `confident and exact: ${exact}`);
});
