/** Confusion of matched nuclei on hand-made PanNuke-layout tiles with known matches. */
import assert from "node:assert/strict";
import { addConfusion, arrayConfusion, emptyConfusion, tileConfusion, tileOf } from "./confusion.ts";

const H = 8, W = 8, C = 6;

/** N empty tiles [N, 8, 8, 6] (background channel left 0: it is never read). */
const tiles = (n: number) => new Float64Array(n * H * W * C);

/** Paints id into channel c of tile n over rows [r0, r1) × columns [c0, c1). */
const paint = (
  data: Float64Array,
  n: number,
  c: number,
  id: number,
  [r0, r1]: [number, number],
  [c0, c1]: [number, number],
) => {
  for (let y = r0; y < r1; y++) for (let x = c0; x < c1; x++) data[((n * H + y) * W + x) * C + c] = id;
};

Deno.test("tileConfusion 8×8×6: a match, a class swap, a missed and a false nucleus", () => {
  const truth = tiles(1), pred = tiles(1);
  paint(truth, 0, 0, 1, [0, 3], [0, 3]); // A, class 0
  paint(truth, 0, 1, 2, [4, 7], [4, 7]); // B, class 1
  paint(truth, 0, 2, 3, [0, 2], [5, 8]); // C, class 2: nothing predicted there
  paint(pred, 0, 0, 5, [0, 3], [0, 2]); // A' class 0, IoU 6/9
  paint(pred, 0, 2, 9, [4, 7], [4, 7]); // B' same pixels as B, class 2
  paint(pred, 0, 3, 4, [6, 8], [0, 2]); // D, class 3: no truth there
  const c = tileConfusion(
    tileOf({ shape: [1, H, W, C], data: truth }, 0),
    tileOf({ shape: [1, H, W, C], data: pred }, 0),
    5,
  );
  assert.equal(c.tiles, 1);
  assert.deepEqual(c.matched, [
    [1, 0, 0, 0, 0],
    [0, 0, 1, 0, 0],
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
  ]);
  assert.deepEqual(c.missed, [0, 0, 1, 0, 0]);
  assert.deepEqual(c.falsePredictions, [0, 0, 0, 1, 0]);
});

Deno.test("tileConfusion: IoU exactly 0.5 is no match (pairs need IoU > 0.5)", () => {
  const truth = tiles(1), pred = tiles(1);
  paint(truth, 0, 1, 1, [0, 2], [0, 2]); // 4 px
  paint(pred, 0, 1, 1, [0, 2], [0, 1]); // 2 px inside: IoU 2/4
  const c = tileConfusion(
    tileOf({ shape: [1, H, W, C], data: truth }, 0),
    tileOf({ shape: [1, H, W, C], data: pred }, 0),
    2,
  );
  assert.deepEqual(c.matched, [[0, 0], [0, 0]]);
  assert.deepEqual(c.missed, [0, 1]);
  assert.deepEqual(c.falsePredictions, [0, 1]);
});

Deno.test("arrayConfusion [2,8,8,6]: sums tiles; the same id in two channels is two nuclei", () => {
  const truth = tiles(2), pred = tiles(2);
  // tile 0: id 1 in channel 0 and id 1 in channel 1 are different nuclei; both found with their class
  paint(truth, 0, 0, 1, [0, 3], [0, 3]);
  paint(truth, 0, 1, 1, [5, 8], [5, 8]);
  paint(pred, 0, 0, 1, [0, 3], [0, 3]);
  paint(pred, 0, 1, 1, [5, 8], [5, 8]);
  // tile 1: nothing predicted, one class-4 nucleus missed
  paint(truth, 1, 4, 7, [2, 5], [2, 5]);
  const c = arrayConfusion({ shape: [2, H, W, C], data: truth }, { shape: [2, H, W, C], data: pred }, 5);
  assert.equal(c.tiles, 2);
  assert.equal(c.matched[0]?.[0], 1);
  assert.equal(c.matched[1]?.[1], 1);
  assert.equal(c.matched.flat().reduce((a, b) => a + b, 0), 2);
  assert.deepEqual(c.missed, [0, 0, 0, 0, 1]);
  assert.deepEqual(c.falsePredictions, [0, 0, 0, 0, 0]);
});

Deno.test("tileOf: a view into the array, not a copy", () => {
  const data = tiles(3);
  const t = tileOf({ shape: [3, H, W, C], data }, 2);
  assert.equal([t.height, t.width, t.channels].join(), "8,8,6");
  assert.equal(t.data.length, H * W * C);
  data[2 * H * W * C] = 42;
  assert.equal(t.data[0], 42);
});

Deno.test("classes K=2 read channels 0–1 only; the other channels are ignored", () => {
  const truth = tiles(1), pred = tiles(1);
  paint(truth, 0, 3, 1, [0, 3], [0, 3]); // class 3: outside K = 2
  paint(pred, 0, 0, 1, [0, 3], [0, 3]);
  const c = tileConfusion(
    tileOf({ shape: [1, H, W, C], data: truth }, 0),
    tileOf({ shape: [1, H, W, C], data: pred }, 0),
    2,
  );
  assert.deepEqual(c.missed, [0, 0]);
  assert.deepEqual(c.falsePredictions, [1, 0]);
});

Deno.test("errors name the function and what was found", () => {
  const a = tileOf({ shape: [1, H, W, C], data: tiles(1) }, 0);
  const small = { height: 4, width: 4, channels: C, data: new Float64Array(4 * 4 * C) };
  assert.throws(() => tileConfusion(a, small, 5), /tileConfusion: tile: truth is 8×8, prediction 4×4/);
  assert.throws(() => tileConfusion(a, a, 7), /7 classes need as many channels/);
  assert.throws(() => addConfusion(emptyConfusion(2), emptyConfusion(3)), /addConfusion: 2 classes vs 3/);
  assert.throws(
    () => arrayConfusion({ shape: [1, H, W, C], data: tiles(1) }, { shape: [2, H, W, C], data: tiles(2) }, 5),
    /truth has 1 tiles, prediction 2/,
  );
});
