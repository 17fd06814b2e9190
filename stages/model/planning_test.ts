import assert from "node:assert/strict";
import { mulberry32 } from "../data/random.ts";
import { nonZeroBoxes, randomPoints, sampleBoxed, sampleValues } from "./planning.ts";

Deno.test("sampleBoxed equals sampleValues on 0/1 masks: small blobs, edge blobs, empty masks, shared and per-mask points", () => {
  const rng = mulberry32(3);
  const [R, h, w] = [7, 23, 17];
  const masks = new Uint8Array(R * h * w);
  for (let r = 0; r < R - 1; r++) { // the last mask stays empty
    const [y0, x0] = r === 0
      ? [0, 0]
      : r === 1
      ? [h - 3, w - 4]
      : [Math.floor(rng() * (h - 5)), Math.floor(rng() * (w - 5))];
    for (let y = y0; y < Math.min(h, y0 + 4); y++) {
      for (let x = x0; x < Math.min(w, x0 + 5); x++) if (rng() < 0.8) masks[(r * h + y) * w + x] = 1;
    }
  }
  const boxes = nonZeroBoxes(masks, R, h, w);
  assert.ok((boxes[4 * (R - 1)] as number) > (boxes[4 * (R - 1) + 2] as number), "an empty mask has an empty box");
  const rows = Int32Array.from({ length: 12 }, () => Math.floor(rng() * R));
  for (const shared of [true, false]) {
    const P = 500;
    // uniform points, and points right at the borders of the grid
    const xy = randomPoints(rng, shared ? P : rows.length * P);
    for (let i = 0; i < 40; i++) xy[2 * i] = i % 2 ? 0 : 0.9999, xy[2 * i + 1] = i % 3 ? 0.0001 : 1;
    const layout = { K: rows.length, P, h, w, xy, shared, rows };
    assert.deepEqual(sampleBoxed(masks, boxes, layout), sampleValues(masks, layout), `shared ${shared}`);
  }
});
