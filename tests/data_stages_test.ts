import assert from "node:assert/strict";
import { Pipeline, Runner } from "../mod.ts";
import { datasetSource } from "../stages/data/source.ts";
import { datasetSamples, datasetSplit, tensorsToSamples } from "../stages/data/stages.ts";
import { syntheticSample } from "../stages/data/synthetic.ts";
import { deno, inDir, withTempDir } from "./_helpers.ts";
import { taskArgs } from "./_tasks.ts";

const synthetic = (seed: number, tiles: number) =>
  datasetSource({ kind: "synthetic", path: "", seed, tiles, merge: false });

Deno.test("datasetSamples caches decoded samples; they decode back equal to the reader's, and the rerun is a hit", () =>
  withTempDir(async (dir) => {
    const p = Pipeline.empty.source("dataset", synthetic(4, 3)).node("samples", datasetSamples, {
      inputs: { dataset: "dataset" },
    });
    const first = await inDir(dir, Runner.run(p, ["samples"]));
    const { kind, classes, samples } = tensorsToSamples(first.outputs.samples);
    assert.equal(kind, "synthetic");
    assert.deepEqual(classes, ["neoplastic", "inflammatory", "connective", "dead", "epithelial"]);
    assert.equal(samples.length, 3);
    for (let i = 0; i < 3; i++) assert.deepEqual(samples[i], syntheticSample(4, i));
    const second = await inDir(dir, Runner.run(p, ["samples"]));
    assert.equal(second.report.find((s) => s.node === "samples")?.status, "hit");
  }));

Deno.test("datasetSplit: seeded, disjoint and complete", () =>
  withTempDir(async (dir) => {
    const p = (seed: number) =>
      Pipeline.empty.source("dataset", synthetic(1, 30)).node("split", datasetSplit, {
        inputs: { dataset: "dataset" },
        config: { val: 0.2, seed },
      });
    const a = (await inDir(dir, Runner.run(p(0), ["split"]))).outputs.split;
    const b = (await inDir(dir, Runner.run(p(0), ["split"]))).outputs.split;
    const c = (await inDir(dir, Runner.run(p(1), ["split"]))).outputs.split;
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.val, c.val);
    assert.equal(new Set([...a.train, ...a.val, ...a.test]).size, 30);
    assert.ok(a.val.length >= 4 && a.val.length <= 8, `val ${a.val.length}`);
  }));

Deno.test("data split on a PanNuke folder with one fold explains which fold is missing", () =>
  withTempDir(async (dir) => {
    const synth = await deno([...taskArgs("data"), "synth", "--out", dir, "--tiles", "2", "--dtype", "u1"]);
    assert.equal(synth.code, 0, synth.stderr);
    const r = await deno([...taskArgs("data"), "--no-cache", "split", `pannuke:${dir}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: .*PanNuke split 1 needs fold 2 for val, which is not present/);
  }));
