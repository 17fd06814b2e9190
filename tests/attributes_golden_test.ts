/**
 * Part B against golden fixtures from an independent Python implementation of the spec
 * (tests/fixtures/attributes/make_attributes_golden.py; its Spearman ρ checked against scipy.stats.spearmanr).
 * Floats must agree to 1e-9 relative, everything else (keys, lengths, strings, booleans, nulls) exactly.
 */
import assert from "node:assert/strict";
import { parseRowsCsv } from "../stages/attributes/csv.ts";
import { fitAttributes } from "../stages/attributes/fit.ts";
import { assertGolden, goldenCases, goldenDir as dir } from "./_attributes_golden.ts";

for (const c of goldenCases) {
  Deno.test(`golden ${c.name}: fitAttributes on ${c.csv} equals the Python oracle`, async () => {
    const { rows, features } = parseRowsCsv(await Deno.readTextFile(new URL(c.csv, dir)), c.csv);
    const fit = fitAttributes(rows, c.params, { ...c.options, features });
    const expected = JSON.parse(await Deno.readTextFile(new URL(c.expected, dir)));
    assertGolden(JSON.parse(JSON.stringify(fit)), expected);
  });
}

Deno.test("golden fixtures cover what they should", () => {
  const names = goldenCases.map((c) => c.name);
  for (const n of ["three_classes", "three_classes_gain_all", "integer_labels_gain", "unicode_labels", "degenerate"]) {
    assert.ok(names.includes(n), n);
  }
  assert.ok(goldenCases.some((c) => c.options.method === "quantile"));
});

Deno.test("§B8 on the fixture: the pure-noise feature keeps thresholds under gain, none under mdlp", async () => {
  const read = async (name: string) => JSON.parse(await Deno.readTextFile(new URL(`${name}.json`, dir)));
  const mdlp = await read("three_classes_all"), gain = await read("three_classes_gain_all");
  assert.deepEqual(mdlp.binning.extent.thresholds_full, []);
  assert.ok(gain.binning.extent.thresholds.length >= 2, JSON.stringify(gain.binning.extent.thresholds));
});
