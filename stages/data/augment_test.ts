import assert from "node:assert/strict";
import { augment, crop, flip, focusedCrop, hedJitter, rot90 } from "./augment.ts";
import { mulberry32 } from "./random.ts";
import type { Sample } from "./sample.ts";

/** A 5×7 (H×W) sample: three instances of classes 2, 0, 1 and a position-coded image. */
const sample = (): Sample => {
  const h = 5, w = 7, instances = new Int32Array(h * w);
  [[0, 0], [0, 1], [1, 0]].forEach(([y, x]) => (instances[(y as number) * w + (x as number)] = 1));
  [[2, 3], [2, 4], [3, 4]].forEach(([y, x]) => (instances[(y as number) * w + (x as number)] = 2));
  [[4, 6], [3, 6]].forEach(([y, x]) => (instances[(y as number) * w + (x as number)] = 3));
  const image = Uint8Array.from({ length: h * w * 3 }, (_, i) => (i * 5) % 251);
  return { id: "s", organ: "colon", height: h, width: w, image, instances, classOf: Int32Array.from([-1, 2, 0, 1]) };
};

/** For every pixel, (image RGB, class of its instance): must be preserved as a multiset by geometry. */
const pixelClasses = (s: Sample) =>
  Array.from(
    s.instances,
    (id, i) => `${s.image[i * 3]},${s.image[i * 3 + 1]},${s.image[i * 3 + 2]}:${id === 0 ? "bg" : s.classOf[id]}`,
  ).sort();

Deno.test("flip twice and rot90 four times are the identity; image and mask move together", () => {
  const s = sample();
  assert.deepEqual(flip(flip(s, true), true), s);
  assert.deepEqual(flip(flip(s, false), false), s);
  assert.deepEqual(rot90(s, 4), s);
  const r = rot90(s, 1);
  assert.deepEqual([r.height, r.width], [7, 5]);
  // numpy rot90 (counter-clockwise): new[y][x] = old[x][W - 1 - y]; old (0,0) → new (6, 0)
  assert.equal(r.instances[6 * 5 + 0], 1);
  for (const t of [flip(s, true), flip(s, false), r, rot90(s, 3)]) assert.deepEqual(pixelClasses(t), pixelClasses(s));
});

Deno.test("crop [2..5)×[3..7) relabels the surviving instances 1..n and keeps their classes", () => {
  const c = crop(sample(), 2, 3, 3, 4);
  assert.deepEqual([c.height, c.width], [3, 4]);
  assert.deepEqual(Array.from(c.instances), [1, 1, 0, 0, 0, 1, 0, 2, 0, 0, 0, 2]);
  assert.deepEqual(Array.from(c.classOf), [-1, 0, 1]);
  assert.throws(() => crop(sample(), 3, 3, 3, 4), /does not fit/);
});

Deno.test("HED jitter with α = 1, β = 0 leaves the image within ±1; stronger hematoxylin darkens", () => {
  const s = sample();
  const same = hedJitter(s, [1, 1, 1], [0, 0, 0]);
  assert.ok(same.image.every((v, i) => Math.abs(v - (s.image[i] as number)) <= 1));
  const darker = hedJitter(s, [1.5, 1, 1], [0, 0, 0]);
  const sum = (x: Uint8Array) => x.reduce((a, b) => a + b, 0);
  assert.ok(sum(darker.image) < sum(s.image));
  assert.deepEqual(darker.instances, s.instances);
});

Deno.test("augment is a pure function of the RNG seed", () => {
  const options = { crop: 4, flips: true, rot90: true, hedSigma: 0.05 };
  const a = augment(sample(), mulberry32(3), options), b = augment(sample(), mulberry32(3), options);
  assert.deepEqual(a, b);
  assert.deepEqual([a.height, a.width], [4, 4]);
  const seen = new Set(
    Array.from({ length: 20 }, (_, k) => augment(sample(), mulberry32(k), options).instances.join()),
  );
  assert.ok(seen.size > 5, "different seeds give different augmentations");
});

Deno.test("focusedCrop: the crop holds the drawn nucleus's centroid; class weights choose which; none of positive weight → undefined", () => {
  const s = sample(); // nuclei of classes 2 (top-left), 0 (middle), 1 (right edge)
  const centroidOf = { 2: [0, 0], 0: [2, 4], 1: [4, 6] } as const; // rounded centroids (y, x)
  for (const [cls, [cy, cx]] of Object.entries(centroidOf)) {
    const weights = [0, 0, 0];
    weights[Number(cls)] = 1;
    const rng = mulberry32(7);
    for (let t = 0; t < 20; t++) {
      const at = focusedCrop(s, rng, 3, 3, weights);
      assert.ok(at !== undefined);
      assert.ok(at.top >= 0 && at.top + 3 <= 5 && at.left >= 0 && at.left + 3 <= 7, `${JSON.stringify(at)} fits`);
      assert.ok(cy >= at.top && cy < at.top + 3 && cx >= at.left && cx < at.left + 3, `class ${cls} at ${cy},${cx}`);
    }
  }
  assert.equal(focusedCrop(s, mulberry32(1), 3, 3, [0, 0, 0]), undefined);
  // a missing weight counts 1: only class 2 (index 2 absent from [0, 0]) can be drawn
  const at = focusedCrop(s, mulberry32(2), 3, 3, [0, 0]);
  assert.ok(at !== undefined && at.top === 0 && at.left === 0);
});

Deno.test("augment: focus 0 or absent draws the same crops as before (the random stream is unchanged)", () => {
  const big = { ...sample() };
  const a = augment(big, mulberry32(3), { crop: 3, hedSigma: 0 });
  const b = augment(big, mulberry32(3), { crop: 3, hedSigma: 0, focus: { probability: 0, classWeights: [1] } });
  assert.deepEqual(a, b);
  const focused = augment(big, mulberry32(3), {
    crop: 3,
    hedSigma: 0,
    focus: { probability: 1, classWeights: [0, 1, 0] },
  });
  // class 1 is the right-edge nucleus: a focused crop keeps it
  assert.ok(Array.from(focused.classOf).includes(1), `${focused.classOf}`);
});
