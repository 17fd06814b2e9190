/**
 * Per-nucleus features (features spec Part A): the three worked examples of §A8 with every printed
 * number, the special objects of §A5, and brute-force cross-checks (d², boundary, convex area,
 * inertia ellipse, H, Sobel) on random shapes. Floats are compared with the §A0 tolerance
 * `|a − b| ≤ 1e-6·max(|a|, |b|) + 1e-12`; integers, nulls and flags exactly.
 */
import assert from "node:assert/strict";
import { FEATURE_NAMES, type FeatureRecord, featuresJson, maskFeatures, squaredDepthMap } from "./mask_features.ts";
import { hematoxylin, sobel, stainChannels } from "./stain.ts";

// ---------------------------------------------------------------------------------------------
// helpers

const close = (a: number, b: number, what: string) => {
  assert.ok(
    Number.isFinite(a) && Number.isFinite(b) && Math.abs(a - b) <= 1e-6 * Math.max(Math.abs(a), Math.abs(b)) + 1e-12,
    `${what}: ${a} vs ${b}`,
  );
};

/** §A8.0: the RGB of tile pixel (r, c), `[H, W, 3]`. */
const formulaRgb = (height: number, width: number): Uint8Array => {
  const rgb = new Uint8Array(height * width * 3);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const i = 3 * (r * width + c);
      rgb[i] = (37 * r + 11 * c + 60) % 256;
      rgb[i + 1] = (17 * r + 29 * c + 40) % 256;
      rgb[i + 2] = (23 * r + 7 * c + 120) % 256;
    }
  }
  return rgb;
};

/** An instance map drawn as text (`.` = 0, numbers = ids, whitespace-separated) → `[H, W]`. */
const drawn = (text: string) => {
  const rows = text.trim().split("\n").map((l) => l.trim().split(/\s+/));
  const height = rows.length, width = (rows[0] as string[]).length;
  const map = new Int32Array(height * width);
  rows.forEach((cells, r) => {
    assert.equal(cells.length, width, `row ${r} of the drawing`);
    cells.forEach((v, c) => (map[r * width + c] = v === "." ? 0 : Number(v)));
  });
  return { map, height, width };
};

/** An integer grid drawn as text → rows of numbers. */
const grid = (text: string): number[][] => text.trim().split("\n").map((l) => l.trim().split(/\s+/).map(Number));

/** The d² of instance `id` over its bbox, 0 off the object (the form §A8 prints). */
const depthOverBbox = (map: Int32Array, height: number, width: number, rec: FeatureRecord): number[][] => {
  const mask = Uint8Array.from(map, (v) => (v === rec.id ? 1 : 0));
  const d2 = squaredDepthMap(mask, height, width);
  const [r0, c0, r1, c1] = rec.aux.bbox;
  return Array.from(
    { length: r1 - r0 },
    (_, y) => Array.from(d2.subarray((r0 + y) * width + c0, (r0 + y) * width + c1)),
  );
};

type Expected = Omit<FeatureRecord, "aux"> & { readonly aux?: Partial<FeatureRecord["aux"]> };

/** Compares a record with the expected one: integers/nulls/flags exactly, floats within tolerance. */
const same = (got: FeatureRecord, want: Expected) => {
  assert.equal(got.id, want.id);
  const where = `id ${want.id}`;
  for (const name of FEATURE_NAMES) {
    const a = got[name], b = want[name];
    if (b === null || a === null) assert.equal(a, b, `${where} ${name}`);
    else if (name === "area") assert.equal(a, b, `${where} area`);
    else close(a, b, `${where} ${name}`);
  }
  assert.deepEqual(got.flags, want.flags, `${where} flags`);
  for (const [key, value] of Object.entries(want.aux ?? {})) {
    const have = got.aux[key as keyof FeatureRecord["aux"]];
    if (Array.isArray(value)) {
      assert.ok(Array.isArray(have));
      assert.equal(have.length, value.length);
      value.forEach((v: number, i: number) => close(have[i] as number, v, `${where} aux.${key}[${i}]`));
    } else if (["convex_area", "bbox_area", "max_depth_sq", "n_boundary", "n_core", "n_rim"].includes(key)) {
      assert.equal(have, value, `${where} aux.${key}`);
    } else close(have as number, value as number, `${where} aux.${key}`);
  }
};

const only = (records: FeatureRecord[], id: number): FeatureRecord => {
  const r = records.find((x) => x.id === id);
  assert.ok(r !== undefined, `no record for id ${id}`);
  return r;
};

// ---------------------------------------------------------------------------------------------
// §A8 worked examples

const EX1 = `
. . . . . . . . .
. . . . . . . . .
. . 1 1 1 1 1 . .
. . 1 1 1 1 1 . .
. . 1 1 1 1 1 . .
. . 1 1 1 1 1 . .
. . 1 1 1 1 1 . .
. . . . . . . . .
. . . . . . . . .`;

Deno.test("§A8 example 1: 5×5 square", () => {
  const { map, height, width } = drawn(EX1);
  const rgb = formulaRgb(height, width);
  const records = maskFeatures(rgb, map, height, width);
  assert.deepEqual(records.map((r) => r.id), [1]);
  const rec = records[0] as FeatureRecord;
  same(rec, {
    id: 1,
    area: 25,
    equivalent_diameter: 5.641895835477563,
    eccentricity: 0.0,
    aspect_ratio: 1.0,
    solidity: 1.0,
    extent: 1.0,
    perimeter_ratio: 0.8148733086305041,
    mean_boundary_gradient: 0.17516838928124612,
    hematoxylin_mean: 0.08827846685074892,
    hematoxylin_var: 0.01664550588697399,
    core_rim_diff: -0.006844127164989111,
    flags: [],
    aux: {
      perimeter: 16.0,
      convex_area: 25,
      bbox: [2, 2, 7, 7],
      n_boundary: 16,
      n_core: 9,
      n_rim: 16,
      max_depth_sq: 9,
      major_axis_length: 5.656854249492381,
      minor_axis_length: 5.656854249492381,
      bbox_area: 25,
      centroid: [4, 4],
    },
  });
  assert.equal(rec.eccentricity, 0, "symmetric shapes give exactly 0 (exact integer moments)");
  assert.deepEqual(
    depthOverBbox(map, height, width, rec),
    grid(`
1 1 1 1 1
1 4 4 4 1
1 4 9 4 1
1 4 4 4 1
1 1 1 1 1`),
  );
  const { h, g } = stainChannels(rgb, height, width);
  const at = 2 * width + 2;
  assert.deepEqual([...rgb.subarray(3 * at, 3 * at + 3)], [156, 132, 180]);
  close(h[at] as number, 0.04848236165678542, "H(2, 2)");
  close(g[at] as number, 0.03910227291971516, "G(2, 2)");
});

const EX2 = `
. . 3 3 3 3 3 3 3 . .
. . 3 3 3 3 3 3 3 . .
. . 3 3 3 3 3 3 3 . .
. . . . . . . . . . .
. . . . . . . . . . .
. . . . . . . . . . .
. . . . . . . . . . .`;

Deno.test("§A8 example 2: 3×7 rectangle touching the top edge", () => {
  const { map, height, width } = drawn(EX2);
  const rgb = formulaRgb(height, width);
  const records = maskFeatures(rgb, map, height, width);
  assert.deepEqual(records.map((r) => r.id), [3]);
  const rec = records[0] as FeatureRecord;
  same(rec, {
    id: 3,
    area: 21,
    equivalent_diameter: 5.170882945826411,
    eccentricity: 0.9128709291752769,
    aspect_ratio: 2.449489742783178,
    solidity: 1.0,
    extent: 1.0,
    perimeter_ratio: 0.9700872721791716,
    mean_boundary_gradient: 0.05427330372849063,
    hematoxylin_mean: 0.05428041620634642,
    hematoxylin_var: 0.0009837945931808261,
    core_rim_diff: -0.005457696922670285,
    flags: ["touches_border"],
    aux: {
      perimeter: 16.0,
      convex_area: 21,
      bbox: [0, 2, 3, 9],
      n_boundary: 16,
      n_core: 5,
      n_rim: 16,
      max_depth_sq: 4,
      major_axis_length: 8.0,
      minor_axis_length: 3.265986323710904,
      bbox_area: 21,
      centroid: [1, 5],
    },
  });
  assert.deepEqual(
    depthOverBbox(map, height, width, rec),
    grid(`
1 1 1 1 1 1 1
1 4 4 4 4 4 1
1 1 1 1 1 1 1`),
  );
  const { h, g } = stainChannels(rgb, height, width);
  const at = 0 * width + 2;
  assert.deepEqual([...rgb.subarray(3 * at, 3 * at + 3)], [82, 98, 134]);
  close(h[at] as number, 0.12162746269006258, "H(0, 2)");
  close(g[at] as number, 0.03591186135273393, "G(0, 2)");
});

const EX3 = `
. . . . . . . . . . . . . . . . .
. . . . . . . . . . . . . . . . .
. . . . . . . . . . . . . 2 . . .
. . . . . . . . . . . . . . . . .
. . . . . . . . . 1 1 1 1 . . . .
. . . . . . . 1 1 1 1 1 1 1 . . .
. . . . . 1 1 1 1 1 1 1 1 1 . . .
. . . . 1 1 1 1 1 1 1 1 1 1 . . .
. . . 1 1 1 1 1 1 1 1 1 1 1 . . .
. . . 1 1 1 1 1 1 1 1 1 1 . . . .
. . . 1 1 1 1 1 1 1 1 1 . . . . .
. . . 1 1 1 1 1 1 1 . . . . . . .
. . . . 1 1 1 1 . . . . . . . . .
. . . . . . . . . . . . . . . . .
. . . . . . . . . . . . . . . . .
. . . . . . . . . . . . . . . . .
. . . . . . . . . . . . . . . . .`;

Deno.test("§A8 example 3: rotated ellipse plus a 1-pixel object", () => {
  const { map, height, width } = drawn(EX3);
  const rgb = formulaRgb(height, width);
  const records = maskFeatures(rgb, map, height, width);
  assert.deepEqual(records.map((r) => r.id), [1, 2]);
  const [ellipse, dot] = records as [FeatureRecord, FeatureRecord];
  same(ellipse, {
    id: 1,
    area: 71,
    equivalent_diameter: 9.507891862878783,
    eccentricity: 0.8266175373296913,
    aspect_ratio: 1.7769434417449728,
    solidity: 0.9466666666666667,
    extent: 0.7171717171717171,
    perimeter_ratio: 1.0183095728343152,
    mean_boundary_gradient: 0.09370114346866545,
    hematoxylin_mean: 0.08101862519462122,
    hematoxylin_var: 0.016137771821988275,
    core_rim_diff: -0.0706829743368024,
    flags: [],
    aux: {
      perimeter: 30.14213562373095,
      convex_area: 75,
      bbox: [4, 3, 13, 14],
      n_boundary: 26,
      n_core: 35,
      n_rim: 36,
      max_depth_sq: 13,
      major_axis_length: 12.656824409304251,
      minor_axis_length: 7.122806563204481,
      bbox_area: 99,
      centroid: [4 + 284 / 71, 3 + 355 / 71],
    },
  });
  same(dot, {
    id: 2,
    area: 1,
    equivalent_diameter: 1.1283791670955126,
    eccentricity: 0.0,
    aspect_ratio: null,
    solidity: 1.0,
    extent: 1.0,
    perimeter_ratio: 0.0,
    mean_boundary_gradient: 0.13217926052210233,
    hematoxylin_mean: 0.09669049887357005,
    hematoxylin_var: 0.0,
    core_rim_diff: null,
    flags: ["collinear", "rim_empty", "single_pixel"],
    aux: {
      perimeter: 0,
      convex_area: 1,
      bbox: [2, 13, 3, 14],
      n_boundary: 1,
      n_core: 1,
      n_rim: 0,
      max_depth_sq: 1,
      major_axis_length: 0,
      minor_axis_length: 0,
      bbox_area: 1,
      centroid: [2, 13],
    },
  });
  assert.deepEqual(
    depthOverBbox(map, height, width, ellipse),
    grid(`
0 0 0 0 0 0 1 1 1 1 0
0 0 0 0 1 1 2 4 4 2 1
0 0 1 1 2 4 5 8 8 4 1
0 1 2 4 5 8 10 13 8 4 1
1 2 5 8 10 13 10 8 5 2 1
1 4 8 13 10 8 5 4 2 1 0
1 4 8 8 5 4 2 1 1 0 0
1 2 4 4 2 1 1 0 0 0 0
0 1 1 1 1 0 0 0 0 0 0`),
  );
  assert.deepEqual(depthOverBbox(map, height, width, dot), [[1]]);
  const { h, g } = stainChannels(rgb, height, width);
  const a = 4 * width + 9, b = 2 * width + 13;
  assert.deepEqual([...rgb.subarray(3 * a, 3 * a + 3)], [51, 113, 19]);
  close(h[a] as number, 0.10175576283170369, "H(4, 9)");
  close(g[a] as number, 0.2393599764637081, "G(4, 9)");
  assert.deepEqual([...rgb.subarray(3 * b, 3 * b + 3)], [21, 195, 1]);
  close(h[b] as number, 0.09669049887357005, "H(2, 13)");
  close(g[b] as number, 0.13217926052210233, "G(2, 13)");
});

Deno.test("featuresJson: the §A6 top-level shape, keys in canonical order", () => {
  const { map, height, width } = drawn(EX3);
  const records = maskFeatures(formulaRgb(height, width), map, height, width);
  const out = featuresJson(records, { image: "t.png", inst: "t.npy", height, width });
  assert.deepEqual(Object.keys(out), [
    "spec_version",
    "image",
    "inst",
    "height",
    "width",
    "feature_names",
    "n_instances",
    "instances",
  ]);
  assert.equal(out.spec_version, "1.0");
  assert.equal(out.n_instances, 2);
  assert.deepEqual(out.feature_names, [
    "area",
    "equivalent_diameter",
    "eccentricity",
    "aspect_ratio",
    "solidity",
    "extent",
    "perimeter_ratio",
    "mean_boundary_gradient",
    "hematoxylin_mean",
    "hematoxylin_var",
    "core_rim_diff",
  ]);
  const parsed = JSON.parse(JSON.stringify(out));
  assert.deepEqual(Object.keys(parsed.instances[0]), ["id", ...FEATURE_NAMES, "aux", "flags"]);
  assert.deepEqual(Object.keys(parsed.instances[0].aux), [
    "bbox",
    "centroid",
    "major_axis_length",
    "minor_axis_length",
    "perimeter",
    "convex_area",
    "bbox_area",
    "max_depth_sq",
    "n_boundary",
    "n_core",
    "n_rim",
  ]);
  assert.equal(parsed.instances[1].aspect_ratio, null);
  assert.equal(parsed.instances[1].core_rim_diff, null);
});

// ---------------------------------------------------------------------------------------------
// §A5 special objects

/** A tile of `height × width` with the given pixels of each id; RGB from §A8.0. */
const tile = (height: number, width: number, objects: Record<number, ReadonlyArray<readonly [number, number]>>) => {
  const map = new Int32Array(height * width);
  for (const [id, pixels] of Object.entries(objects)) for (const [r, c] of pixels) map[r * width + c] = Number(id);
  const rgb = formulaRgb(height, width);
  return { map, rgb, records: maskFeatures(rgb, map, height, width), ...stainChannels(rgb, height, width) };
};

const block = (r0: number, c0: number, h: number, w: number): Array<[number, number]> =>
  Array.from({ length: h * w }, (_, i) => [r0 + Math.floor(i / w), c0 + (i % w)]);

const SQRT2 = Math.SQRT2;

Deno.test("§A5: a single pixel", () => {
  const t = tile(7, 7, { 5: [[3, 4]] });
  const rec = only(t.records, 5);
  same(rec, {
    id: 5,
    area: 1,
    equivalent_diameter: Math.sqrt(4 / Math.PI),
    eccentricity: 0,
    aspect_ratio: null,
    solidity: 1,
    extent: 1,
    perimeter_ratio: 0,
    mean_boundary_gradient: t.g[3 * 7 + 4] as number,
    hematoxylin_mean: t.h[3 * 7 + 4] as number,
    hematoxylin_var: 0,
    core_rim_diff: null,
    flags: ["collinear", "rim_empty", "single_pixel"],
    aux: { perimeter: 0, convex_area: 1, n_boundary: 1, n_core: 1, n_rim: 0, max_depth_sq: 1, minor_axis_length: 0 },
  });
  close(rec.equivalent_diameter, 1.1283791670955126, "equivalent diameter of one pixel");
  assert.equal(rec.hematoxylin_var, 0);
});

Deno.test("§A5: two pixels and 1-px straight lines: collinear, ecc 1, P = L − 2, rim empty", () => {
  for (const L of [2, 3, 6, 9]) {
    for (const vertical of [false, true]) {
      const pixels = Array.from({ length: L }, (_, i): [number, number] => vertical ? [1 + i, 3] : [3, 1 + i]);
      const rec = only(tile(12, 12, { 1: pixels }).records, 1);
      assert.equal(rec.aspect_ratio, null);
      assert.equal(rec.eccentricity, 1, "exactly 1 for collinear shapes");
      assert.equal(rec.aux.minor_axis_length, 0);
      close(rec.aux.major_axis_length, 4 * Math.sqrt((L * L - 1) / 12), `major of a ${L}-line`);
      close(rec.aux.perimeter, L - 2, `P of a ${L}-line`);
      close(rec.perimeter_ratio, (L - 2) ** 2 / (4 * Math.PI * L), "perimeter ratio");
      assert.equal(rec.core_rim_diff, null);
      assert.deepEqual(rec.flags, ["collinear", "rim_empty"]);
      assert.equal(rec.aux.convex_area, L);
      assert.equal(rec.solidity, 1);
      assert.equal(rec.aux.n_boundary, L);
      const [r0, c0, r1, c1] = rec.aux.bbox;
      assert.deepEqual([r1 - r0, c1 - c0], vertical ? [L, 1] : [1, L]);
      assert.deepEqual([r0, c0], vertical ? [1, 3] : [3, 1]);
    }
  }
});

Deno.test("§A5: diagonal and knight-move lines are collinear", () => {
  const diagonal = only(tile(9, 9, { 1: [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]] }).records, 1);
  assert.equal(diagonal.aspect_ratio, null);
  assert.equal(diagonal.eccentricity, 1);
  assert.equal(diagonal.aux.minor_axis_length, 0);
  close(diagonal.aux.major_axis_length, 4 * Math.sqrt(2 * 2), "major of a 5-px diagonal (variance 2 per axis)");
  // ends have one diagonal border neighbour (code 11, weight 0), the inner pixels two (code 21, √2)
  close(diagonal.aux.perimeter, 3 * SQRT2, "P of a 5-px diagonal");
  assert.equal(diagonal.aux.convex_area, 5, "the hull of the diamonds contains only the pixels themselves");
  assert.equal(diagonal.extent, 5 / 25);
  assert.deepEqual(diagonal.flags, ["collinear", "rim_empty"]);

  const anti = only(tile(9, 9, { 1: [[1, 5], [2, 4], [3, 3], [4, 2]] }).records, 1);
  assert.equal(anti.aspect_ratio, null);
  assert.equal(anti.eccentricity, 1);
  close(anti.aux.perimeter, 2 * SQRT2, "P of a 4-px anti-diagonal");

  const knight = only(tile(9, 9, { 1: [[1, 1], [2, 3], [3, 5], [4, 7]] }).records, 1);
  assert.equal(knight.aspect_ratio, null);
  assert.equal(knight.eccentricity, 1);
  assert.equal(knight.aux.minor_axis_length, 0);
  assert.equal(knight.aux.perimeter, 0, "no border pixel has a border neighbour");
  assert.equal(knight.perimeter_ratio, 0);
  assert.equal(knight.aux.n_boundary, 4);
  assert.deepEqual(knight.flags, ["collinear", "rim_empty"]);
  // the hull of the 4 diamonds is the band −½ + x/2 ≤ y ≤ ½ + x/2 (local coordinates): 1+2+1+2+1+2+1 centres
  assert.equal(knight.aux.convex_area, 10);

  const pair = only(tile(5, 5, { 1: [[2, 1], [3, 2]] }).records, 1);
  assert.equal(pair.aspect_ratio, null);
  assert.equal(pair.eccentricity, 1);
  assert.equal(pair.aux.perimeter, 0, "two diagonal pixels: codes 11, weight 0");
});

Deno.test("§A5: 2×2 and 3×3 blocks", () => {
  const two = only(tile(6, 6, { 1: block(2, 2, 2, 2) }).records, 1);
  assert.equal(two.eccentricity, 0);
  assert.equal(two.aspect_ratio, 1);
  assert.equal(two.aux.perimeter, 4);
  assert.equal(two.aux.max_depth_sq, 1);
  assert.equal(two.core_rim_diff, null);
  assert.deepEqual(two.flags, ["rim_empty"]);
  assert.equal(two.aux.convex_area, 4);
  assert.equal(two.aux.n_boundary, 4);

  const t = tile(7, 7, { 1: block(2, 2, 3, 3) });
  const three = only(t.records, 1);
  assert.equal(three.aux.max_depth_sq, 4);
  assert.equal(three.aux.n_core, 1);
  assert.equal(three.aux.n_rim, 8);
  assert.equal(three.aux.n_boundary, 8);
  assert.equal(three.aux.perimeter, 8);
  assert.equal(three.eccentricity, 0);
  assert.equal(three.aspect_ratio, 1);
  assert.deepEqual(three.flags, []);
  const centre = t.h[3 * 7 + 3] as number;
  let rim = 0;
  for (const [r, c] of block(2, 2, 3, 3)) if (r !== 3 || c !== 3) rim += t.h[r * 7 + c] as number;
  close(three.core_rim_diff as number, centre - rim / 8, "core = centre pixel, rim = the 8 others");
});

Deno.test("§A5: holes are non-object (boundary, perimeter) but inside the convex area", () => {
  const pixels = block(1, 1, 7, 7).filter(([r, c]) => r !== 4 || c !== 4);
  const rec = only(tile(9, 9, { 1: pixels }).records, 1);
  assert.equal(rec.area, 48);
  assert.equal(rec.aux.convex_area, 49);
  close(rec.solidity, 48 / 49, "solidity");
  assert.equal(rec.extent, 48 / 49);
  assert.equal(rec.aux.n_boundary, 24 + 4, "outer ring + the 4-neighbours of the hole");
  close(rec.aux.perimeter, 24 + 4 * SQRT2, "outer ring 24 + the hole's diamond 4√2");
  assert.equal(rec.aux.max_depth_sq, 4);
  assert.equal(rec.eccentricity, 0);
  assert.deepEqual(rec.flags, []);
});

Deno.test("§A5: several components with one id form one record; the hull spans them", () => {
  const t = tile(6, 10, { 4: [...block(1, 1, 2, 2), ...block(1, 6, 2, 2)] });
  assert.equal(t.records.length, 1);
  const rec = only(t.records, 4);
  assert.equal(rec.area, 8);
  assert.deepEqual(rec.aux.bbox, [1, 1, 3, 8]);
  assert.equal(rec.aux.convex_area, 14);
  close(rec.solidity, 8 / 14, "solidity");
  close(rec.extent, 8 / 14, "extent");
  assert.equal(rec.aux.perimeter, 8);
  assert.equal(rec.aux.n_boundary, 8);
  assert.deepEqual(rec.flags, ["rim_empty"]);
});

Deno.test("§A5: touching instances are non-object to each other", () => {
  const t = tile(7, 10, { 1: block(2, 1, 3, 3), 2: block(2, 4, 3, 3) });
  const alone = tile(7, 10, { 1: block(2, 1, 3, 3) });
  for (const id of [1, 2]) {
    const rec = only(t.records, id);
    assert.equal(rec.aux.max_depth_sq, 4);
    assert.equal(rec.aux.n_boundary, 8);
    assert.equal(rec.aux.perimeter, 8);
    assert.equal(rec.aux.n_core, 1);
  }
  // the RGB does not depend on the map, so the first block's values equal those of it alone
  same(only(t.records, 1), only(alone.records, 1));
});

Deno.test("§A5: ids need not be contiguous; records sorted by id; huge ids; absent ids give no record", () => {
  const objects = { 100: block(1, 1, 2, 3), 7: [[5, 5]] as Array<[number, number]>, 3: block(1, 6, 3, 2) };
  const t = tile(8, 9, objects);
  assert.deepEqual(t.records.map((r) => r.id), [3, 7, 100]);
  // very large ids go through the compacting path and give the same records
  const big = tile(8, 9, { 2_000_000_000: objects[100], 1_999_999_999: objects[7], 5: objects[3] });
  assert.deepEqual(big.records.map((r) => r.id), [5, 1_999_999_999, 2_000_000_000]);
  const pairs: Array<[number, number]> = [[3, 5], [7, 1_999_999_999], [100, 2_000_000_000]];
  for (const [small, large] of pairs) {
    same({ ...only(big.records, large), id: small }, only(t.records, small));
  }
  assert.deepEqual(maskFeatures(formulaRgb(4, 4), new Int32Array(16), 4, 4), []);
});

Deno.test("§A5: objects at the tile edge: outside is non-object, Sobel reflects, flag touches_border", () => {
  for (const [r0, c0] of [[0, 0], [0, 4], [4, 0], [4, 4], [2, 4]] as const) {
    const t = tile(7, 7, { 1: block(r0, c0, 3, 3) });
    const rec = only(t.records, 1);
    assert.equal(rec.aux.max_depth_sq, 4, `3×3 at (${r0}, ${c0})`);
    assert.equal(rec.aux.n_boundary, 8);
    assert.equal(rec.aux.perimeter, 8);
    assert.deepEqual(rec.flags, ["touches_border"]);
    let sumG = 0;
    for (const [r, c] of block(r0, c0, 3, 3)) if (r !== r0 + 1 || c !== c0 + 1) sumG += naiveSobel(t.h, 7, 7, r, c);
    close(rec.mean_boundary_gradient, sumG / 8, "mean G over B with the reflect border");
  }
  const inner = only(tile(7, 7, { 1: block(2, 2, 3, 3) }).records, 1);
  assert.deepEqual(inner.flags, []);
  // a 1-row tile and a 1×1 tile
  const row = tile(1, 5, { 1: [[0, 1], [0, 2], [0, 3]] });
  assert.deepEqual(only(row.records, 1).flags, ["collinear", "rim_empty", "touches_border"]);
  const one = tile(1, 1, { 9: [[0, 0]] });
  assert.deepEqual(only(one.records, 9).flags, ["collinear", "rim_empty", "touches_border", "single_pixel"]);
  assert.equal(one.g[0], 0, "reflect border: a 1×1 tile has no gradient");
});

Deno.test("maskFeatures rejects negative ids and mismatched sizes", () => {
  const map = new Int32Array(9);
  map[4] = -2;
  assert.throws(() => maskFeatures(formulaRgb(3, 3), map, 3, 3), /negative instance id -2 at \(r=1, c=1\)/);
  assert.throws(() => maskFeatures(formulaRgb(3, 3), new Int32Array(8), 3, 3), /needs 9 values/);
  assert.throws(() => maskFeatures(formulaRgb(3, 2), new Int32Array(9), 3, 3), /needs 27 values/);
});

// ---------------------------------------------------------------------------------------------
// brute-force cross-checks on random shapes

/** Mulberry32: a small seeded generator. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

/** H by the literal §A4.8 formula, one pixel at a time. */
const naiveH = (rgb: Uint8Array, i: number): number => {
  const L = Math.log(1e-6);
  const f = (v: number) => Math.max((rgb[3 * i + v] as number) * (1 / 255), 1e-6);
  const h = (Math.log(f(0)) / L) * 1.8779827368521356 + (Math.log(f(1)) / L) * -0.06590806222356334 +
    (Math.log(f(2)) / L) * -0.6019073634392891;
  return Math.max(h, 0);
};

/** G by the literal §A4.9 formula at (r, c). */
const naiveSobel = (h: Float64Array, height: number, width: number, r: number, c: number): number => {
  const reflect = (i: number, n: number) => (i < 0 ? -i - 1 : i >= n ? 2 * n - i - 1 : i);
  const at = (y: number, x: number) => h[reflect(y, height) * width + reflect(x, width)] as number;
  const s = [0.25, 0.5, 0.25];
  let gr = 0, gc = 0;
  for (let k = -1; k <= 1; k++) {
    gr += (s[k + 1] as number) * (at(r + 1, c + k) - at(r - 1, c + k));
    gc += (s[k + 1] as number) * (at(r + k, c + 1) - at(r + k, c - 1));
  }
  return Math.sqrt(gr * gr + gc * gc) / Math.SQRT2;
};

Deno.test("H and Sobel equal the literal formulas (H bit-identical)", () => {
  const next = random(7);
  const height = 13, width = 17;
  const rgb = Uint8Array.from({ length: height * width * 3 }, () => Math.floor(next() * 256));
  rgb.set([0, 0, 0, 255, 255, 255, 0, 255, 0], 0); // the clamps: 0 → 1e-6, 255 → log 1 = 0
  const h = hematoxylin(rgb, height, width);
  for (let i = 0; i < height * width; i++) assert.equal(h[i], naiveH(rgb, i), `H at ${i}`);
  const g = sobel(h, height, width);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      close(g[r * width + c] as number, naiveSobel(h, height, width, r, c), `G(${r}, ${c})`);
    }
  }
});

/** d² by brute force over every non-object pixel of the padded tile. */
const bruteDepth = (mask: Uint8Array, height: number, width: number): Int32Array => {
  const out = new Int32Array(height * width);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      if (mask[r * width + c] === 0) continue;
      let best = Infinity;
      for (let y = -1; y <= height; y++) {
        for (let x = -1; x <= width; x++) {
          const outside = y < 0 || x < 0 || y >= height || x >= width || mask[y * width + x] === 0;
          if (outside) best = Math.min(best, (y - r) ** 2 + (x - c) ** 2);
        }
      }
      out[r * width + c] = best;
    }
  }
  return out;
};

/** §A4.4 literally: hull of all 4n edge midpoints, then every bbox centre against every edge. */
const bruteConvexArea = (pixels: ReadonlyArray<readonly [number, number]>): number => {
  const r0 = Math.min(...pixels.map((p) => p[0])), c0 = Math.min(...pixels.map((p) => p[1]));
  const r1 = Math.max(...pixels.map((p) => p[0])) + 1, c1 = Math.max(...pixels.map((p) => p[1])) + 1;
  const pts: Array<[number, number]> = [];
  for (const [r, c] of pixels) {
    const y = 2 * (r - r0), x = 2 * (c - c0);
    pts.push([y - 1, x], [y + 1, x], [y, x - 1], [y, x + 1]);
  }
  pts.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const cross = (o: number[], a: number[], b: number[]) =>
    ((a[0] as number) - (o[0] as number)) * ((b[1] as number) - (o[1] as number)) -
    ((a[1] as number) - (o[1] as number)) * ((b[0] as number) - (o[0] as number));
  const lower: number[][] = [], upper: number[][] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower.at(-2) as number[], lower.at(-1) as number[], p) <= 0) lower.pop();
    lower.push(p);
  }
  for (const p of [...pts].reverse()) {
    while (upper.length >= 2 && cross(upper.at(-2) as number[], upper.at(-1) as number[], p) <= 0) upper.pop();
    upper.push(p);
  }
  const hull = [...lower.slice(0, -1), ...upper.slice(0, -1)];
  let count = 0;
  for (let y = 0; y < r1 - r0; y++) {
    for (let x = 0; x < c1 - c0; x++) {
      const q = [2 * y, 2 * x];
      if (hull.every((v, i) => cross(v, hull[(i + 1) % hull.length] as number[], q) >= 0)) count++;
    }
  }
  return count;
};

/** A random shape: a blob (possibly with holes), a sparse scatter or a thin curve, in a small tile. */
const randomShapes = (next: () => number, height: number, width: number): Int32Array => {
  const map = new Int32Array(height * width);
  const count = 1 + Math.floor(next() * 5);
  for (let id = 1; id <= count; id++) {
    const kind = Math.floor(next() * 3);
    const cy = next() * height, cx = next() * width;
    if (kind === 0) {
      const ry = 1 + next() * 6, rx = 1 + next() * 6, th = next() * Math.PI;
      for (let r = 0; r < height; r++) {
        for (let c = 0; c < width; c++) {
          const dy = r - cy, dx = c - cx;
          const u = (dy * Math.cos(th) + dx * Math.sin(th)) / ry, v = (-dy * Math.sin(th) + dx * Math.cos(th)) / rx;
          if (u * u + v * v <= 1 && next() > 0.05) map[r * width + c] = id;
        }
      }
    } else if (kind === 1) {
      for (let k = 0; k < 1 + next() * 12; k++) {
        const r = Math.floor(cy + (next() - 0.5) * 10), c = Math.floor(cx + (next() - 0.5) * 10);
        if (r >= 0 && c >= 0 && r < height && c < width) map[r * width + c] = id;
      }
    } else {
      let r = Math.floor(cy), c = Math.floor(cx);
      for (let k = 0; k < 3 + next() * 15; k++) {
        if (r >= 0 && c >= 0 && r < height && c < width) map[r * width + c] = id;
        r += Math.floor(next() * 3) - 1, c += Math.floor(next() * 3) - 1;
      }
    }
  }
  return map;
};

Deno.test("random shapes: d², B, core/rim, convex area, ellipse, perimeter and H stats against brute force", () => {
  const next = random(20260101);
  let checked = 0;
  for (let trial = 0; trial < 300; trial++) {
    const height = 6 + Math.floor(next() * 18), width = 6 + Math.floor(next() * 18);
    const map = randomShapes(next, height, width);
    const rgb = Uint8Array.from({ length: height * width * 3 }, () => Math.floor(next() * 256));
    const records = maskFeatures(rgb, map, height, width);
    const ids = [...new Set(map)].filter((v) => v !== 0).sort((a, b) => a - b);
    assert.deepEqual(records.map((r) => r.id), ids);
    const H = hematoxylin(rgb, height, width), G = sobel(H, height, width);
    for (const rec of records) {
      checked++;
      const mask = Uint8Array.from(map, (v) => (v === rec.id ? 1 : 0));
      const d2 = bruteDepth(mask, height, width);
      assert.deepEqual(squaredDepthMap(mask, height, width), d2, `d² of id ${rec.id}, trial ${trial}`);
      const pixels: Array<[number, number]> = [];
      for (let i = 0; i < map.length; i++) if (mask[i] === 1) pixels.push([Math.floor(i / width), i % width]);
      const n = pixels.length, at = (p: [number, number]) => p[0] * width + p[1];
      const maxD2 = Math.max(...pixels.map((p) => d2[at(p)] as number));
      const isB = (r: number, c: number) =>
        r >= 0 && c >= 0 && r < height && c < width && d2[r * width + c] === 1 && mask[r * width + c] === 1;
      const B = pixels.filter((p) => d2[at(p)] === 1);
      const core = pixels.filter((p) => 4 * (d2[at(p)] as number) > maxD2);
      const rim = pixels.filter((p) => 4 * (d2[at(p)] as number) <= maxD2);
      assert.equal(rec.area, n);
      assert.equal(rec.aux.max_depth_sq, maxD2);
      assert.equal(rec.aux.n_boundary, B.length);
      assert.equal(rec.aux.n_core, core.length);
      assert.equal(rec.aux.n_rim, rim.length);
      assert.equal(rec.aux.convex_area, bruteConvexArea(pixels), `convex area of id ${rec.id}, trial ${trial}`);
      // perimeter from the codes, written out
      let P = 0;
      for (const [r, c] of B) {
        const n4 = [[-1, 0], [1, 0], [0, -1], [0, 1]].filter(([a, b]) => isB(r + (a as number), c + (b as number)))
          .length;
        const nd = [[-1, -1], [-1, 1], [1, -1], [1, 1]].filter(([a, b]) => isB(r + (a as number), c + (b as number)))
          .length;
        const code = 1 + 2 * n4 + 10 * nd;
        P += [5, 7, 15, 17, 25, 27].includes(code)
          ? 1
          : [21, 33].includes(code)
          ? SQRT2
          : [13, 23].includes(code)
          ? (1 + SQRT2) / 2
          : 0;
      }
      close(rec.aux.perimeter, P, "perimeter");
      // ellipse from float population covariances
      const mr = pixels.reduce((s, p) => s + p[0], 0) / n, mc = pixels.reduce((s, p) => s + p[1], 0) / n;
      const vrr = pixels.reduce((s, p) => s + (p[0] - mr) ** 2, 0) / n;
      const vcc = pixels.reduce((s, p) => s + (p[1] - mc) ** 2, 0) / n;
      const vrc = pixels.reduce((s, p) => s + (p[0] - mr) * (p[1] - mc), 0) / n;
      const tr = vrr + vcc, det = vrr * vcc - vrc * vrc, disc = Math.sqrt(Math.max(0, tr * tr / 4 - det));
      const l1 = tr / 2 + disc;
      close(rec.aux.major_axis_length, 4 * Math.sqrt(l1), "major");
      close(rec.aux.centroid[0], mr, "centroid r");
      close(rec.aux.centroid[1], mc, "centroid c");
      if (rec.aspect_ratio !== null) {
        const l2 = det / l1;
        if (l2 > 1e-6 * l1) {
          close(rec.aux.minor_axis_length, 4 * Math.sqrt(l2), "minor");
          // ecc² = 1 − l2/l1; float eigenvalues of symmetric shapes leave ~1e-8 in ecc itself
          assert.ok(Math.abs(rec.eccentricity ** 2 - (1 - l2 / l1)) < 1e-9, `eccentricity ${rec.eccentricity}`);
        }
      } else assert.ok(Math.abs(det) < 1e-9, "collinear ⇒ zero determinant");
      // H statistics and the boundary gradient
      const hs = pixels.map((p) => H[at(p)] as number), mean = hs.reduce((a, b) => a + b, 0) / n;
      close(rec.hematoxylin_mean, mean, "H mean");
      close(rec.hematoxylin_var, hs.reduce((s, h) => s + (h - mean) ** 2, 0) / n, "H variance");
      close(rec.mean_boundary_gradient, B.reduce((s, p) => s + (G[at(p)] as number), 0) / B.length, "mean G");
      if (rim.length === 0) assert.equal(rec.core_rim_diff, null);
      else {
        const m = (ps: Array<[number, number]>) => ps.reduce((s, p) => s + (H[at(p)] as number), 0) / ps.length;
        close(rec.core_rim_diff as number, m(core) - m(rim), "core − rim");
      }
      const flags = [
        ...(rec.aspect_ratio === null ? ["collinear"] : []),
        ...(rim.length === 0 ? ["rim_empty"] : []),
        ...(rec.aux.bbox[0] === 0 || rec.aux.bbox[1] === 0 || rec.aux.bbox[2] === height || rec.aux.bbox[3] === width
          ? ["touches_border"]
          : []),
        ...(n === 1 ? ["single_pixel"] : []),
      ];
      assert.deepEqual(rec.flags, flags);
    }
  }
  assert.ok(checked > 500, `checked ${checked} objects`);
});
