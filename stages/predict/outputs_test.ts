import assert from "node:assert/strict";
import { classMap, imageOutputs, relabelBy } from "./outputs.ts";

Deno.test("relabelBy: ids present in the kept map become 1..n in order; background stays 0; the other map follows", () => {
  const keep = Int32Array.from([0, 5, 5, 2, 0]), other = Int32Array.from([2, 5, 7, 0, 0]);
  const r = relabelBy(keep, other, [-1, 10, 11, 12, 13, 14, 15, 16], [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
  assert.deepEqual(Array.from(r.keep), [0, 2, 2, 1, 0]);
  assert.deepEqual(Array.from(r.other), [1, 2, 0, 0, 0], "id 7 vanished from the kept map: dropped");
  assert.deepEqual(Array.from(r.classOf), [-1, 11, 14]);
  assert.deepEqual(Array.from(r.scores).map((v) => Math.round(v * 10) / 10), [0, 0.2, 0.5]);
  assert.deepEqual(Array.from(classMap(r.keep, r.classOf)), [0, 15, 15, 12, 0]);
});

Deno.test("imageOutputs: more than 65,535 nuclei skip the 16-bit PNG (with a note) and keep every other file", async () => {
  const H = 260, W = 260, n = H * W; // one nucleus per pixel
  const instances = Int32Array.from({ length: n }, (_, i) => i + 1);
  const rgb = new Uint8Array(n * 3).fill(128);
  const prediction = {
    height: H,
    width: W,
    instances,
    classOf: Int32Array.from({ length: n + 1 }, (_, i) => (i === 0 ? -1 : i % 2)),
    scores: new Float32Array(n + 1).fill(0.9),
    classes: ["a", "b"],
    originalHeight: H,
    originalWidth: W,
  };
  const out = await imageOutputs(
    "big",
    { rgb, height: H, width: W },
    { rgb, height: H, width: W, originalHeight: H, originalWidth: W },
    prediction,
    undefined,
  );
  const names = out.files.map(([path]) => path);
  assert.ok(!names.includes("instances/big.png"));
  assert.ok(names.includes("npy/big.instances.npy") && names.includes("geojson/big.geojson"));
  assert.match(out.notes.join("\n"), /67600 nuclei do not fit a 16-bit PNG/);
  assert.equal(out.nuclei.length, n);
});
