import assert from "node:assert/strict";
import { mulberry32 } from "./random.ts";

Deno.test("mulberry32's fill writes exactly the values that calls would, and calls and fills interleave", () => {
  const calls = mulberry32(1234), bulk = mulberry32(1234);
  const expected = Float32Array.from({ length: 1000 }, () => calls());
  const got = new Float32Array(1000);
  bulk.fill?.(got.subarray(0, 7), 7);
  got[7] = bulk();
  bulk.fill?.(got.subarray(8), 992);
  assert.deepEqual(got, expected);
  assert.equal(bulk(), calls(), "the state after a fill is the state after the calls");
  assert.ok(expected.every((v) => v >= 0 && v < 1));
});
