import assert from "node:assert/strict";
import { syntheticSample } from "../data/synthetic.ts";
import { relabelContiguous } from "../data/sample.ts";
import { axisTiles, cropTile, predictTiled, type Tile, type TilePrediction } from "./tiling.ts";

Deno.test("axisTiles: owned regions partition the axis and stay overlap/2 away from inner borders", () => {
  for (const [tile, overlap] of [[256, 64], [256, 0], [64, 31], [10, 9]] as const) {
    for (let length = 1; length < 700; length += 7) {
      const tiles = axisTiles(length, tile, overlap);
      assert.equal(tiles[0]?.lo, 0);
      assert.equal(tiles.at(-1)?.hi, length);
      tiles.forEach((t, i) => {
        assert.ok(t.start >= 0 && (t.start + tile <= length || length < tile), `tile ${i} inside [0, ${length})`);
        assert.ok(t.lo < t.hi, `tile ${i} owns something`);
        if (i > 0) {
          assert.equal(t.lo, tiles[i - 1]?.hi, "owned regions are contiguous");
          assert.ok(t.lo - t.start >= Math.floor(overlap / 2), `margin before tile ${i}`);
        }
        if (i < tiles.length - 1) assert.ok(t.start + tile - t.hi >= Math.floor(overlap / 2), `margin after ${i}`);
      });
    }
  }
  assert.deepEqual(axisTiles(1000, 256, 64).map((t) => t.start), [0, 192, 384, 576, 744]);
  assert.throws(() => axisTiles(100, 64, 64), /overlap/);
});

Deno.test("cropTile mirrors past the image edge", () => {
  const rgb = Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => i); // [2, 3, 3]
  const t = cropTile(rgb, 2, 3, 0, 0, 4); // [4, 4, 3]
  const pixel = (y: number, x: number) => t[(y * 4 + x) * 3];
  assert.deepEqual([pixel(0, 0), pixel(0, 2), pixel(0, 3), pixel(1, 0), pixel(2, 0), pixel(3, 3)], [0, 6, 3, 9, 0, 12]);
});

/** Connected components (4-connected) of a boolean map, ids in raster order of first pixel. */
const components = (on: Uint8Array, height: number, width: number): Int32Array => {
  const out = new Int32Array(height * width), stack: number[] = [];
  let next = 0;
  for (let start = 0; start < on.length; start++) {
    if (!on[start] || out[start]) continue;
    out[start] = ++next;
    stack.push(start);
    while (stack.length > 0) {
      const p = stack.pop() as number, y = Math.floor(p / width), x = p % width;
      for (const [ny, nx] of [[y - 1, x], [y + 1, x], [y, x - 1], [y, x + 1]] as const) {
        const q = ny * width + nx;
        if (ny < 0 || nx < 0 || ny >= height || nx >= width || !on[q] || out[q]) continue;
        out[q] = next;
        stack.push(q);
      }
    }
  }
  return out;
};

/** A real (translation-equivariant) predictor: dark pixels, connected components, class by darkness. */
const darkPixels = (rgb: Uint8Array, height: number, width: number): TilePrediction => {
  const on = new Uint8Array(height * width);
  for (let p = 0; p < on.length; p++) {
    on[p] = (rgb[3 * p] as number) + (rgb[3 * p + 1] as number) + (rgb[3 * p + 2] as number) < 3 * 150 ? 1 : 0;
  }
  const instances = components(on, height, width);
  const n = instances.reduce((a, b) => Math.max(a, b), 0);
  return {
    instances,
    classOf: Int32Array.from({ length: n + 1 }, (_, i) => i === 0 ? -1 : i % 3),
    scores: new Float32Array(n + 1).fill(1),
  };
};

/** Per instance: sorted pixel list as a string key (exact pixel-set identity). */
const pixelSets = (p: { instances: Int32Array }) => {
  const sets = new Map<number, number[]>();
  p.instances.forEach((id, i) => {
    if (id !== 0) (sets.get(id) ?? sets.set(id, []).get(id) as number[]).push(i);
  });
  return sets;
};

const boxSide = (pixels: number[], width: number) => {
  const ys = pixels.map((p) => Math.floor(p / width)), xs = pixels.map((p) => p % width);
  return Math.max(Math.max(...ys) - Math.min(...ys), Math.max(...xs) - Math.min(...xs)) + 1;
};

const tiled = (rgb: Uint8Array, h: number, w: number, predict: (tile: Tile) => TilePrediction) =>
  predictTiled(rgb, h, w, (tiles) => Promise.resolve(tiles.map(predict)), { tile: 256, overlap: 64, batch: 3 });

Deno.test("stitching: a perfect tile predictor gives back every nucleus of a 1000×1000 image exactly", async () => {
  const s = syntheticSample(7, 0, { size: 1000 });
  const { height: h, width: w } = s;
  // the oracle sees what a perfect model sees in a tile: the truth cropped, nuclei cut at its border
  const result = await tiled(s.image, h, w, ({ y0, x0 }) => {
    const crop = new Int32Array(256 * 256);
    for (let y = 0; y < 256; y++) crop.set(s.instances.subarray((y0 + y) * w + x0, (y0 + y) * w + x0 + 256), y * 256);
    const { instances, oldIds } = relabelContiguous(crop);
    return {
      instances,
      classOf: Int32Array.from([-1, ...oldIds.map((id) => s.classOf[id] as number)]),
      scores: Float32Array.from([0, ...oldIds]), // the truth id rides along as the score
    };
  });
  const truth = pixelSets(s), got = pixelSets(result);
  assert.ok(truth.size > 300, `a dense image (${truth.size} nuclei)`);
  assert.equal(got.size, truth.size, "no nucleus lost or duplicated");
  for (const [id, pixels] of got) {
    const original = result.scores[id] as number;
    assert.deepEqual(pixels, truth.get(original), `nucleus ${original} whole and unchanged`);
    assert.equal(result.classOf[id], s.classOf[original], `nucleus ${original} keeps its class`);
  }
});

Deno.test("stitching: tiled and whole-image prediction agree on every nucleus (dark-pixel predictor)", async () => {
  const s = syntheticSample(3, 1, { size: 1000 });
  const { height: h, width: w } = s;
  const whole = darkPixels(s.image, h, w);
  const result = await tiled(s.image, h, w, (t) => darkPixels(t.rgb, 256, 256));
  const wholeSets = pixelSets(whole), got = pixelSets(result);
  const key = (pixels: number[]) => pixels.join(",");
  const gotKeys = new Set([...got.values()].map(key));
  // nuclei-sized components (side < overlap/2) must come back identical; larger clumps may be cut
  let small = 0;
  for (const pixels of wholeSets.values()) {
    if (boxSide(pixels, w) >= 32) continue;
    small++;
    assert.ok(gotKeys.has(key(pixels)), `component at pixel ${pixels[0]} is whole in the tiled result`);
  }
  assert.ok(small > 100, `enough components to test (${small})`);
  // and nothing spurious: every tiled instance is a whole-image component or a piece of a large one
  const wholeKeys = new Set([...wholeSets.values()].map(key));
  for (const pixels of got.values()) {
    if (wholeKeys.has(key(pixels))) continue;
    const owner = whole.instances[pixels[0] as number] as number;
    assert.ok(boxSide(wholeSets.get(owner) ?? [], w) >= 32, `instance at ${pixels[0]} is part of a large clump`);
  }
});

Deno.test("stitching: an image smaller than a tile is padded, and padding never reaches the output", async () => {
  const s = syntheticSample(1, 2, { size: 256 });
  const h = 100, w = 180, rgb = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) rgb.set(s.image.subarray(y * 256 * 3, (y * 256 + w) * 3), y * w * 3);
  const whole = darkPixels(rgb, h, w);
  const result = await tiled(rgb, h, w, (t) => darkPixels(t.rgb, 256, 256));
  assert.equal(result.instances.length, h * w);
  // mirror padding can join a component touching the edge with its mirror image: compare the rest
  const edge = (pixels: number[]) =>
    pixels.some((p) => Math.floor(p / w) === 0 || Math.floor(p / w) === h - 1 || p % w === 0 || p % w === w - 1);
  const got = new Set([...pixelSets(result).values()].map((p) => p.join(",")));
  for (const pixels of pixelSets(whole).values()) {
    if (!edge(pixels)) assert.ok(got.has(pixels.join(",")), `component at ${pixels[0]}`);
  }
});
