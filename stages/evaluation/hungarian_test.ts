import assert from "node:assert/strict";
import { linearSumAssignment } from "./hungarian.ts";

/** Minimum total cost over all assignments of min(r, c) pairs, by enumeration. */
const bruteForce = (cost: Float64Array, r: number, c: number): number => {
  const small = Math.min(r, c), transpose = r > c;
  const at = (i: number, j: number) => (transpose ? cost[j * c + i] : cost[i * c + j]) as number;
  const big = Math.max(r, c);
  let best = Infinity;
  const used = new Array<boolean>(big).fill(false);
  const go = (i: number, total: number) => {
    if (i === small) return void (best = Math.min(best, total));
    for (let j = 0; j < big; j++) {
      if (used[j]) continue;
      used[j] = true;
      go(i + 1, total + at(i, j));
      used[j] = false;
    }
  };
  go(0, 0);
  return best;
};

const rng = (seed: number) => () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 4294967296;
};

Deno.test("matches brute force on 300 random matrices up to 7×7, square and rectangular", () => {
  const rand = rng(11);
  for (let t = 0; t < 300; t++) {
    const r = 1 + Math.floor(rand() * 7), c = 1 + Math.floor(rand() * 7);
    const integer = t % 2 === 0; // integer costs make ties likely
    const cost = Float64Array.from({ length: r * c }, () => (integer ? Math.floor(rand() * 5) : rand() * 10));
    const { rows, cols } = linearSumAssignment(cost, r, c);
    assert.equal(rows.length, Math.min(r, c));
    assert.equal(new Set(cols).size, cols.length, "columns are used once");
    assert.equal(new Set(rows).size, rows.length, "rows are used once");
    const total = Array.from(rows).reduce((s, i, k) => s + (cost[i * c + (cols[k] as number)] as number), 0);
    assert.ok(Math.abs(total - bruteForce(cost, r, c)) < 1e-9, `case ${t}: ${r}×${c}`);
  }
});

Deno.test("maximize, empty and shape errors", () => {
  const cost = Float64Array.from([1, 2, 3, 4]); // [[1,2],[3,4]] → max 5 either way; ties: rows ascending
  const max = linearSumAssignment(cost, 2, 2, true);
  assert.equal((cost[max.cols[0] as number] as number) + (cost[2 + (max.cols[1] as number)] as number), 5);
  const tall = linearSumAssignment(Float64Array.from([5, 1, 3]), 3, 1);
  assert.deepEqual([Array.from(tall.rows), Array.from(tall.cols)], [[1], [0]]);
  assert.deepEqual(linearSumAssignment(new Float64Array(0), 0, 4).rows.length, 0);
  assert.throws(() => linearSumAssignment(new Float64Array(3), 2, 2), /2×2 needs 4 costs/);
  assert.throws(() => linearSumAssignment(Float64Array.from([NaN]), 1, 1), /finite/);
});

Deno.test("scipy's tie-breaking on a known case: [[0,0],[0,0]] assigns the diagonal", () => {
  const { cols } = linearSumAssignment(new Float64Array(4), 2, 2);
  assert.deepEqual(Array.from(cols), [0, 1]);
});

Deno.test("the same assignments as scipy's linear_sum_assignment on 200 tie-heavy matrices (fixture)", async () => {
  const cases: Array<
    { rows: number; cols: number; cost: number[]; maximize: boolean; assignedRows: number[]; assignedCols: number[] }
  > = JSON.parse(await Deno.readTextFile(new URL("../../tests/fixtures/hungarian_scipy.json", import.meta.url)));
  assert.equal(cases.length, 200);
  for (const [t, k] of cases.entries()) {
    const got = linearSumAssignment(Float64Array.from(k.cost), k.rows, k.cols, k.maximize);
    assert.deepEqual([Array.from(got.rows), Array.from(got.cols)], [k.assignedRows, k.assignedCols], `case ${t}`);
  }
});
