import assert from "node:assert/strict";
import { panNukeLayout, panNukeTissue } from "./heldout.ts";

Deno.test("panNukeLayout: ids in their class's channel, background channel 1, unlabelled nuclei left out", () => {
  // one 2×2 tile: id 1 (class 2), id 2 (class 0), id 3 (unlabelled, −1), background
  const layout = panNukeLayout([{ instances: [1, 2, 3, 0], classOf: [-1, 2, 0, -1] }], 2, 2);
  const pixel = (p: number) => [...layout.subarray(p * 6, p * 6 + 6)];
  assert.deepEqual(pixel(0), [0, 0, 1, 0, 0, 0]);
  assert.deepEqual(pixel(1), [2, 0, 0, 0, 0, 0]);
  assert.deepEqual(pixel(2), [0, 0, 0, 0, 0, 1], "an unlabelled nucleus is background for PanNuke");
  assert.deepEqual(pixel(3), [0, 0, 0, 0, 0, 1]);
  assert.throws(() => panNukeLayout([{ instances: [1], classOf: [-1, 5] }], 1, 1), /class 5 has no PanNuke channel/);
});

Deno.test("panNukeTissue: PanNuke's spelling where the tissue is one of its 19, else the name or 'unknown'", () => {
  assert.deepEqual(["kidney", "Bile-duct", "bile-duct", "gut", ""].map(panNukeTissue), [
    "Kidney",
    "Bile-duct",
    "Bile-duct",
    "gut",
    "unknown",
  ]);
});
