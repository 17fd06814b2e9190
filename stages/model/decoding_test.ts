import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { decodeInstances, defaultDecodeOptions } from "./decoding.ts";

await tf.setBackend("cpu");

Deno.test("decoding: confident queries become non-overlapping instances; no-object and weak queries are dropped", () => {
  // 4 queries, 2 classes + no-object; masks 4×4 upsampled to 8×8
  const big = 20, L = -20;
  const logits = tf.tensor2d([
    [big, 0, 0], // class 0, confident
    [0, big, 0], // class 1, confident
    [0, 0, big], // no object
    [0.1, 0, 0], // weak (≈ 0.37)
  ]);
  const m = (f: (y: number, x: number) => boolean) =>
    Array.from({ length: 16 }, (_, i) => (f(Math.floor(i / 4), i % 4) ? big : L));
  const masks = tf.tensor3d([m((_, x) => x < 2), m((_, x) => x >= 2), m(() => true), m(() => true)].flat(), [4, 4, 4]);
  const d = decodeInstances(logits, masks, 8, 8, { ...defaultDecodeOptions, score: "class" });
  assert.deepEqual(Array.from(d.classOf), [-1, 0, 1]);
  assert.equal(d.instances[0], 1);
  assert.equal(d.instances[7], 2);
  assert.equal(new Set(d.instances).size, 2, "every pixel belongs to one of the two instances");
  tf.dispose([logits, masks]);
});

Deno.test("decoding: a segment that keeps less than the overlap fraction of its mask is dropped", () => {
  const logits = tf.tensor2d([[10, 0], [9, 0]]); // both class 0, the first more confident
  const masks = tf.tensor3d([...Array(16).fill(10), ...Array.from({ length: 16 }, (_, i) => (i < 12 ? 10 : -10))], [
    2,
    4,
    4,
  ]);
  const d = decodeInstances(logits, masks, 4, 4, { ...defaultDecodeOptions, score: "class", overlapThreshold: 0.8 });
  assert.deepEqual(Array.from(d.classOf), [-1, 0], "the second query is covered by the first");
  assert.ok(d.instances.every((v) => v === 1));
  tf.dispose([logits, masks]);
});

Deno.test("decoding by objectness: a nucleus split between two classes is kept, labelled with the better class", () => {
  // p ≈ [0.45, 0.45, 0.1]: no class reaches 0.5, but 1 − p(no object) = 0.9 does
  const logits = tf.tensor2d([[Math.log(4.5), Math.log(4.5) - 0.01, 0], [0, 0, 5]]);
  const masks = tf.tensor3d([...Array(16).fill(10), ...Array(16).fill(10)], [2, 4, 4]);
  const classRule = { ...defaultDecodeOptions, score: "class" as const };
  assert.deepEqual(Array.from(decodeInstances(logits, masks, 4, 4, classRule).classOf), [-1], "class rule: dropped");
  const d = decodeInstances(logits, masks, 4, 4);
  assert.deepEqual(Array.from(d.classOf), [-1, 0]);
  assert.ok(Math.abs((d.scores[1] as number) - 0.9) < 1e-3, `score ${d.scores[1]}`);
  assert.ok(d.instances.every((v) => v === 1), "the no-object query (p ≈ 0.99) takes no pixel");
  tf.dispose([logits, masks]);
});
