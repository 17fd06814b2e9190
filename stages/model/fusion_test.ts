/**
 * Feature fusion: presence from class lists, the attention reads only the classes present (or all
 * when an image has none), shapes, and gradients through the text.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initializer } from "./layers.ts";
import { applyFusion, initFusion, presenceLogits, presenceOf } from "./fusion.ts";

await tf.setBackend("cpu");

Deno.test("presenceOf: 0/1 per image and class; out-of-range classes ignored", () => {
  assert.deepEqual(Array.from(presenceOf([Int32Array.of(2, 0, 2), Int32Array.of(), Int32Array.of(1, -1, 3)], 3)), [
    1,
    0,
    1,
    0,
    0,
    0,
    0,
    1,
    0,
  ]);
});

Deno.test("applyFusion: a pixel reads only the present classes' text; an image with none reads all; shapes kept", () => {
  const p = initFusion(initializer(3), 6, 8, 3);
  const levels = [
    tf.randomNormal([2, 2, 2, 8], 0, 1, "float32", 1),
    tf.randomNormal([2, 4, 4, 8], 0, 1, "float32", 2),
  ] as tf.Tensor4D[];
  const text = tf.randomNormal([3, 6], 0, 1, "float32", 3) as tf.Tensor2D; // [C, P]
  const changed = tf.tidy(() => tf.concat([tf.slice(text, [0, 0], [2, 6]), tf.fill([1, 6], 5)], 0)) as tf.Tensor2D; // class 2's text changed
  const present = Float32Array.of(1, 1, 0, 0, 0, 0); // image 0: classes 0 and 1; image 1: none
  const [a, b] = [applyFusion(p, 2, levels, text, present), applyFusion(p, 2, levels, changed, present)];
  assert.deepEqual(a.map((t) => t.shape), [[2, 2, 2, 8], [2, 4, 4, 8]]);
  for (let l = 0; l < 2; l++) {
    const [x, y] = [a[l] as tf.Tensor4D, b[l] as tf.Tensor4D];
    const image = (t: tf.Tensor4D, i: number) => tf.slice(t, [i, 0, 0, 0], [1, -1, -1, -1]).dataSync();
    const diff0 = Math.max(...image(x, 0).map((v, k) => Math.abs(v - (image(y, 0)[k] as number))));
    const diff1 = Math.max(...image(x, 1).map((v, k) => Math.abs(v - (image(y, 1)[k] as number))));
    assert.ok(diff0 < 1e-7, `level ${l}: image 0 ignores an absent class's text (${diff0})`);
    assert.ok(diff1 > 1e-5, `level ${l}: image 1 (no class present) reads every class (${diff1})`);
  }
  assert.deepEqual(presenceLogits(p, levels[0] as tf.Tensor4D).shape, [2, 3]);
  assert.throws(() => applyFusion(p, 2, levels, text, new Float32Array(5)), /presence must be \[2·3\]/);
  tf.dispose([...levels, text, changed, ...a, ...b]);
});

Deno.test("applyFusion: gradients reach the text, the projection and the attention", () => {
  const p = initFusion(initializer(4), 6, 8, 3);
  const level = tf.randomNormal([1, 2, 2, 8], 0, 1, "float32", 5) as tf.Tensor4D;
  const text = tf.randomNormal([3, 6], 0, 1, "float32", 6) as tf.Tensor2D;
  const f = (t: tf.Tensor, w: tf.Tensor, q: tf.Tensor) =>
    tf.sum(tf.square(
      (applyFusion(
        { ...p, text: { ...p.text, weight: w }, cross: { ...p.cross, q: { ...p.cross.q, weight: q } } },
        2,
        [level],
        t as tf.Tensor2D,
        Float32Array.of(1, 0, 1),
      )[0]) as tf.Tensor4D,
    ));
  const grads = tf.grads(f)([text, p.text.weight, p.cross.q.weight]);
  grads.forEach((g, i) => {
    const v = g.dataSync();
    assert.ok(v.every(Number.isFinite) && v.some((x) => x !== 0), `gradient ${i} is finite and non-zero`);
  });
  const textGrad = grads[0]?.arraySync() as number[][];
  assert.ok(textGrad[1]?.every((x) => x === 0), "an absent class's text gets no gradient");
  tf.dispose([level, text, ...grads]);
});
