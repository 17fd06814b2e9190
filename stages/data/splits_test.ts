import assert from "node:assert/strict";
import { dominantClass, pannukeSplit, stratifiedSplit } from "./splits.ts";

Deno.test("PanNuke rotations: split 1 = 1-2-3, split 2 = 2-1-3, split 3 = 3-2-1 (train-val-test folds)", () => {
  const foldOf = [1, 1, 2, 3, 3, 3, 2];
  assert.deepEqual(pannukeSplit(foldOf, 1), { train: [0, 1], val: [2, 6], test: [3, 4, 5] });
  assert.deepEqual(pannukeSplit(foldOf, 2), { train: [2, 6], val: [0, 1], test: [3, 4, 5] });
  assert.deepEqual(pannukeSplit(foldOf, 3), { train: [3, 4, 5], val: [2, 6], test: [0, 1] });
  assert.throws(() => pannukeSplit([1, 1, 2], 1), /needs fold 3 for test/);
});

Deno.test("stratified split: disjoint, complete, proportional per stratum, seeded", () => {
  const keys = [...Array(30).fill("a"), ...Array(10).fill("b"), "c"];
  const s = stratifiedSplit(keys, { val: 0.2 }, 7);
  assert.equal(s.train.length + s.val.length + s.test.length, keys.length);
  assert.equal(new Set([...s.train, ...s.val]).size, keys.length);
  assert.equal(s.val.filter((i) => keys[i] === "a").length, 6);
  assert.equal(s.val.filter((i) => keys[i] === "b").length, 2);
  assert.ok(s.train.includes(40), "a stratum of one stays in training");
  assert.deepEqual(stratifiedSplit(keys, { val: 0.2 }, 7), s);
  assert.notDeepEqual(stratifiedSplit(keys, { val: 0.2 }, 8).val, s.val);
  const three = stratifiedSplit(keys, { val: 0.2, test: 0.2 }, 1);
  assert.equal(three.test.filter((i) => keys[i] === "a").length, 6);
  assert.throws(() => stratifiedSplit(keys, { val: 0.6, test: 0.5 }, 1), /sum below 1/);
});

Deno.test("dominantClass names the most frequent class (lowest on ties)", () => {
  assert.equal(dominantClass(Int32Array.from([-1, 2, 1, 2, 1]), ["a", "b", "c"]), "b");
  assert.equal(dominantClass(Int32Array.from([-1]), ["a"]), "none");
});
