/** `deno task report` end to end on small run folders built here: a training run and an ablation. */
import assert from "node:assert/strict";
import sharp from "sharp";
import { encodeNpy } from "../pipeline/codec/npy.ts";
import { encodeSafetensors, tensor } from "../pipeline/codec/safetensors.ts";
import { deno, withTempDir } from "./_helpers.ts";
import { taskArgs } from "./_tasks.ts";

const report = (...args: string[]) => deno([...taskArgs("report"), ...args]);

const H = 16, W = 16, C = 6;

/** Paints id into channel c of tile n of a [N, 16, 16, 6] array over rows [r0, r1) × columns [c0, c1). */
const paint = (
  data: Float32Array,
  n: number,
  c: number,
  id: number,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
) => {
  for (let y = r0; y < r1; y++) for (let x = c0; x < c1; x++) data[((n * H + y) * W + x) * C + c] = id;
};

/**
 * A training run: a checkpoint with metadata and one tiny tensor, summary.md, and a 2-tile held-out
 * split with one nucleus found with its class, one found with the other class, one missed and one
 * false prediction.
 */
const trainingRun = async (dir: string) => {
  await Deno.mkdir(`${dir}/heldout`, { recursive: true });
  const history = Array.from({ length: 40 }, (_, i) => ({
    step: i + 1,
    total: 10 / (i + 1) + 1,
    class: 2 / (i + 1) + 0.1,
    mask: 0.3,
    dice: 1,
    center: 0.5,
    ms: 100,
  }));
  const metadata = {
    format: "ivaan-checkpoint/1",
    step: "40",
    config: JSON.stringify({ preset: "micro", steps: 40, batch: 1, seed: 0 }),
    model: JSON.stringify({ queries: "centers" }),
    classes: JSON.stringify(["tumour", "immune"]),
    history: JSON.stringify(history),
    validation: JSON.stringify({
      tiles: 2,
      bPQ: 0.5,
      aji: 0.4,
      detectionF1: 0.6,
      classF1: { tumour: 0.5, immune: null },
      meanClassF1: 0.5,
      classPQ: { tumour: 0.45, immune: 0.2 },
    }),
    split: JSON.stringify({ train: 4, val: 1 }),
  };
  const file = encodeSafetensors({ tensors: { w: tensor("F32", [2], new Float32Array([1, 2])) }, metadata });
  await Deno.writeFile(`${dir}/checkpoint.safetensors`, file);
  await Deno.writeTextFile(`${dir}/summary.md`, "# Training summary\n\n- data: synthetic:0; preset micro\n");
  const truth = new Float32Array(2 * H * W * C), pred = new Float32Array(2 * H * W * C);
  paint(truth, 0, 0, 1, 0, 4, 0, 4); // tumour, found as tumour
  paint(pred, 0, 0, 3, 0, 4, 0, 4);
  paint(truth, 0, 1, 2, 8, 12, 8, 12); // immune, found as tumour
  paint(pred, 0, 0, 4, 8, 12, 8, 12);
  paint(truth, 1, 1, 1, 0, 4, 0, 4); // immune, missed
  paint(pred, 1, 1, 2, 10, 14, 10, 14); // immune, false
  await Deno.writeFile(`${dir}/heldout/masks.npy`, encodeNpy(truth, [2, H, W, C]));
  await Deno.writeFile(`${dir}/heldout/pred.npy`, encodeNpy(pred, [2, H, W, C]));
};

const pngSize = async (path: string) => {
  const bytes = await Deno.readFile(path);
  assert.deepEqual([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47], `${path} is a PNG`);
  const { width = 0, height = 0 } = await sharp(bytes).metadata();
  return { width, height };
};

Deno.test("deno task report RUN: report.md, report.html and 3 PNGs beside the run, confusion counts in the table", () =>
  withTempDir(async (dir) => {
    const run = `${dir}/run`;
    await trainingRun(run);
    const r = await report(run);
    assert.equal(r.code, 0, r.stderr);
    const pngs = ["report-losses.png", "report-class-pq.png", "report-confusion.png"];
    for (const f of ["report.md", "report.html", ...pngs]) assert.match(r.stdout, new RegExp(`${run}/${f}`));
    const md = await Deno.readTextFile(`${run}/report.md`);
    for (const png of pngs) {
      assert.match(md, new RegExp(`!\\[[^\\]]+\\]\\(${png}\\)`), `report.md shows ${png}`);
      const { width, height } = await pngSize(`${run}/${png}`);
      assert.ok(width > 300 && height > 300, `${png}: ${width}×${height}`);
    }
    assert.match(md, /^# Training report: run$/m);
    assert.match(md, /\| preset \| micro \|/);
    assert.match(md, /- data: synthetic:0; preset micro/);
    assert.match(
      md,
      /\| 2 \| 0\.500 \| 0\.400 \| 0\.600 \| 0\.500 \| 0\.325 \|/,
      "validation row, mPQ = mean class PQ",
    );
    // rows truth, columns prediction: tumour→tumour 1; immune→tumour 1, 1 missed; 1 false immune
    assert.match(md, /\| tumour \| 1 \| 0 \| 0 \|/);
    assert.match(md, /\| immune \| 1 \| 0 \| 1 \|/);
    assert.match(md, /\| false predictions \| 0 \| 1 \| {2}\|/);
    assert.match(md, /2 nuclei matched, 1 of them with the right class \(50\.0 %\)/);
    const html = await Deno.readTextFile(`${run}/report.html`);
    assert.match(html, /^<!DOCTYPE html>/);
    assert.match(html, /<title>Training report: run<\/title>/);
    for (const png of pngs) assert.match(html, new RegExp(`<img alt="[^"]+" src="${png}">`));
    assert.match(html, /<tr><td>immune<\/td><td>1<\/td><td>0<\/td><td>1<\/td><\/tr>/);
    assert.doesNotMatch(html, /\|/, "every table became HTML");
  }));

Deno.test("deno task report RUN --out DIR: writes into DIR; a run without heldout/ says so, no confusion PNG", () =>
  withTempDir(async (dir) => {
    const run = `${dir}/run`;
    await trainingRun(run);
    await Deno.remove(`${run}/heldout`, { recursive: true });
    const r = await report(run, "--out", `${dir}/out`);
    assert.equal(r.code, 0, r.stderr);
    const md = await Deno.readTextFile(`${dir}/out/report.md`);
    assert.match(md, /no held-out predictions/);
    await Deno.stat(`${dir}/out/report-losses.png`);
    await assert.rejects(Deno.stat(`${dir}/out/report-confusion.png`), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(`${run}/report.md`), Deno.errors.NotFound, "nothing written into the run");
  }));

Deno.test("deno task report on an ablation folder: command, table, per-seed rows and the grouped chart", () =>
  withTempDir(async (dir) => {
    const scores = (f1: number) => ({
      tiles: 3,
      bPQ: 0.5,
      aji: 0.4,
      detectionF1: f1,
      classF1: { a: 0.5 },
      meanClassF1: 0.5,
      classPQ: { a: 0.3 },
    });
    const ablation = {
      command: "deno task ablate --rows baseline,full --seeds 2",
      rows: ["baseline", "full"],
      runs: [
        { row: "baseline", seed: 0, scores: scores(0.7) },
        { row: "baseline", seed: 1, scores: scores(0.9) },
        { row: "full", seed: 0, scores: scores(0.8) },
        { row: "full", seed: 1, scores: scores(0.8) },
      ],
    };
    await Deno.writeTextFile(`${dir}/ablation.json`, JSON.stringify(ablation));
    const r = await report(dir);
    assert.equal(r.code, 0, r.stderr);
    const md = await Deno.readTextFile(`${dir}/report.md`);
    assert.match(md, /Command: `deno task ablate --rows baseline,full --seeds 2`/);
    assert.match(md, /\| baseline \| 2 \| 0\.800 ± 0\.141 \|/);
    assert.match(md, /\| full \| 1 \| 3 \| 0\.800 \|/);
    assert.match(md, /!\[[^\]]+\]\(report-ablation\.png\)/);
    await pngSize(`${dir}/report-ablation.png`);
    await pngSize(`${dir}/report-ablation-class-pq.png`);
  }));

Deno.test("deno task report: a missing folder, or one with neither file, is one 'error:' line and exit 1", () =>
  withTempDir(async (dir) => {
    const missing = await report(`${dir}/nope`);
    assert.equal(missing.code, 1);
    const lines = missing.stderr.trim().split("\n");
    assert.equal(lines.length, 1, missing.stderr);
    assert.match(lines[0] as string, /^error: .*nope does not exist; expected a training run folder/);
    const empty = await report(dir);
    assert.equal(empty.code, 1);
    assert.match(
      empty.stderr.trim(),
      /^error: .* holds neither checkpoint\.safetensors \(a training run\) nor ablation\.json[^\n]*$/,
    );
    await Deno.writeTextFile(`${dir}/ablation.json`, "{}");
    const bad = await report(dir);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr.trim(), /^error: .*ablation\.json: not an ablation of deno task ablate[^\n]*$/);
  }));

Deno.test("deno task report --help: usage with an example", async () => {
  const r = await report("--help");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Example: deno task report runs\//);
  assert.match(r.stdout, /--out/);
});

Deno.test("deno task report on a vision–language run: UMAP of matched query embeddings with class anchors", () =>
  withTempDir(async (dir) => {
    const trained = await deno([
      ...taskArgs("train"),
      ...["--data", "synthetic:2", "--tiles", "10", "--preset", "micro", "--steps", "40", "--batch", "1"],
      ...["--row", "vl_fixed", "--out", `${dir}/run`, "--cache", `${dir}/cache`, "--checkpoint-every", "0"],
    ]);
    assert.equal(trained.code, 0, trained.stderr);
    const r = await report(`${dir}/run`);
    assert.equal(r.code, 0, r.stderr);
    const md = await Deno.readTextFile(`${dir}/run/report.md`);
    const m = /(\d+) queries; for ([\d.]+) % of them the nearest class anchor/.exec(md);
    assert.ok(m !== null, md);
    assert.ok(Number(m[1]) >= 3 && Number(m[2]) >= 0 && Number(m[2]) <= 100);
    assert.match(md, /!\[UMAP of matched query embeddings with class text anchors\]\(report-embeddings\.png\)/);
    const { width } = await sharp(`${dir}/run/report-embeddings.png`).metadata();
    assert.ok((width ?? 0) > 500);
    // without run.json the report says why there is no figure
    await Deno.remove(`${dir}/run/run.json`);
    const again = await report(`${dir}/run`, "--out", `${dir}/again`);
    assert.equal(again.code, 0, again.stderr);
    assert.match(await Deno.readTextFile(`${dir}/again/report.md`), /No figure: the run folder has no run\.json/);
  }));
