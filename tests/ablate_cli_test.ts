import assert from "node:assert/strict";
import { writeClipFolder } from "./_clip_folder.ts";
import { deno, withTempDir } from "./_helpers.ts";
import { taskArgs } from "./_tasks.ts";

const ablate = (...args: string[]) => deno([...taskArgs("ablate"), ...args]);
const micro = ["--data", "synthetic:2", "--tiles", "6", "--preset", "micro", "--steps", "2", "--batch", "1"];

Deno.test("deno task ablate: rows × seeds in one DAG → table, JSON and chart; changing one row retrains that row only", () =>
  withTempDir(async (dir) => {
    const args = [...micro, "--rows", "baseline,vl_fixed,vl_attr_entropy", "--seeds", "2", "--cache", `${dir}/cache`];
    const r = await ablate(...args, "--out", `${dir}/out`);
    assert.equal(r.code, 0, r.stderr);
    const md = await Deno.readTextFile(`${dir}/out/ablation.md`);
    assert.match(md, /\| row \| seeds \| Det F1 \| Cls F1 \| PQ \| AJI \| PQ neoplastic/);
    assert.match(md, /^Backend wasm \(matrix products: (OpenBLAS \(.*\) via FFI|XNNPACK, 1 thread)/m);
    for (const row of ["baseline", "vl_fixed", "vl_attr_entropy"]) {
      assert.match(
        md,
        new RegExp(`\\| ${row} \\| 2 \\| \\d\\.\\d{3} ± \\d\\.\\d{3} \\|`),
        `${row}: mean ± sd over 2 seeds`,
      );
    }
    const json = JSON.parse(await Deno.readTextFile(`${dir}/out/ablation.json`));
    assert.equal(json.runs.length, 6);
    assert.equal(json.backend.name, "wasm");
    assert.deepEqual(json.rows, ["baseline", "vl_fixed", "vl_attr_entropy"]);
    for (const run of json.runs) assert.ok(run.scores.tiles > 0 && typeof run.scores.detectionF1 === "number");
    const png = await Deno.readFile(`${dir}/out/ablation.png`);
    assert.deepEqual(Array.from(png.subarray(1, 4)), [0x50, 0x4e, 0x47], "a PNG");
    // one row changed: only its two trainings miss; the others and the attribute chain are cached
    const plan = await ablate(...args, "--set", "vl_fixed.steps=3", "--explain");
    assert.equal(plan.code, 0, plan.stderr);
    for (const s of [0, 1]) {
      assert.match(plan.stdout, new RegExp(`train\\.baseline\\.s${s}\\s+hit`));
      assert.match(plan.stdout, new RegExp(`train\\.vl_attr_entropy\\.s${s}\\s+hit`));
      assert.match(plan.stdout, new RegExp(`train\\.vl_fixed\\.s${s}\\s+miss .*steps 2 → 3`));
    }
    // each seed's attribute words come from its own training split, fitted once and shared by its rows
    for (const s of [0, 1]) assert.match(plan.stdout, new RegExp(`words\\.entropy\\.s${s}\\s+hit`));
  }));

Deno.test("deno task ablate: unknown rows and bad --set are one clear line each", async () => {
  const unknown = await ablate("--rows", "baseline,everything");
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /^error: --rows: unknown row 'everything' \(rows: baseline, vl_fixed, .*, full\)/);
  const set = await ablate("--rows", "baseline", "--set", "vl_fixed.steps=3");
  assert.match(set.stderr, /^error: --set vl_fixed\.steps=3: row 'vl_fixed' is not among --rows/);
  const key = await ablate("--set", "baseline.depth=3");
  assert.match(key.stderr, /^error: --set baseline\.depth=3: expected ROW\.KEY=VALUE with KEY one of steps, batch, lr/);
});

Deno.test("deno task ablate --text-encoder: one frozen text stage feeds every row with text; the baseline is unchanged", () =>
  withTempDir(async (dir) => {
    await writeClipFolder(`${dir}/clip`);
    const r = await deno([
      ...taskArgs("ablate"),
      ...["--data", "synthetic:2", "--tiles", "8", "--preset", "micro", "--steps", "2", "--batch", "1"],
      ...["--rows", "baseline,vl_fixed,vl_attr_entropy", "--text-encoder", `${dir}/clip`, "--cache", `${dir}/cache`],
      "--explain",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\s*text\s+miss\s+text\.frozen/m);
    assert.match(r.stdout, /^\s*train\.baseline\.s0\s+miss\s+model\.train\s/m);
    assert.match(r.stdout, /^\s*train\.vl_fixed\.s0\s+pending\s+model\.train\.frozen_text\s/m);
    assert.match(r.stdout, /^\s*train\.vl_attr_entropy\.s0\s+pending\s+model\.train\.attributes\.frozen_text\s/m);
  }));
