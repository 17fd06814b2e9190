import assert from "node:assert/strict";
import { boundaryEnergy, centreInstances, denseInstances, watershed } from "./dense_decoding.ts";
import { denseTargets } from "./dense.ts";

/** Dense maps [h·w·3] made from an instance map: the targets of dense.ts, the foreground as a confident logit. */
const mapsOf = (instances: Int32Array, h: number, w: number) => {
  const t = denseTargets(instances, h, w, 1);
  for (let p = 0; p < h * w; p++) t[p * 3] = (t[p * 3] as number) > 0.5 ? 12 : -12;
  return t;
};

// two touching 6×6 squares side by side on a 10×20 map, and a lone 5×4 one
const W = 20, H = 10;
const TRUTH = Int32Array.from({ length: H * W }, (_, p) => {
  const y = Math.floor(p / W), x = p % W;
  if (y >= 2 && y < 8 && x >= 1 && x < 7) return 1;
  if (y >= 2 && y < 8 && x >= 7 && x < 13) return 2;
  if (y >= 0 && y < 4 && x >= 15 && x < 20) return 3;
  return 0;
});

Deno.test("boundaryEnergy: low inside a nucleus, high where two nuclei's distance maps jump", () => {
  const t = denseTargets(TRUTH, H, W, 1);
  const h = Float32Array.from({ length: H * W }, (_, p) => t[p * 3 + 1] as number);
  const v = Float32Array.from({ length: H * W }, (_, p) => t[p * 3 + 2] as number);
  const e = boundaryEnergy(h, v, H, W);
  const at = (y: number, x: number) => e[y * W + x] as number;
  assert.ok(at(5, 6) > 0.3 && at(5, 7) > 0.3, `between the squares: ${at(5, 6)}, ${at(5, 7)}`);
  assert.ok(at(5, 3) === 0 && at(5, 10) === 0, `inside the distance maps only rise: ${at(5, 3)}, ${at(5, 10)}`);
});

Deno.test("watershed: regions grow from their markers over the mask, lowest energy first", () => {
  // 1×7: markers at both ends, an energy ridge at pixel 4; pixel 6 is outside the mask
  const energy = Float32Array.from([0, 0.1, 0.2, 0.3, 0.9, 0.1, 0]);
  const markers = Int32Array.from([1, 0, 0, 0, 0, 2, 0]);
  const mask = Uint8Array.from([1, 1, 1, 1, 1, 1, 0]);
  assert.deepEqual(Array.from(watershed(energy, markers, mask, 1, 7)), [1, 1, 1, 1, 2, 2, 0]);
});

Deno.test("denseInstances from exact maps: the touching squares come apart, every nucleus is found", () => {
  const found = denseInstances(mapsOf(TRUTH, H, W), H, W, H, W, {
    foregroundThreshold: 0.5,
    energyThreshold: 0.2,
    minArea: 4,
  });
  const ids = new Set(found);
  ids.delete(0);
  assert.equal(ids.size, 3);
  // each truth nucleus lies mostly in one found instance of its own
  for (const id of [1, 2, 3]) {
    const inside = Array.from(TRUTH.keys()).filter((p) => TRUTH[p] === id).map((p) => found[p] as number);
    const main = inside.sort((a, b) => inside.filter((v) => v === b).length - inside.filter((v) => v === a).length)[0];
    assert.ok(main !== undefined && main > 0);
    assert.ok(inside.filter((v) => v === main).length >= 0.7 * inside.length, `nucleus ${id}: ${inside}`);
  }
});

Deno.test("denseInstances with seeds: seeds keep their split and grow over the foreground; unseeded foreground is new", () => {
  // the foreground says one blob covering both squares (distance maps 0: no boundary); the seeds are
  // one small patch in each square, and nothing on the lone square
  const maps = mapsOf(TRUTH, H, W);
  for (let p = 0; p < H * W; p++) maps[p * 3 + 1] = 0, maps[p * 3 + 2] = 0;
  const seeds = new Int32Array(H * W);
  for (
    const [y, x, id] of [[4, 3, 1], [4, 4, 1], [5, 3, 1], [5, 4, 1], [4, 10, 2], [4, 11, 2], [5, 10, 2], [5, 11, 2]]
  ) {
    seeds[(y as number) * W + (x as number)] = id as number;
  }
  const found = denseInstances(maps, H, W, H, W, { foregroundThreshold: 0.5, energyThreshold: 0.2, minArea: 4 }, seeds);
  // ids are renumbered in scan order: look them up under the seeds
  const [left, right, lone] = [found[4 * W + 3], found[4 * W + 10], found[1 * W + 17]] as number[];
  const count = (id: number | undefined) => found.filter((v) => v === id).length;
  assert.equal(count(left) + count(right), 72, "the two seeds share the blob");
  assert.ok(count(left) >= 30 && count(right) >= 30, `${count(left)} / ${count(right)}`);
  assert.equal(new Set([left, right, lone, 0]).size, 4, "the lone square is an instance of its own");
  assert.equal(count(lone), 20);
});

Deno.test("centreInstances: one nucleus per centre peak, touching ones parted where the heat dips; no peak → own instance", () => {
  // the foreground of all three squares (distance maps unused); centre logits on the stride-4 grid
  // (3×5 cells for 10×20 pixels, rounded up): peaks at the two touching squares' centres only
  const maps = mapsOf(TRUTH, H, W);
  const ch = 3, cw = 5, heat = new Float32Array(ch * cw).fill(-6);
  heat[1 * cw + 0] = 3; // cell (1, 0): pixel (6, 2), the left square
  heat[1 * cw + 2] = 3; // cell (1, 2): pixel (6, 10), the right square
  heat[1 * cw + 1] = -2; // between them the heat dips
  const found = centreInstances(maps, H, W, { logits: heat, ch, cw }, H, W, {
    foregroundThreshold: 0.5,
    energyThreshold: 0.2,
    minArea: 4,
    centerThreshold: 0.3,
  });
  const [left, right, lone] = [found[5 * W + 2], found[5 * W + 11], found[1 * W + 17]] as number[];
  assert.equal(new Set([left, right, lone, 0]).size, 4, `ids ${left}, ${right}, ${lone}`);
  const count = (id: number | undefined) => found.filter((v) => v === id).length;
  assert.equal(count(left) + count(right), 72, "the two centres share the touching squares");
  // the heat is bilinear on a 4-px grid: where the fronts meet follows it, not the squares' edge exactly
  assert.ok(count(left) >= 18 && count(right) >= 18, `${count(left)} / ${count(right)}`);
  assert.equal(count(lone), 20);
});

Deno.test("centreInstances peakRadius: a stride-2 heat map's two maxima 2 cells (4 px) apart are one peak at 4 px", () => {
  // the same squares on a stride-2 grid (5×10 cells): two maxima inside the left square, 2 cells apart, the
  // weaker one between them dominated only within 4 px; one maximum in the right square
  const maps = mapsOf(TRUTH, H, W);
  const ch = 5, cw = 10, heat = new Float32Array(ch * cw).fill(-6);
  heat[2 * cw + 0] = 3; // cell (2, 0): pixel (5, 1)
  heat[2 * cw + 2] = 2; // cell (2, 2): pixel (5, 5), still the left square
  heat[2 * cw + 1] = 1; // between them
  heat[2 * cw + 5] = 3; // cell (2, 5): pixel (5, 11), the right square
  const options = { foregroundThreshold: 0.5, energyThreshold: 0.2, minArea: 1, centerThreshold: 0.3 };
  const ids = (peakRadius?: number) => {
    const found = centreInstances(
      maps,
      H,
      W,
      { logits: heat, ch, cw },
      H,
      W,
      peakRadius === undefined ? options : { ...options, peakRadius },
    );
    return new Set([found[5 * W + 1], found[5 * W + 5], found[5 * W + 11]]).size;
  };
  assert.equal(ids(), 2, "the default 4 px: the left square's two maxima are one nucleus");
  assert.equal(ids(2), 3, "2 px (1 cell): the weaker maximum is a peak of its own, the square is split");
});

Deno.test("centreInstances boundaryWeight: touching nuclei part where the distance maps jump, not midway between peaks", () => {
  // equal peaks in adjacent cells, at pixel (5, 6) on the left square's right edge and (5, 10) in the right square, the
  // heat flat between them: by the heat alone the fronts meet midway (x ≈ 8) and the left nucleus takes the right
  // one's first column
  const maps = mapsOf(TRUTH, H, W);
  const ch = 3, cw = 5, heat = new Float32Array(ch * cw).fill(-6);
  heat[1 * cw + 1] = 3;
  heat[1 * cw + 2] = 3;
  const options = { foregroundThreshold: 0.5, energyThreshold: 0.2, minArea: 4, centerThreshold: 0.3 };
  const rightKept = (boundaryWeight: number) => {
    const found = centreInstances(maps, H, W, { logits: heat, ch, cw }, H, W, { ...options, boundaryWeight });
    const right = found[5 * W + 10] as number;
    assert.equal(new Set([found[5 * W + 2], found[5 * W + 6], 0]).size, 2, "the left square is one nucleus");
    assert.notEqual(right, found[5 * W + 6], "two nuclei");
    return Array.from(TRUTH.keys()).filter((p) => TRUTH[p] === 2 && found[p] === right).length;
  };
  const byHeat = rightKept(0), byBoundary = rightKept(3);
  assert.ok(byHeat < 36, `the heat alone gives the right square ${byHeat} of its 36 pixels`);
  assert.equal(byBoundary, 36, "with the boundary energy the right square is whole");
});
