import assert from "node:assert/strict";
import { assertGolden, goldenCases } from "./_attributes_golden.ts";
import { deno, withTempDir } from "./_helpers.ts";
import { taskArgs } from "./_tasks.ts";

const attributes = (...args: string[]) => deno([...taskArgs("attributes"), ...args]);
const fixtures = new URL("./fixtures/attributes/", import.meta.url).pathname;

// §B7 as a CSV: the feature column is called x, so it is named with --features
const EXAMPLE_CSV = "label,x\n" + [..."AAAABABBBBCCCCC"].map((l, i) => `${l},${i + 1}`).join("\n") + "\n";

/** One clean error line on stderr, nothing on stdout, exit code 1. */
const assertUsageError = (r: { code: number; stdout: string; stderr: string }, message: RegExp) => {
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0] as string, message);
};

Deno.test("attributes fit: §B6 JSON on stdout, --summary, and --json written with a short summary", () =>
  withTempDir(async (dir) => {
    const input = `${dir}/rows.csv`;
    await Deno.writeTextFile(input, EXAMPLE_CSV);
    const base = ["fit", "--input", input, "--features", "x", "--min-leaf", "2"];
    const full = await attributes(...base);
    assert.equal(full.code, 0, full.stderr);
    const fit = JSON.parse(full.stdout);
    assert.deepEqual(fit.folds, [0, 3, 4, 1, 3, 2, 2, 1, 4, 0, 4, 0, 2, 1, 3]);
    assert.equal(fit.selection.separation.x.S, 2.953401538084737);
    assert.deepEqual(fit.binning.x.thresholds_full, [4.5, 10.5]);
    assert.deepEqual(fit.binning.x.thresholds, [10.5]);
    assert.deepEqual(fit.binning.x.words, ["low", "high"]);
    assert.equal(fit.params.min_leaf, 2);

    const summary = await attributes(...base, "--summary");
    assert.equal(summary.code, 0, summary.stderr);
    assert.deepEqual(JSON.parse(summary.stdout), {
      selected: ["x"],
      binning: { x: { thresholds: [10.5], words: ["low", "high"] } },
    });

    const out = `${dir}/out.json`;
    const written = await attributes(...base, "--json", out);
    assert.equal(written.code, 0, written.stderr);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(out)), fit);
    assert.match(written.stdout, /^15 labelled rows, 3 classes \(A 5, B 5, C 5\)\nselected: x\n/);
    assert.match(written.stdout, /x \(generic, \+\): thresholds 10\.5 → low \| high\n/);
    assert.match(written.stdout, new RegExp(`wrote ${out}\n$`));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["out.json", "rows.csv"], "no temp file");

    // criterion, seed and folds reach the fit
    const gain = await attributes(...base, "--criterion", "gain", "--seed", "4", "--folds", "3", "--summary");
    assert.equal(gain.code, 0, gain.stderr);
    const g = await attributes(...base, "--criterion", "gain", "--seed", "4", "--folds", "3");
    const gfit = JSON.parse(g.stdout);
    assert.deepEqual(gfit.binning.x.thresholds_full, [4.5, 6.5, 10.5]);
    assert.equal(gfit.params.seed, 4);
    assert.equal(gfit.binning.x.thresholds_folds.length, 3);
  }));

Deno.test("attributes fit with a golden case's flags equals the Python oracle", () =>
  withTempDir(async (dir) => {
    for (const name of ["unicode_labels", "quantile_3_intervals"]) {
      const c = goldenCases.find((k) => k.name === name);
      assert.ok(c !== undefined, name);
      const out = `${dir}/${name}.json`;
      const r = await attributes("fit", "--input", `${fixtures}${c.csv}`, ...c.cli, "--json", out);
      assert.equal(r.code, 0, r.stderr);
      const expected = JSON.parse(await Deno.readTextFile(`${fixtures}${c.expected}`));
      assertGolden(JSON.parse(await Deno.readTextFile(out)), expected);
    }
  }));

Deno.test("attributes fit: bad CSV files and bad flags give one error line naming the problem", () =>
  withTempDir(async (dir) => {
    const write = async (name: string, text: string) => {
      await Deno.writeTextFile(`${dir}/${name}`, text);
      return `${dir}/${name}`;
    };
    const noLabel = await write("nolabel.csv", "class,area\na,1\n");
    assertUsageError(
      await attributes("fit", "--input", noLabel),
      new RegExp(`^error: ${noLabel} line 1: no "label" column \\(columns: class, area\\)$`),
    );
    const badNumber = await write("badnum.csv", "label,area,solidity\na,1,0.9\nb,12 px,0.8\n");
    assertUsageError(
      await attributes("fit", "--input", badNumber),
      new RegExp(`^error: ${badNumber} line 3, column 2 \\("area"\\): cannot read "12 px" as a number$`),
    );
    const ragged = await write("ragged.csv", "label,area\na,1\nb,2,3\n");
    assertUsageError(
      await attributes("fit", "--input", ragged),
      new RegExp(`^error: ${ragged} line 3: 3 fields, the header has 2$`),
    );
    assertUsageError(await attributes("fit", "--input", `${dir}/none.csv`), /^error: cannot read .*none\.csv/);
    const good = await write("good.csv", EXAMPLE_CSV);
    assertUsageError(
      await attributes("fit", "--input", good, "--features", "x", "--min-leaf", "0"),
      /^error: --min-leaf: expected an integer in \[1, ∞\], found 0$/,
    );
    assertUsageError(
      await attributes("fit", "--input", good, "--features", "x", "--bin", "x,area"),
      /^error: --bin: 'area' is not one of the features \(x\)$/,
    );
    assertUsageError(
      await attributes("fit", "--input", good, "--features", "x", "--max-thresholds", "7"),
      /^error: --max-thresholds: expected an integer in \[0, 4\], found 7$/,
    );
    assertUsageError(await attributes("fit", "--input", good), /no feature column \(expected some of: area, /);
  }));
