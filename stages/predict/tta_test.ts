import assert from "node:assert/strict";
import { flipInstances, FLIPS, flipTile, voteInstances } from "./tta.ts";

Deno.test("flipTile t=3 channels=2: left–right, top–bottom and both; each flip is its own inverse", () => {
  const rgb = Uint8Array.from({ length: 18 }, (_, i) => i); // pixel p holds (2p, 2p + 1)
  const pixel = (a: Uint8Array, y: number, x: number) => [a[(y * 3 + x) * 2], a[(y * 3 + x) * 2 + 1]];
  const [, lr, tb, both] = FLIPS.map((f) => flipTile(rgb, 3, 2, f));
  assert.deepEqual(pixel(lr as Uint8Array, 0, 0), pixel(rgb, 0, 2));
  assert.deepEqual(pixel(tb as Uint8Array, 0, 1), pixel(rgb, 2, 1));
  assert.deepEqual(pixel(both as Uint8Array, 0, 0), pixel(rgb, 2, 2));
  for (const f of FLIPS) assert.deepEqual(flipTile(flipTile(rgb, 3, 2, f), 3, 2, f), rgb);
});

Deno.test("voteInstances: a nucleus kept when enough variants find it (IoU > 0.5), with the variants' majority class", () => {
  // 1×8 tile: base has nuclei 1 (pixels 0–2), 2 (pixel 4), 3 (pixels 6–7)
  const base = {
    instances: Int32Array.from([1, 1, 1, 0, 2, 0, 3, 3]),
    classOf: [-1, 0, 1, 2],
    scores: [0, 0.9, 0.8, 0.7],
  };
  // variant A finds nucleus 1 (IoU 2/3) as class 1 and nucleus 3 exactly as class 2; variant B finds 1 as class 1
  const a = {
    instances: Int32Array.from([5, 5, 0, 0, 0, 0, 2, 2]),
    classOf: [-1, 2, 2, 0, 0, 1],
    scores: [0, 1, 1, 1, 1, 1],
  };
  const b = { instances: Int32Array.from([1, 1, 1, 1, 0, 0, 0, 0]), classOf: [-1, 1], scores: [0, 1] };
  const voted = voteInstances([base, a, b], 2);
  // nucleus 1: found by base (0), A (1), B (IoU 3/4, class 1) → class 1; nucleus 2: only base → dropped;
  // nucleus 3: base and A → kept, class 2
  assert.deepEqual(Array.from(voted.instances), [1, 1, 1, 0, 0, 0, 2, 2]);
  assert.deepEqual(Array.from(voted.classOf), [-1, 1, 2]);
  assert.deepEqual(Array.from(voted.scores).map((s) => Number(s.toFixed(2))), [0, 0.9, 0.7]);
  // one vote: the plain prediction unchanged (classes by majority, ties to the plain one)
  const all = voteInstances([base, a, b], 1);
  assert.deepEqual(Array.from(all.instances), Array.from(base.instances));
  assert.deepEqual(Array.from(all.classOf), [-1, 1, 1, 2]);
});

Deno.test("flipInstances maps a flipped tile's prediction back onto the tile", () => {
  const p = { instances: Int32Array.from([1, 0, 0, 0]), classOf: [-1, 3], scores: [0, 1] };
  assert.deepEqual(Array.from(flipInstances(p, 2, FLIPS[3]).instances), [0, 0, 0, 1]);
});
