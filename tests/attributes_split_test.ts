import assert from "node:assert/strict";
import { Pipeline, Runner } from "../mod.ts";
import { maskFeaturesStage, trainingNuclei } from "../stages/attributes/stages.ts";
import { nucleiOfSamples } from "../stages/attributes/table.ts";
import { openDataset } from "../stages/data/source.ts";
import { seededSplit } from "../stages/data/splits.ts";
import { datasetSource } from "../stages/data/source.ts";
import { inMemory } from "./_helpers.ts";

const ref = { kind: "synthetic" as const, path: "", seed: 3, tiles: 12, merge: false };

Deno.test("trainingNuclei: the attribute fit's table holds exactly the nuclei of the run's training split", () =>
  inMemory(
    Runner.run(
      Pipeline.empty.source("dataset", datasetSource(ref))
        .node("features", maskFeaturesStage, { inputs: { dataset: "dataset" } })
        .node("s0", trainingNuclei, { inputs: { table: "features", dataset: "dataset" }, config: { seed: 0 } })
        .node("s1", trainingNuclei, { inputs: { table: "features", dataset: "dataset" }, config: { seed: 1 } }),
      ["features", "s0", "s1"],
    ),
  ).then(async ({ outputs }) => {
    const ds = await openDataset({ ...ref, content: "" });
    for (const [seed, table] of [[0, outputs.s0], [1, outputs.s1]] as const) {
      const split = await seededSplit(ds, 0.2, seed);
      assert.ok(split.val.length > 0 && split.train.length > 0);
      const train = new Set(split.train);
      assert.ok(table.sample.every((s) => train.has(s)), `seed ${seed}: no held-out nucleus`);
      const expected = outputs.features.sample.filter((s) => train.has(s)).length;
      assert.equal(table.id.length, expected, `seed ${seed}: every training nucleus`);
      assert.ok(expected < outputs.features.id.length);
      for (const [f, column] of Object.entries(table.columns)) assert.equal(column.length, expected, f);
    }
    assert.notDeepEqual(Array.from(outputs.s0.sample), Array.from(outputs.s1.sample), "another seed, another split");
    ds.close();
  }));

Deno.test("nucleiOfSamples keeps rows of the chosen samples in order, every column alike", () => {
  const t = {
    classes: ["a"],
    sampleIds: ["x", "y", "z"],
    organs: ["", "", ""],
    sample: Int32Array.from([0, 1, 1, 2]),
    id: Int32Array.from([1, 1, 2, 1]),
    cls: Int32Array.from([0, 0, -1, 0]),
    flags: Uint8Array.from([0, 4, 0, 1]),
    columns: { area: Float64Array.from([10, 20, NaN, 40]) },
  };
  const kept = nucleiOfSamples(t, new Set([1, 2]));
  assert.deepEqual(Array.from(kept.sample), [1, 1, 2]);
  assert.deepEqual(Array.from(kept.id), [1, 2, 1]);
  assert.deepEqual(Array.from(kept.cls), [0, -1, 0]);
  assert.deepEqual(Array.from(kept.flags), [4, 0, 1]);
  assert.deepEqual(Array.from(kept.columns.area as Float64Array), [20, NaN, 40]);
  assert.deepEqual(kept.sampleIds, t.sampleIds);
});
