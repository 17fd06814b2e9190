import assert from "node:assert/strict";
import { splitLine, validationTables } from "./summary.ts";

Deno.test("validationTables: headline and per-class tables at 3 decimals; null → –", () => {
  const md = validationTables({
    tiles: 45,
    bPQ: 0.2862687619198877,
    aji: 0.36517464645800346,
    detectionF1: 0.6635001826817684,
    classF1: { other: 0, inflammatory: 0.46524064171123 },
    meanClassF1: 0.3541088916446981,
    classPQ: { other: null, inflammatory: 0.36354972781035094 },
  });
  assert.equal(
    md,
    [
      "| held-out tiles | bPQ | AJI | detection F1 | mean class F1 |",
      "|---|---|---|---|---|",
      "| 45 | 0.286 | 0.365 | 0.664 | 0.354 |",
      "",
      "| class | F1 | PQ |",
      "|---|---|---|",
      "| other | 0.000 | – |",
      "| inflammatory | 0.465 | 0.364 |",
    ].join("\n"),
  );
});

Deno.test("validationTables: no held-out split says so", () => {
  assert.equal(validationTables({}), "No held-out validation (`--val-fraction 0`).");
  assert.equal(validationTables({ tiles: 0 }), "No held-out validation (`--val-fraction 0`).");
});

Deno.test("splitLine: counts in words; anything else shown as is", () => {
  assert.equal(splitLine('{"train":22,"val":5}'), "22 training images, 5 held out");
  assert.equal(splitLine('{"train":27,"val":0}'), "27 training images, 0 held out (no validation)");
  assert.equal(splitLine("odd"), "odd");
  assert.equal(splitLine(undefined), "unknown");
});
