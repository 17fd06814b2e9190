import assert from "node:assert/strict";
import { familyOf, intervalBounds, intervalOf, intervalWords, SCALES, wordIndices } from "./words.ts";

Deno.test("centred word subsets for 1–5 intervals, direction +", () => {
  assert.deepEqual([1, 2, 3, 4, 5].map((k) => wordIndices(k, "+")), [
    [2],
    [1, 3],
    [1, 2, 3],
    [0, 1, 3, 4],
    [0, 1, 2, 3, 4],
  ]);
  const size = (k: number) => intervalWords("area", Array.from({ length: k - 1 }, (_, i) => i));
  assert.deepEqual([1, 2, 3, 4, 5].map(size), [
    ["medium"],
    ["small", "large"],
    ["small", "medium", "large"],
    ["tiny", "small", "large", "huge"],
    ["tiny", "small", "medium", "large", "huge"],
  ]);
});

Deno.test("direction − reverses the subsets: solidity with 3 intervals reads irregular, slightly irregular, smooth", () => {
  assert.deepEqual([1, 2, 3, 4, 5].map((k) => wordIndices(k, "-")), [
    [2],
    [3, 1],
    [3, 2, 1],
    [4, 3, 1, 0],
    [4, 3, 2, 1, 0],
  ]);
  assert.deepEqual(intervalWords("solidity", [0.8, 0.9]), ["irregular", "slightly irregular", "smooth"]);
  assert.deepEqual(intervalWords("solidity", [0.9]), ["irregular", "smooth"]);
  assert.deepEqual(intervalWords("solidity", [0.7, 0.8, 0.9, 0.95]), [
    "very irregular",
    "irregular",
    "slightly irregular",
    "smooth",
    "very smooth",
  ]);
  assert.throws(() => wordIndices(6, "+"), /1 to 5 intervals/);
  assert.throws(() => wordIndices(0, "-"), /1 to 5 intervals/);
});

Deno.test("families and directions of §B5; extent and unknown features are generic (+)", () => {
  const expected: [string, string, string][] = [
    ["area", "size", "+"],
    ["equivalent_diameter", "size", "+"],
    ["major_axis_length", "size", "+"],
    ["minor_axis_length", "size", "+"],
    ["perimeter", "size", "+"],
    ["eccentricity", "eccentricity", "+"],
    ["aspect_ratio", "eccentricity", "+"],
    ["hematoxylin_mean", "color_intensity", "+"],
    ["perimeter_ratio", "boundary_irregularity", "+"],
    ["solidity", "boundary_irregularity", "-"],
    ["mean_boundary_gradient", "boundary_sharpness", "+"],
    ["hematoxylin_var", "chromatin_heterogeneity", "+"],
    ["core_rim_diff", "chromatin_distribution", "+"],
    ["extent", "generic", "+"],
    ["x", "generic", "+"],
    ["constructor", "generic", "+"],
  ];
  for (const [feature, family, direction] of expected) {
    assert.deepEqual(familyOf(feature), { family, direction }, feature);
  }
  assert.deepEqual(SCALES.eccentricity, ["very round", "round", "oval", "elongated", "very elongated"]);
  assert.deepEqual(intervalWords("hematoxylin_var", [1]), ["homogeneous", "heterogeneous"]);
  assert.deepEqual(intervalWords("core_rim_diff", [0, 1]), ["rim-dark", "even", "core-dark"]);
});

Deno.test("interval of x = #{t : x > t}: a value equal to a threshold belongs to the interval below", () => {
  const t = [10.5, 20];
  assert.deepEqual([-Infinity, 0, 10.5, 10.6, 20, 20.01, 1e9].map((x) => intervalOf(t, x)), [0, 0, 0, 1, 1, 2, 2]);
  assert.equal(intervalOf([], 5), 0);
});

Deno.test("interval bounds (lower exclusive, upper inclusive), null for ±∞", () => {
  assert.deepEqual(intervalBounds([10.5, 20]), [
    { index: 0, lower_exclusive: null, upper_inclusive: 10.5 },
    { index: 1, lower_exclusive: 10.5, upper_inclusive: 20 },
    { index: 2, lower_exclusive: 20, upper_inclusive: null },
  ]);
  assert.deepEqual(intervalBounds([]), [{ index: 0, lower_exclusive: null, upper_inclusive: null }]);
});
