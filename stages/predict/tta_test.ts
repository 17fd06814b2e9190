import assert from "node:assert/strict";
import { centerTargets } from "../model/centers.ts";
import { denseTargets } from "../model/dense.ts";
import {
  averageMaps,
  DIHEDRAL,
  flipInstances,
  flipMapsBack,
  FLIPS,
  flipTile,
  unflipTile,
  variantsOf,
  voteInstances,
} from "./tta.ts";

Deno.test("flipTile t=3 channels=2: left–right, top–bottom and both; each flip is its own inverse", () => {
  const rgb = Uint8Array.from({ length: 18 }, (_, i) => i); // pixel p holds (2p, 2p + 1)
  const pixel = (a: Uint8Array, y: number, x: number) => [a[(y * 3 + x) * 2], a[(y * 3 + x) * 2 + 1]];
  const [, lr, tb, both] = FLIPS.map((f) => flipTile(rgb, 3, 2, f));
  assert.deepEqual(pixel(lr as Uint8Array, 0, 0), pixel(rgb, 0, 2));
  assert.deepEqual(pixel(tb as Uint8Array, 0, 1), pixel(rgb, 2, 1));
  assert.deepEqual(pixel(both as Uint8Array, 0, 0), pixel(rgb, 2, 2));
  for (const f of FLIPS) assert.deepEqual(flipTile(flipTile(rgb, 3, 2, f), 3, 2, f), rgb);
});

Deno.test("DIHEDRAL: the eight symmetries of the square, each undone by unflipTile; a transpose swaps x and y", () => {
  const rgb = Uint8Array.from({ length: 18 }, (_, i) => i); // 3×3, pixel p holds (2p, 2p + 1)
  const views = DIHEDRAL.map((f) => Array.from(flipTile(rgb, 3, 2, f)).join());
  assert.equal(new Set(views).size, 8, "eight different views");
  for (const f of DIHEDRAL) assert.deepEqual(unflipTile(flipTile(rgb, 3, 2, f), 3, 2, f), rgb);
  const pixel = (a: Uint8Array, y: number, x: number) => [a[(y * 3 + x) * 2], a[(y * 3 + x) * 2 + 1]];
  const transposed = flipTile(rgb, 3, 2, { x: false, y: false, transpose: true });
  assert.deepEqual(pixel(transposed, 0, 2), pixel(rgb, 2, 0));
  // left–right flip then transpose: a 90° rotation (counter-clockwise): the top-right corner goes to the top left
  const rotated = flipTile(rgb, 3, 2, { x: true, y: false, transpose: true });
  assert.deepEqual(pixel(rotated, 0, 0), pixel(rgb, 0, 2));
  assert.deepEqual(pixel(rotated, 2, 0), pixel(rgb, 0, 0));
  assert.equal(variantsOf(undefined).length, 1);
  assert.equal(variantsOf({ votes: 2 }).length, 4);
  assert.equal(variantsOf({ average: true }).length, 4);
  assert.equal(variantsOf({ average: true, rot90: true }).length, 8);
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

/**
 * A 16×16 instance map with three nuclei of different shapes, none symmetric under a flip; no centroid sits on a
 * half cell of the stride-4 grid, where the centre target's peak cell (a rounding) would differ between flips.
 */
const NUCLEI = (() => {
  const map = new Int32Array(16 * 16);
  const paint = (id: number, y0: number, y1: number, x0: number, x1: number) => {
    for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) map[y * 16 + x] = id;
  };
  paint(1, 1, 4, 2, 7); // a wide box in the top left
  paint(1, 5, 5, 2, 3); // with a foot: its centroid off the box's centre
  paint(2, 9, 13, 10, 12); // a tall box in the bottom right
  paint(3, 10, 12, 1, 4); // touching nothing, bottom left
  return map;
})();

const close = (actual: ArrayLike<number>, expected: ArrayLike<number>, what: string) => {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs((actual[i] as number) - (expected[i] as number)) < 1e-5,
      `${what}[${i}]: ${actual[i]} ≠ ${expected[i]}`,
    );
  }
};

Deno.test("flipMapsBack: the targets of a flipped tile, flipped back, are the tile's own (distance signs turned)", () => {
  // the dense maps at stride 2 (8×8×3) and the centres at stride 4 (4×4), as the conv preset predicts them
  const own = { dense: denseTargets(NUCLEI, 16, 16, 2), centers: centerTargets(NUCLEI, 16, 16, 4), ch: 4, cw: 4 };
  for (const flip of FLIPS) {
    const flipped = flipTile(NUCLEI, 16, 1, flip);
    const maps = { dense: denseTargets(flipped, 16, 16, 2), centers: centerTargets(flipped, 16, 16, 4), ch: 4, cw: 4 };
    const back = flipMapsBack(maps, 8, 8, flip);
    close(back.dense, own.dense, `dense, flip ${JSON.stringify(flip)}`);
    close(back.centers ?? [], own.centers, `centres, flip ${JSON.stringify(flip)}`);
  }
  // the transposed variants too: the two distance maps swap
  const square = { dense: denseTargets(NUCLEI, 16, 16, 2), centers: centerTargets(NUCLEI, 16, 16, 4), ch: 4, cw: 4 };
  for (const flip of DIHEDRAL.slice(4)) {
    const seen = flipTile(NUCLEI, 16, 1, flip);
    const back = flipMapsBack(
      { dense: denseTargets(seen, 16, 16, 2), centers: centerTargets(seen, 16, 16, 4), ch: 4, cw: 4 },
      8,
      8,
      flip,
    );
    close(back.dense, square.dense, `dense, variant ${JSON.stringify(flip)}`);
    close(back.centers ?? [], square.centers, `centres, variant ${JSON.stringify(flip)}`);
  }
  assert.throws(
    () => flipMapsBack({ dense: new Float32Array(8 * 4 * 3) }, 8, 4, { x: false, y: false, transpose: true }),
    /square/,
  );
  // without the sign turn the horizontal map of an x flip would be the negative of the tile's
  const lr = flipMapsBack({ dense: denseTargets(flipTile(NUCLEI, 16, 1, FLIPS[1]), 16, 16, 2) }, 8, 8, FLIPS[1]);
  const h = Array.from(lr.dense).filter((_, i) => i % 3 === 1);
  assert.ok(h.some((v) => Math.abs(v) > 0.5), "the horizontal map has large offsets to turn");
});

Deno.test("averageMaps: the element-wise mean of every map; the flips of a tile's targets average to them", () => {
  const a = { dense: [0, 1, 2], types: [1, 1], centers: [4], ch: 1, cw: 1 };
  const b = { dense: [2, 3, 4], types: [3, 0], centers: [0], ch: 1, cw: 1 };
  const mean = averageMaps([a, b]);
  assert.deepEqual(Array.from(mean.dense), [1, 2, 3]);
  assert.deepEqual(Array.from(mean.types ?? []), [2, 0.5]);
  assert.deepEqual(Array.from(mean.centers ?? []), [2]);
  assert.deepEqual([mean.ch, mean.cw], [1, 1]);
  assert.throws(() => averageMaps([a, { dense: [1, 2] }]), /differ/);
  const own = denseTargets(NUCLEI, 16, 16, 2);
  const back = FLIPS.map((f) => flipMapsBack({ dense: denseTargets(flipTile(NUCLEI, 16, 1, f), 16, 16, 2) }, 8, 8, f));
  close(averageMaps(back).dense, own, "mean of the four flips");
  const eight = DIHEDRAL.map((f) =>
    flipMapsBack({ dense: denseTargets(flipTile(NUCLEI, 16, 1, f), 16, 16, 2) }, 8, 8, f)
  );
  close(averageMaps(eight).dense, own, "mean of the eight symmetries");
});
