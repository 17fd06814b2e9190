import assert from "node:assert/strict";
import type { Sample } from "../data/sample.ts";
import { classBalance } from "./train.ts";

/** A sample whose instances 1..n have the given classes (pixels are irrelevant to the count). */
const withClasses = (classes: number[]): Sample => ({
  id: "s",
  organ: "colon",
  height: 1,
  width: 1,
  image: new Uint8Array(3),
  instances: new Int32Array(1),
  classOf: Int32Array.from([-1, ...classes]),
});

Deno.test("classBalance: 1/√count per class over the training samples only; a class with no nuclei weighs 0", async () => {
  const samples = [withClasses([0, 0, 1, 0]), withClasses([0, 1, 1, 1, 1, 1]), withClasses([2, 2, 2])];
  // samples 0 and 1 train (class 0: 4, class 1: 6, class 2: 0); sample 2 is held out
  const weights = await classBalance([0, 1], (i) => Promise.resolve(samples[i] as Sample), 3);
  assert.deepEqual(weights, [1 / 2, 1 / Math.sqrt(6), 0]);
});
