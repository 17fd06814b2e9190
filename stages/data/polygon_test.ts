import assert from "node:assert/strict";
import { readNpy } from "../../pipeline/codec/npy.ts";
import { fillPolygon } from "./polygon.ts";

const dir = new URL("../../tests/fixtures/polygon/", import.meta.url).pathname;

Deno.test("polygon fill equals scikit-image's draw.polygon on 40 overlapping polygons (tests/fixtures/make_polygon_golden.py)", async () => {
  const { height, width, regions } = JSON.parse(await Deno.readTextFile(`${dir}regions.json`)) as {
    height: number;
    width: number;
    regions: Array<{ xs: number[]; ys: number[] }>;
  };
  const label = new Int32Array(height * width);
  regions.forEach((r, k) => fillPolygon(r.xs, r.ys, height, width, (i) => (label[i] = k + 1)));
  const expected = await readNpy(`${dir}label.npy`);
  assert.deepEqual([...expected.shape], [height, width]);
  const diff = label.reduce((n, v, i) => n + (v === (expected.data as Int32Array)[i] ? 0 : 1), 0);
  assert.equal(diff, 0, `${diff} pixels differ`);
  assert.ok(label.some((v) => v !== 0));
});

Deno.test("a square with corners on pixel centres includes its boundary pixels (x=[2,4] × y=[1,3])", () => {
  const filled: number[] = [];
  fillPolygon([2, 4, 4, 2], [1, 1, 3, 3], 5, 6, (i) => filled.push(i));
  const expected = [1, 2, 3].flatMap((y) => [2, 3, 4].map((x) => y * 6 + x));
  assert.deepEqual(filled.sort((a, b) => a - b), expected);
});
