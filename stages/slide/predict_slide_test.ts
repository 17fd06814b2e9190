/**
 * The parts of predict_slide.ts that need no model: which resolution and level a slide is read at, the
 * resampled source against a whole-image resize, the thumbnail, and streamed nuclei in level-0 pixels. The whole
 * path, model included, is tested through the CLI (tests/predict_slide_cli_test.ts).
 */
import assert from "node:assert/strict";
import sharp from "sharp";
import { FEATURE_NAMES, maskFeatures } from "../attributes/mask_features.ts";
import {
  bandFeatures,
  readPlan,
  resampledSource,
  SLIDE_COLUMNS,
  slideNucleus,
  slideResolution,
  slideThumbnail,
} from "./predict_slide.ts";
import type { ImageSource, SlideLevel } from "./source.ts";

/** An in-memory pyramid: `pyramid[i]` is level i's RGB [h, w, 3]; outside is white, like the real readers. */
const memorySource = (pyramid: ReadonlyArray<{ rgb: Uint8Array; level: SlideLevel }>): ImageSource => ({
  path: "memory",
  reader: "memory",
  levels: pyramid.map((p) => p.level),
  properties: {},
  associated: [],
  readRegion: (x, y, level, w, h) => {
    const { rgb, level: l } = pyramid[level] as { rgb: Uint8Array; level: SlideLevel };
    const out = new Uint8Array(w * h * 3).fill(255);
    const lx = Math.round(x / l.downsample), ly = Math.round(y / l.downsample);
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const sx = lx + c, sy = ly + r;
        if (sx < 0 || sy < 0 || sx >= l.width || sy >= l.height) continue;
        out.set(rgb.subarray((sy * l.width + sx) * 3, (sy * l.width + sx) * 3 + 3), (r * w + c) * 3);
      }
    }
    return Promise.resolve(out);
  },
  readAssociated: () => Promise.reject(new Error("none")),
  close: () => {},
});

/** Smooth blobs (a resize of them is well defined to within a grey level or two), [h, w, 3]. */
const blobs = (w: number, h: number) => {
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = 128 + 100 * Math.sin(x / 9) * Math.cos(y / 7);
      rgb.set([Math.round(v), Math.round(255 - v), Math.round((x * 255) / w)], (y * w + x) * 3);
    }
  }
  return rgb;
};

Deno.test("slideResolution: --mpp over the file's mpp over its objective power over the model's", () => {
  const slide = { mpp: { x: 0.5, y: 0.5 }, objectivePower: 40 };
  assert.deepEqual(slideResolution(slide, 0.25, 0.25), { mpp: 0.25, from: "flag", factor: 1 });
  assert.deepEqual(slideResolution(slide, 0.25), { mpp: 0.5, from: "slide", factor: 0.5 });
  assert.deepEqual(slideResolution({ objectivePower: 20 }, 0.25), { mpp: 0.5, from: "objective", factor: 0.5 });
  assert.deepEqual(slideResolution({}, 0.25), { mpp: 0.25, from: "model", factor: 1 });
  // a 10× slide read for a 40× model: one model pixel is a quarter of a level-0 pixel
  assert.equal(slideResolution({ mpp: { x: 0.25, y: 0.25 } }, 1).factor, 4);
});

Deno.test("readPlan: the level with the largest downsample ≤ factor, as is within 2 %, else resized from it", () => {
  const levels = [1, 4, 16].map((d) => ({ width: 1600 / d, height: 1600 / d, downsample: d }));
  assert.deepEqual(readPlan(levels, 1), { level: 0, factor: 1, resize: 1 });
  assert.deepEqual(readPlan(levels, 1.01), { level: 0, factor: 1, resize: 1 }, "within 2 %: level 0 as is");
  assert.deepEqual(readPlan(levels, 2), { level: 0, factor: 2, resize: 2 });
  assert.deepEqual(readPlan(levels, 3.95), { level: 1, factor: 4, resize: 1 }, "just under a level: that level");
  assert.deepEqual(readPlan(levels, 8), { level: 1, factor: 8, resize: 2 }, "never from a coarser level");
  assert.deepEqual(readPlan(levels, 100), { level: 2, factor: 100, resize: 100 / 16 });
  assert.deepEqual(readPlan(levels, 0.5), { level: 0, factor: 0.5, resize: 0.5 }, "finer than level 0: upsampled");
  assert.throws(() => readPlan(levels, 0), /factor must be positive/);
});

Deno.test("resampledSource: resize 1 reads the level's own pixels; resized regions match the whole level resized", async () => {
  const W = 300, H = 200, rgb = blobs(W, H);
  const source = memorySource([{ rgb, level: { width: W, height: H, downsample: 1 } }]);
  const same = resampledSource(source, { level: 0, factor: 1, resize: 1 });
  assert.deepEqual(same.levels, [{ width: W, height: H, downsample: 1 }]);
  assert.deepEqual(await same.readRegion(10, 20, 0, 30, 40), await source.readRegion(10, 20, 0, 30, 40));

  for (const factor of [1.5, 2, 0.8]) {
    const virtual = resampledSource(source, { level: 0, factor, resize: factor });
    const { width: w, height: h } = virtual.levels[0] as SlideLevel;
    assert.deepEqual([w, h], [Math.round(W / factor), Math.round(H / factor)]);
    const whole = new Uint8Array(
      await sharp(rgb, { raw: { width: W, height: H, channels: 3 } })
        .resize(w, h, { fit: "fill", kernel: "lanczos3" }).raw().toBuffer(),
    );
    // an interior region, away from the edges where the whole-image resize clamps and a region read sees white
    const x0 = Math.round(w / 4), y0 = Math.round(h / 4), rw = Math.round(w / 3), rh = Math.round(h / 3);
    const meanDifference = async (shift: number) => {
      const region = await virtual.readRegion(x0 + shift, y0, 0, rw, rh);
      assert.equal(region.length, rw * rh * 3);
      let diff = 0;
      for (let y = 0; y < rh; y++) {
        for (let x = 0; x < rw * 3; x++) {
          diff += Math.abs((region[y * rw * 3 + x] as number) - (whole[((y0 + y) * w + x0) * 3 + x] as number));
        }
      }
      return diff / region.length;
    };
    // aligned to within half a pixel: well under the difference that a one-pixel shift makes
    const aligned = await meanDifference(0), shifted = await meanDifference(1);
    assert.ok(
      aligned < 4 && aligned < shifted / 2,
      `factor ${factor}: mean |difference| ${aligned.toFixed(2)} grey levels, ${shifted.toFixed(2)} one pixel off`,
    );
  }
  await assert.rejects(() => same.readRegion(0, 0, 1, 1, 1), /only level 0/);
});

Deno.test("slideThumbnail: the finest level that fits, else the smallest averaged over k × k blocks", async () => {
  const W = 64, H = 48, rgb = new Uint8Array(W * H * 3);
  for (let i = 0; i < W * H; i++) rgb.set(i % 2 === 0 ? [0, 100, 200] : [200, 100, 0], i * 3);
  const half = new Uint8Array((W / 2) * (H / 2) * 3).fill(50);
  const source = memorySource([
    { rgb, level: { width: W, height: H, downsample: 1 } },
    { rgb: half, level: { width: W / 2, height: H / 2, downsample: 2 } },
  ]);
  const fits = await slideThumbnail(source, W * H);
  assert.deepEqual([fits.width, fits.height, fits.scaleX, fits.scaleY], [W, H, 1, 1]);
  const smaller = await slideThumbnail(source, (W * H) / 4);
  assert.deepEqual([smaller.width, smaller.height, smaller.scaleX], [W / 2, H / 2, 2]);
  assert.ok(smaller.rgb.every((v) => v === 50), "level 1's own pixels");
  const flat = memorySource([{ rgb, level: { width: W, height: H, downsample: 1 } }]);
  const averaged = await slideThumbnail(flat, 200); // k = ⌈√(3072 / 200)⌉ = 4
  assert.deepEqual([averaged.width, averaged.height, averaged.scaleX, averaged.scaleY], [16, 12, 4, 4]);
  assert.deepEqual(Array.from(averaged.rgb.subarray(0, 3)), [100, 100, 100], "alternating pixels averaged");
});

Deno.test("slideNucleus: centroid, box, contour and area in level-0 pixels, × factor (area × factor²)", () => {
  // a 2 × 3 block at model pixels (x 4..6, y 10..11)
  const n = {
    id: 7,
    classId: 1,
    score: 0.87654,
    bbox: [4, 10, 7, 12] as const,
    mask: new Uint8Array(6).fill(1),
    area: 6,
  };
  const one = slideNucleus(n, ["a", "b"], 1);
  assert.deepEqual(
    [one.id, one.class, one.score, one.centroid, one.bbox, one.area],
    [7, "b", 0.8765, [5.5, 11], [4, 10, 7, 12], 6],
  );
  assert.ok(one.contour.length >= 4 && one.contour.every(([x, y]) => x >= 4 && x <= 7 && y >= 10 && y <= 12));
  assert.equal(one.description, "a b nucleus");
  const two = slideNucleus(n, ["a", "b"], 2);
  assert.deepEqual([two.centroid, two.bbox, two.area], [[11, 22], [8, 20, 14, 24], 24]);
  assert.deepEqual(two.contour, one.contour.map(([x, y]) => [2 * x, 2 * y]));
  assert.equal(slideNucleus({ ...n, classId: -1 }, ["a"], 1).class, "unknown");
});

Deno.test("SLIDE_COLUMNS: NUCLEUS_COLUMNS with each header once (the mask feature's area as model_area)", () => {
  const names = SLIDE_COLUMNS.map((c) => c.name);
  assert.deepEqual(names.slice(0, 7), ["id", "centroid_x", "centroid_y", "class", "score", "area", "model_area"]);
  assert.equal(names.length, 18);
  assert.equal(new Set(names).size, names.length);
});

Deno.test("bandFeatures: the features maskFeatures gives on the whole image, per nucleus id, in chunks", async () => {
  const W = 5000, H = 40, rgb = blobs(W, H);
  const source = memorySource([{ rgb, level: { width: W, height: H, downsample: 1 } }]);
  // discs of radius 4 at x = 20, 2000, 4500 (beyond one chunk of 4096 columns) and 4515
  const centres = [20, 2000, 4500, 4515], whole = new Int32Array(W * H);
  const nuclei = centres.map((cx, i) => {
    const cy = 20, x0 = cx - 4, y0 = cy - 4, mask = new Uint8Array(81);
    for (let y = 0; y < 9; y++) {
      for (let x = 0; x < 9; x++) {
        if ((x - 4) ** 2 + (y - 4) ** 2 <= 16) mask[y * 9 + x] = 1, whole[(y0 + y) * W + x0 + x] = i + 1;
      }
    }
    const area = mask.reduce((a, b) => a + b, 0);
    return { id: 10 + i, classId: 0, score: 0.9, bbox: [x0, y0, x0 + 9, y0 + 9] as const, mask, area };
  });
  const features = await bandFeatures(source, nuclei);
  const expected = maskFeatures(rgb, whole, H, W);
  assert.equal(features.size, 4);
  for (const r of expected) {
    const got = features.get(9 + r.id);
    assert.ok(got !== undefined);
    for (const f of FEATURE_NAMES) assert.equal(got[f], r[f], `nucleus ${r.id}: ${f}`);
  }
});
