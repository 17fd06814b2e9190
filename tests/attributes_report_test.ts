import assert from "node:assert/strict";
import sharp from "sharp";
import { attributePipeline } from "../tasks/attributes.ts";
import { Runner } from "../mod.ts";
import { deno, inDir, withTempDir } from "./_helpers.ts";
import { taskArgs } from "./_tasks.ts";

const consep = new URL("../../shared/data/consep/Train", import.meta.url).pathname;
const haveConsep = await Deno.stat(consep).then(() => true, () => false);
if (!haveConsep) console.warn(`skipping the CoNSeP attribute report test: ${consep} is absent`);

const report = (...args: string[]) => deno([...taskArgs("attributes"), "report", ...args]);

Deno.test("attributes report on synthetic data: Markdown, fitted JSON, prompts and one PNG per attribute", () =>
  withTempDir(async (dir) => {
    const r = await report("--data", "synthetic:2", "--tiles", "24", "--out", `${dir}/r`, "--cache", `${dir}/cache`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^selected attributes: \w+/);
    const md = await Deno.readTextFile(`${dir}/r/report.md`);
    for (
      const section of [
        "## Per-class feature summaries",
        "## Selection (§B1–B2)",
        "## Binned attributes (§B3–B5)",
        "## Example prompts",
      ]
    ) {
      assert.ok(md.includes(section), section);
    }
    const fit = JSON.parse(await Deno.readTextFile(`${dir}/r/attributes.json`));
    assert.equal(fit.spec_version, "1.0");
    assert.deepEqual(fit.classes, ["connective", "dead", "epithelial", "inflammatory", "neoplastic"]);
    const binned = Object.keys(fit.binning);
    assert.ok(binned.length >= 1 && binned.length <= 4);
    for (const feature of binned) {
      const meta = await sharp(`${dir}/r/${feature}.png`).metadata();
      assert.deepEqual([meta.width, meta.height], [800, 420]);
      assert.ok(md.includes(`![${feature}](${feature}.png)`));
    }
    const text = JSON.parse(await Deno.readTextFile(`${dir}/r/prompts.json`));
    assert.ok(text.nuclei.length > 100);
    assert.match(
      text.nuclei[0].classPrompt,
      /^a (neoplastic|inflammatory|connective|dead|epithelial) nucleus in (breast|colon|lung|kidney|liver)$/,
    );
    assert.match(text.images[0].text, /^a photo of a \w+ nuclei\./);
    const bad = await report("--data", "spaceship:1", "--out", `${dir}/x`);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: unknown data source 'spaceship:1'/);
  }));

Deno.test("the attribute chain reuses the feature table when only the binning seed changes", () =>
  withTempDir(async (dir) => {
    const ref = { kind: "synthetic" as const, path: "", seed: 3, tiles: 8, merge: false };
    const first = await inDir(
      dir,
      Runner.run(attributePipeline(ref, { seed: 0, criterion: "mdlp", method: "entropy" }), ["words"]),
    );
    assert.ok(first.report.every((s) => s.status !== "hit"));
    const second = await inDir(
      dir,
      Runner.run(attributePipeline(ref, { seed: 1, criterion: "mdlp", method: "entropy" }), ["words"]),
    );
    const status = Object.fromEntries(second.report.map((s) => [s.node, s.status]));
    assert.equal(status.features, "hit");
    assert.equal(status.selection, "hit");
    assert.equal(status.bins, "computed");
  }));

Deno.test({
  name: "attributes report on CoNSeP Train (shared real data): inflammatory darkest, spindle-shaped most elongated",
  ignore: !haveConsep,
  fn: () =>
    withTempDir(async (dir) => {
      const r = await report("--data", `consep:${consep}`, "--merge", "--out", `${dir}/r`, "--cache", `${dir}/cache`);
      assert.equal(r.code, 0, r.stderr);
      const fit = JSON.parse(await Deno.readTextFile(`${dir}/r/attributes.json`));
      assert.equal(fit.n_samples, 14759, "labelled nuclei not touching the tile border");
      assert.deepEqual(fit.selection.selected, [
        "hematoxylin_mean",
        "equivalent_diameter",
        "core_rim_diff",
        "aspect_ratio",
      ]);
      const md = await Deno.readTextFile(`${dir}/r/report.md`);
      const row = (feature: string) =>
        (md.split("\n").find((l) => l.startsWith(`| ${feature} |`)) as string).split("|").slice(2, 6).map((c) =>
          Number(c.trim().split(" ")[0])
        );
      const [, inflammatoryH, epithelialH, spindleH] = row("hematoxylin_mean") as [number, number, number, number];
      assert.ok(inflammatoryH > epithelialH && inflammatoryH > spindleH, "inflammatory nuclei are the darkest");
      const aspect = row("aspect_ratio") as [number, number, number, number];
      assert.equal(Math.max(...aspect), aspect[3], "spindle-shaped nuclei are the most elongated");
    }),
});
