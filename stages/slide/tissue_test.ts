import assert from "node:assert/strict";
import sharp from "sharp";
import type { TilePlacement } from "../predict/tiling.ts";
import {
  fillSmallHoles,
  otsuThreshold,
  removeSmallObjects,
  saturationScores,
  tissueMask,
  tissueOverlayPng,
  tissueTiles,
} from "./tissue.ts";

type Rgb = readonly [number, number, number];

// deterministic noise in [−4, 4] per pixel and channel, so Otsu sees spread, not spikes
const noise = (i: number) => ((Math.imul(i + 1, 2654435761) >>> 0) % 9) - 4;
const clamp = (v: number) => Math.max(0, Math.min(255, v));

/** An [h, w, 3] image: `paint` gives each pixel's colour (undefined: near-white glass), plus noise. */
const thumbnail = (height: number, width: number, paint: (y: number, x: number) => Rgb | undefined, jitter = true) => {
  const rgb = new Uint8Array(height * width * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = paint(y, x) ?? [243, 243, 243], i = (y * width + x) * 3;
      for (let ch = 0; ch < 3; ch++) rgb[i + ch] = clamp((c[ch] as number) + (jitter ? noise(i + ch) : 0));
    }
  }
  return rgb;
};

const PINK: Rgb = [232, 150, 200], PURPLE: Rgb = [150, 90, 170];
const inDisc = (y: number, x: number, cy: number, cx: number, r: number) =>
  (y + 0.5 - cy) ** 2 + (x + 0.5 - cx) ** 2 <= r * r;

const iou = (a: Uint8Array, b: Uint8Array) => {
  let both = 0, either = 0;
  for (let i = 0; i < a.length; i++) {
    const [u, v] = [a[i] as number, b[i] as number];
    both += u & v, either += u | v;
  }
  return either === 0 ? 1 : both / either;
};

const sum = (m: Uint8Array) => m.reduce((s, v) => s + v, 0);

Deno.test("otsuThreshold: hand-computed splits of tiny histograms", () => {
  // values {0, 0, 1, 3}: k=0 → 1, k=1 → 4/3, k=2 → 4/3 (empty bin 2): the tie [1, 2] → its middle, 1
  assert.equal(otsuThreshold([2, 1, 0, 1]), 1);
  // values {0, 1, 1, 2, 2, 2}: k=0 → 0.356, k=1 → 0.444; k ≥ 2 leaves the upper class empty
  assert.equal(otsuThreshold([1, 2, 3, 0]), 1);
  // two spikes at 10 and 200: every k in [10, 199] ties, the middle one is taken
  const bimodal = new Array(256).fill(0);
  bimodal[10] = 100, bimodal[200] = 50;
  assert.equal(otsuThreshold(bimodal), 104);
});

Deno.test("otsuThreshold: no split for a histogram of one value, of nothing, or empty", () => {
  assert.equal(otsuThreshold([0, 0, 5, 0]), null);
  assert.equal(otsuThreshold([0, 0, 0]), null);
  assert.equal(otsuThreshold([]), null);
  assert.throws(() => otsuThreshold([1, -1]), RangeError);
});

Deno.test("saturationScores: (max − min)/max in 0–255, 0 for white and grey, −1 below the black level", () => {
  const rgb = Uint8Array.from([255, 255, 255, 200, 100, 100, 128, 128, 128, 20, 10, 10, 0, 0, 0]);
  assert.deepEqual([...saturationScores(rgb, 1, 5)], [0, 128, 0, -1, -1]);
  assert.deepEqual([...saturationScores(rgb, 1, 5, 0)], [0, 128, 0, 128, 0]);
});

Deno.test("thumbnail 120×160, pink and purple blobs on noisy glass: the mask covers the blobs (IoU ≥ 0.95)", () => {
  const [h, w] = [120, 160];
  const blob = (y: number, x: number) =>
    inDisc(y, x, 40, 50, 25)
      ? PINK
      : ((y + 0.5 - 75) / 22) ** 2 + ((x + 0.5 - 115) / 32) ** 2 <= 1
      ? PURPLE
      : undefined;
  const truth = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) truth[y * w + x] = blob(y, x) === undefined ? 0 : 1;
  const { mask, threshold, fraction } = tissueMask(thumbnail(h, w, blob), h, w);
  assert.ok(iou(mask, truth) >= 0.95, `IoU ${iou(mask, truth)}`);
  assert.ok(threshold >= 0.05 && threshold <= 0.25, `threshold ${threshold}`);
  assert.equal(mask[5 * w + 150], 0, "glass far from the blobs is not tissue");
  assert.ok(Math.abs(fraction - sum(truth) / (h * w)) < 0.01, `fraction ${fraction}`);
});

Deno.test("holes: one of 9 pixels inside a blob is filled, one of 400 kept; background at the border never", () => {
  const [h, w] = [100, 100];
  const paint = (y: number, x: number): Rgb | undefined => {
    if (y < 10 || y >= 90 || x < 10 || x >= 90) return undefined;
    if (y >= 30 && y < 33 && x >= 30 && x < 33) return undefined; // 3×3 hole
    if (y >= 55 && y < 75 && x >= 55 && x < 75) return undefined; // 20×20 hole
    return PINK;
  };
  const { mask } = tissueMask(thumbnail(h, w, paint), h, w, { maxHoleArea: 100 });
  assert.equal(mask[31 * w + 31], 1, "small hole filled");
  assert.equal(mask[65 * w + 65], 0, "big hole kept");
  assert.equal(sum(mask), 80 * 80 - 400);
  const filledAll = tissueMask(thumbnail(h, w, paint), h, w, { maxHoleArea: 1e9 }).mask;
  assert.equal(sum(filledAll), 80 * 80, "every enclosed hole filled, the outer background left alone");
});

Deno.test("specks of 4 pixels are removed below minObjectArea 16, an object of 25 stays", () => {
  const [h, w] = [60, 60];
  const paint = (y: number, x: number): Rgb | undefined => {
    if (y >= 20 && y < 25 && x >= 20 && x < 25) return PURPLE;
    const specks: Array<[number, number]> = [[5, 5], [5, 50], [50, 8], [45, 45]];
    const speck = specks.some(([sy, sx]) => y >= sy && y < sy + 2 && x >= sx && x < sx + 2);
    return speck ? PINK : undefined;
  };
  const { mask } = tissueMask(thumbnail(h, w, paint), h, w, { minObjectArea: 16 });
  assert.equal(sum(mask), 25);
  assert.equal(mask[22 * w + 22], 1);
  assert.equal(mask[5 * w + 5], 0);
});

Deno.test("removeSmallObjects counts diagonal neighbours as one object; fillSmallHoles needs a closed hole", () => {
  // two 3×3 squares touching at a corner: one object of 18 pixels
  const [h, w] = [8, 8], m = new Uint8Array(h * w);
  for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) m[(1 + y) * w + 1 + x] = 1, m[(4 + y) * w + 4 + x] = 1;
  assert.equal(sum(removeSmallObjects(m, h, w, 12)), 18);
  assert.equal(sum(removeSmallObjects(m, h, w, 19)), 0);
  // a ring closed only by a diagonal step still encloses its centre (4-connected background)
  const ring = Uint8Array.from([
    0,
    1,
    0,
    1,
    0,
    1,
    0,
    1,
    0,
  ]);
  assert.equal(fillSmallHoles(ring, 3, 3, 2)[4], 1);
  assert.deepEqual([...fillSmallHoles(ring, 3, 3, 1)], [...ring], "a hole of 1 is not below maxArea 1");
});

Deno.test("a black border and a black pen line are not tissue", () => {
  const [h, w] = [80, 80];
  const paint = (y: number, x: number): Rgb | undefined => {
    if (y < 4 || x < 4 || y >= 76 || x >= 76) return [3, 3, 3];
    if (y >= 60 && y < 63 && x >= 10 && x < 70) return [15, 12, 22]; // dark pen: saturation 0.45
    return inDisc(y, x, 30, 40, 15) ? PINK : undefined;
  };
  const rgb = thumbnail(h, w, paint, false);
  const { mask } = tissueMask(rgb, h, w);
  assert.equal(mask[61 * w + 40], 0, "pen line");
  assert.equal(mask[1 * w + 40], 0, "border");
  assert.equal(mask[30 * w + 40], 1, "blob");
  const blob = new Uint8Array(h * w).map((_, i) => (inDisc(Math.floor(i / w), i % w, 30, 40, 15) ? 1 : 0));
  assert.ok(iou(mask, blob) >= 0.95, `IoU ${iou(mask, blob)}`);
  const withPen = tissueMask(rgb, h, w, { blackLevel: 0 }).mask;
  assert.equal(withPen[61 * w + 40], 1, "without the black level the dark pen counts as tissue");
});

Deno.test("constant images: white and glass noise give no tissue, constant pink is all tissue", () => {
  const [h, w] = [16, 16];
  const white = tissueMask(new Uint8Array(h * w * 3).fill(255), h, w);
  assert.equal(white.fraction, 0);
  assert.equal(white.threshold, 0.05, "no Otsu split: the lower end of otsuRange");
  assert.equal(tissueMask(thumbnail(h, w, () => undefined), h, w).fraction, 0, "Otsu's split of noise is clamped");
  assert.equal(tissueMask(thumbnail(h, w, () => PINK, false), h, w).fraction, 1);
  assert.equal(tissueMask(new Uint8Array(0), 0, 0).fraction, 0);
});

Deno.test("a fixed threshold skips Otsu: 0.9 finds nothing, 0.3 the blob; out of [0, 1] is a RangeError", () => {
  const [h, w] = [40, 40], paint = (y: number, x: number) => (inDisc(y, x, 20, 20, 10) ? PINK : undefined);
  const rgb = thumbnail(h, w, paint);
  const none = tissueMask(rgb, h, w, { threshold: 0.9 });
  assert.deepEqual([none.threshold, none.fraction], [0.9, 0]);
  const blob = tissueMask(rgb, h, w, { threshold: 0.3 });
  assert.equal(blob.threshold, 0.3);
  assert.equal(blob.mask[20 * w + 20], 1);
  assert.equal(blob.mask[2 * w + 2], 0);
  assert.throws(() => tissueMask(rgb, h, w, { threshold: 1.5 }), RangeError);
  assert.throws(() => tissueMask(rgb, h, w + 1), RangeError);
});

Deno.test("tissueTiles: mask 4×4 with its top-left quarter tissue, slide 400×400, tiles 200 overlap 100", () => {
  const mask = Uint8Array.from([
    1,
    1,
    0,
    0,
    1,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
  ]);
  // owned regions [0, 150), [150, 250), [250, 400) per axis; tissue is slide [0, 200)²
  const kept = tissueTiles(mask, 4, 4, 400, 400, { tile: 200, overlap: 100 }, 0);
  assert.deepEqual(kept.map((t) => [t.y0, t.x0, t.tissue]), [[0, 0, 1], [0, 100, 0.5], [100, 0, 0.5], [
    100,
    100,
    0.25,
  ]]);
  assert.deepEqual(kept[1]?.own, { y: [0, 150], x: [150, 250] });
  const some = tissueTiles(mask, 4, 4, 400, 400, { tile: 200, overlap: 100 }, 0.3);
  assert.deepEqual(some.map((t) => [t.y0, t.x0]), [[0, 0], [0, 100], [100, 0]]);
  const none = tissueTiles(new Uint8Array(16), 4, 4, 400, 400, { tile: 200, overlap: 0 }, 0);
  assert.deepEqual(none, []);
});

Deno.test("tissueTiles: cells of a non-integer scale are weighted by the area they share with a region", () => {
  // mask 3×3 over a 10×10 slide: cells of 10/3; only cell (0, 0) is tissue
  const mask = Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0]);
  const place: TilePlacement = { y0: 0, x0: 0, own: { y: [0, 5], x: [0, 5] } };
  const [t] = tissueTiles(mask, 3, 3, 10, 10, [place], 0);
  assert.ok(t !== undefined && Math.abs(t.tissue - (10 / 3) ** 2 / 25) < 1e-12, `tissue ${t?.tissue}`);
  assert.throws(() => tissueTiles(mask, 3, 3, 10, 10, [place], 2), RangeError);
});

Deno.test("tissueOverlayPng: a PNG of the thumbnail's size, tissue tinted green, its outline dark green", async () => {
  const [h, w] = [20, 30], rgb = new Uint8Array(h * w * 3).fill(200), mask = new Uint8Array(h * w);
  for (let y = 5; y < 15; y++) for (let x = 5; x < 20; x++) mask[y * w + x] = 1;
  const png = await tissueOverlayPng(rgb, h, w, mask);
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ["png", w, h]);
  const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const at = (y: number, x: number) => [...data.subarray((y * w + x) * 3, (y * w + x) * 3 + 3)];
  assert.deepEqual(at(0, 0), [200, 200, 200], "background unchanged");
  assert.deepEqual(at(10, 10), [130, 219, 130], "0.65 · 200 + 0.35 · (0, 255, 0)");
  assert.deepEqual(at(5, 10), [0, 120, 0], "outline");
});
