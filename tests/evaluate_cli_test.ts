import assert from "node:assert/strict";
import { Effect } from "effect";
import { encodeNpy } from "../pipeline/codec/npy.ts";
import { encodePng } from "../pipeline/codec/png.ts";
import { deno, type InstanceCase, withTempDir } from "./_helpers.ts";
import { taskArgs } from "./_tasks.ts";

const fixtures = new URL("./fixtures/evaluation/", import.meta.url).pathname;
const evaluate = (...args: string[]) => deno([...taskArgs("evaluate"), ...args]);

const instanceCases: InstanceCase[] = JSON.parse(await Deno.readTextFile(`${fixtures}instances.json`));

const near = (a: number | null, b: number | null, what: string) =>
  b === null ? assert.equal(a, null, what) : assert.ok(Math.abs((a as number) - b) <= 1e-9, `${what}: ${a} vs ${b}`);

/** `evaluate folder` on DIR/truth and DIR/pred, asserting exit code 0: its stdout and its JSON report. */
const evaluateFolder = async (dir: string) => {
  const r = await evaluate(
    "--no-cache",
    "folder",
    "--true",
    `${dir}/truth`,
    "--pred",
    `${dir}/pred`,
    "--json",
    `${dir}/f.json`,
  );
  assert.equal(r.code, 0, r.stderr);
  return { stdout: r.stdout, out: JSON.parse(await Deno.readTextFile(`${dir}/f.json`)) };
};

Deno.test("evaluate instances: Markdown on stdout, JSON equal to the golden values, cached rerun", () =>
  withTempDir(async (dir) => {
    const c = instanceCases.find((k) => k.expected.pq !== null && k.iou === 0.5) as InstanceCase;
    const args = [
      "--cache",
      `${dir}/cache`,
      "instances",
      "--true",
      `${fixtures}${c.true}`,
      "--pred",
      `${fixtures}${c.pred}`,
      "--json",
      `${dir}/out.json`,
    ];
    const first = await evaluate(...args);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^\| PQ \| DQ \| SQ \| TP \| FP \| FN \| AJI \| AJI\+ \| Dice \|/);
    assert.match(first.stderr, new RegExp(`wrote ${dir}/out.json`));
    const out = JSON.parse(await Deno.readTextFile(`${dir}/out.json`));
    for (const [k, v] of Object.entries(c.expected)) near(out[k], v, `${c.name}.${k}`);
    const second = await evaluate(...args);
    assert.match(second.stderr, /from the cache/);
    assert.equal(second.stdout, first.stdout);
  }));

Deno.test("evaluate pannuke: JSON keys and values equal the golden fixture", () =>
  withTempDir(async (dir) => {
    const cases = JSON.parse(await Deno.readTextFile(`${fixtures}pannuke.json`));
    const c = cases[0];
    const r = await evaluate(
      "--no-cache",
      "pannuke",
      "--true",
      `${fixtures}${c.true}`,
      "--pred",
      `${fixtures}${c.pred}`,
      "--types",
      `${fixtures}${c.types}`,
      "--json",
      `${dir}/p.json`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\| bPQ \| mPQ \| Det F1 \| Precision \| Recall \| Type acc\. \| Cls F1 \|/);
    assert.match(r.stdout, /\| neoplastic \| /);
    const out = JSON.parse(await Deno.readTextFile(`${dir}/p.json`));
    assert.deepEqual(Object.keys(out).sort(), ["bPQ", "classPQ", "detection", "mPQ", "perImage", "tissues"]);
    near(out.bPQ, c.expected.bPQ, "bPQ");
    near(out.mPQ, c.expected.mPQ, "mPQ");
    near(out.detection.clsF1, c.expected.detection.clsF1, "clsF1");
  }));

Deno.test("evaluate folder: means over images (npy and 16-bit PNG maps) equal the means of the golden values", () =>
  withTempDir(async (dir) => {
    const cases = instanceCases.filter((k) => k.iou === 0.5 && k.expected.pq !== null && k.expected.aji !== null).slice(
      0,
      4,
    );
    assert.equal(cases.length, 4);
    for (const side of ["truth", "pred"]) await Deno.mkdir(`${dir}/${side}/instances`, { recursive: true });
    for (const [i, c] of cases.entries()) {
      await Deno.copyFile(`${fixtures}${c.true}`, `${dir}/truth/instances/img${i}.npy`);
      if (i % 2 === 0) {
        await Deno.copyFile(`${fixtures}${c.pred}`, `${dir}/pred/instances/img${i}.npy`);
      } else {
        const { readLabelMap } = await import("../stages/evaluation/maps.ts");
        const map = await Effect.runPromise(readLabelMap(`${fixtures}${c.pred}`));
        assert.ok(Math.max(...map.labels) <= 65535);
        const png = await Effect.runPromise(
          encodePng({ width: map.width, height: map.height, channels: 1, data: Uint16Array.from(map.labels) }),
        );
        await Deno.writeFile(`${dir}/pred/instances/img${i}.png`, png);
      }
    }
    const { out } = await evaluateFolder(dir);
    assert.equal(out.images, 4);
    for (const key of ["pq", "dq", "sq", "aji", "ajiPlus", "dice"]) {
      near(out[key], cases.reduce((s, c) => s + (c.expected[key] as number), 0) / 4, key);
    }
    assert.deepEqual(out.perImage.map((p: { name: string }) => p.name), ["img0", "img1", "img2", "img3"]);
    assert.equal(out.detection.clsF1, null, "no class maps → no class F1");
  }));

Deno.test("evaluate folder with classes: per-type F1 from JSON class tables and per-pixel class maps", () =>
  withTempDir(async (dir) => {
    // two nuclei far apart: truth classes 1 and 2, prediction calls both 1
    const map = new Int32Array(40 * 40);
    for (let y = 5; y < 10; y++) for (let x = 5; x < 10; x++) map[y * 40 + x] = 1;
    for (let y = 25; y < 30; y++) for (let x = 25; x < 30; x++) map[y * 40 + x] = 7;
    for (const side of ["truth", "pred"]) {
      await Deno.mkdir(`${dir}/${side}/instances`, { recursive: true });
      await Deno.mkdir(`${dir}/${side}/classes`, { recursive: true });
      await Deno.writeFile(`${dir}/${side}/instances/a.npy`, encodeNpy(map, [40, 40]));
    }
    await Deno.writeTextFile(`${dir}/truth/classes/a.json`, JSON.stringify({ 1: 1, 7: 2 }));
    const classMap = Uint8Array.from(map, (v) => (v === 0 ? 0 : 1));
    await Deno.writeFile(
      `${dir}/pred/classes/a.png`,
      await Effect.runPromise(encodePng({ width: 40, height: 40, channels: 1, data: classMap })),
    );
    const { stdout, out } = await evaluateFolder(dir);
    // pairs (1,1) and (2,1): F1_1 = 2·1/(2·1 + 2·1) = 0.5, F1_2 = 0/(0 + 2·1) = 0, accuracy 0.5
    assert.deepEqual(out.detection, {
      f1: 1,
      precision: 1,
      recall: 1,
      accuracy: 0.5,
      typeF1: { 1: 0.5, 2: 0 },
      clsF1: 0.25,
    });
    assert.match(stdout, /\| class \| F1 \|/);
  }));

Deno.test("evaluate: bad input is one clear line naming the file and what was expected", () =>
  withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/small.npy`, encodeNpy(new Int32Array(4), [2, 2]));
    await Deno.writeFile(`${dir}/big.npy`, encodeNpy(new Int32Array(9), [3, 3]));
    await Deno.writeFile(`${dir}/neg.npy`, encodeNpy(Int32Array.from([0, -3, 0, 0]), [2, 2]));
    await Deno.writeFile(`${dir}/4d.npy`, encodeNpy(new Int32Array(8), [1, 2, 2, 2]));
    await Deno.writeTextFile(`${dir}/types.txt`, "Breast");
    const cases: Array<[string[], RegExp]> = [
      [
        ["instances", "--true", `${dir}/none.npy`, "--pred", `${dir}/small.npy`],
        /^error: --true: .*none\.npy does not exist$/,
      ],
      [
        ["instances", "--true", `${dir}/small.npy`, "--pred", `${dir}/big.npy`],
        /^error: .*big\.npy: size 3×3 differs from .*small\.npy \(2×2\)/,
      ],
      [
        ["instances", "--true", `${dir}/neg.npy`, "--pred", `${dir}/small.npy`],
        /^error: .*neg\.npy: value -3 at row 0, column 1 is not a non-negative integer label/,
      ],
      [
        ["instances", "--true", `${dir}/small.npy`, "--pred", `${dir}/small.npy`, "--iou", "1.5"],
        /^error: --iou: expected a number in \[0, 1\), found 1\.5$/,
      ],
      [
        ["pannuke", "--true", `${dir}/4d.npy`, "--pred", `${dir}/4d.npy`, "--types", `${dir}/types.txt`],
        /^error: .*4d\.npy: expected at least 5 channels \(neoplastic … epithelial\), found 2/,
      ],
      [
        ["folder", "--true", `${dir}`, "--pred", `${dir}/small.npy`],
        /^error: --pred: .*small\.npy is not a directory$/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const r = await evaluate("--no-cache", ...args);
      assert.equal(r.code, 1, args.join(" "));
      const errorLines = r.stderr.split("\n").filter((l) => l.startsWith("error"));
      assert.equal(errorLines.length, 1, r.stderr);
      assert.match(errorLines[0] as string, pattern);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    }
  }));

Deno.test("evaluate folder: a missing prediction is named", () =>
  withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/t/instances`, { recursive: true });
    await Deno.mkdir(`${dir}/p/instances`, { recursive: true });
    await Deno.writeFile(`${dir}/t/instances/x1.npy`, encodeNpy(new Int32Array(4), [2, 2]));
    await Deno.writeFile(`${dir}/t/instances/x2.npy`, encodeNpy(new Int32Array(4), [2, 2]));
    await Deno.writeFile(`${dir}/p/instances/x1.npy`, encodeNpy(new Int32Array(4), [2, 2]));
    const r = await evaluate("--no-cache", "folder", "--true", `${dir}/t`, "--pred", `${dir}/p`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: .*\/p: no prediction for 1 image\(s\): x2/);
  }));

/** Writes DIR/instances/NAME.png (16-bit ids) and DIR/classes/NAME.png (class + 1) of 40×40 rectangles [id, class + 1, x, y, w, h]. */
const writeRects = async (dir: string, name: string, rects: ReadonlyArray<readonly number[]>) => {
  const ids = new Uint16Array(40 * 40), classes = new Uint8Array(40 * 40);
  for (const [id = 0, c = 0, x0 = 0, y0 = 0, w = 0, h = 0] of rects) {
    for (let y = y0; y < y0 + h; y++) {
      for (let x = x0; x < x0 + w; x++) [ids[y * 40 + x], classes[y * 40 + x]] = [id, c];
    }
  }
  for (const sub of ["instances", "classes"]) await Deno.mkdir(`${dir}/${sub}`, { recursive: true });
  const png = (data: Uint8Array | Uint16Array) =>
    Effect.runPromise(encodePng({ width: 40, height: 40, channels: 1, data }));
  await Deno.writeFile(`${dir}/instances/${name}.png`, await png(ids));
  await Deno.writeFile(`${dir}/classes/${name}.png`, await png(classes));
};

Deno.test("evaluate breakdown: pooled counts, error categories, counterfactual PQ, confusion; mean PQ as evaluate folder", () =>
  withTempDir(async (dir) => {
    // image a: truths T1 | T2 touching (5×5 each, classes 1, 2) and T3 (class 1); the prediction
    //   merges T1 + T2 into one (IoU 25/50 = 0.5, no TP) and finds T3 exactly but as class 2.
    // image b: truth T (8×4, class 1) cut in two 4×4 halves, and a spurious prediction on background.
    await writeRects(`${dir}/truth`, "a", [[1, 1, 5, 5, 5, 5], [2, 2, 10, 5, 5, 5], [3, 1, 25, 25, 6, 6]]);
    await writeRects(`${dir}/pred`, "a", [[4, 1, 5, 5, 10, 5], [8, 2, 25, 25, 6, 6]]);
    await writeRects(`${dir}/truth`, "b", [[1, 1, 5, 20, 8, 4]]);
    await writeRects(`${dir}/pred`, "b", [[1, 1, 5, 20, 4, 4], [2, 1, 9, 20, 4, 4], [3, 2, 30, 5, 4, 4]]);
    await Deno.writeTextFile(`${dir}/truth/dataset.json`, JSON.stringify({ classes: ["tumour", "lymphocyte"] }));
    const r = await evaluate(
      "--no-cache",
      "breakdown",
      "--true",
      `${dir}/truth`,
      "--pred",
      `${dir}/pred`,
      "--json",
      `${dir}/b.json`,
      "--md",
      `${dir}/b.md`,
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(await Deno.readTextFile(`${dir}/b.json`));
    // TP = 1 (T3), FP = 1 (merge) + 2 (fragments) + 1 (spurious) = 4, FN = 2 (merged) + 1 (split) = 3
    assert.deepEqual([out.pooled.truth, out.pooled.pred, out.pooled.tp, out.pooled.fp, out.pooled.fn], [4, 5, 1, 4, 3]);
    assert.deepEqual(out.falseNegatives, {
      missed: { count: 0, share: 0 },
      merged: { count: 2, share: 2 / 3 },
      split: { count: 1, share: 1 / 3 },
      poorlySegmented: { count: 0, share: 0 },
    });
    assert.deepEqual(out.falsePositives, {
      spurious: { count: 1, share: 0.25 },
      fragment: { count: 2, share: 0.5 },
      merge: { count: 1, share: 0.25 },
      poorlySegmented: { count: 0, share: 0 },
    });
    // DQ = 1 / (1 + 2 + 1.5) = 1/4.5, SQ = 1 / (1 + 1e-6); merged found: TP 3, FP 3, FN 1 → DQ 3/5
    const sq = 1 / (1 + 1e-6);
    near(out.pooled.pq, sq / 4.5, "pooled PQ");
    near(out.counterfactualPQ.mergedFound, 0.6 * sq, "merged found");
    near(out.counterfactualPQ.splitFound, (2 / (2 + 1 + 1)) * sq, "split found: TP 2, FP 2, FN 2");
    near(out.counterfactualPQ.spuriousRemoved, (1 / (1 + 1.5 + 1.5)) * sq, "spurious removed: FP 3");
    // per image: a = 1 / (1 + 0.5 + 1) · SQ = 0.4·SQ, b = 0
    near(out.meanPQ, 0.2 * sq, "mean PQ");
    assert.deepEqual(out.types.names, ["tumour", "lymphocyte"]);
    assert.deepEqual(out.types.confusion, [[0, 1], [0, 0]], "T3: tumour called lymphocyte");
    assert.deepEqual(out.types.unmatchedTrue, [2, 1]);
    assert.deepEqual(out.types.unmatchedPred, [3, 1]);
    // the same folders through evaluate folder: same mean PQ and the same centroid-pairing type F1
    const folder = await evaluateFolder(dir);
    near(out.meanPQ, folder.out.pq, "mean PQ = evaluate folder's PQ");
    assert.deepEqual(out.types.centroidPairs.typeF1, folder.out.detection.typeF1);
    near(out.types.centroidPairs.clsF1, folder.out.detection.clsF1, "Cls F1");
    // Markdown: summary, the tables, and the same text in --md
    assert.match(r.stdout, /^\*\*PQ 0\.2222\*\* pooled over 2 images \(mean per-image PQ 0\.2000\)/);
    assert.match(
      r.stdout,
      /\| τ \| truth \| pred \| TP \| FP \| FN \| precision \| recall \| DQ \(F1\) \| SQ \| PQ \|/,
    );
    assert.match(
      r.stdout,
      /\| merged truths \/ merging predictions \| 2 \| 66\.7 % \| 1 \| 25\.0 % \| 0\.6000 \| \+0\.3778 \|/,
    );
    assert.match(r.stdout, /\| tumour \| 0 \| 1 \| 2 \|/);
    assert.match(r.stdout, /\| class \| F1 on PQ pairs \| F1 on centroid pairs/);
    assert.equal(await Deno.readTextFile(`${dir}/b.md`), r.stdout);
  }));

Deno.test("evaluate breakdown: a bad dataset.json is one error line naming it", () =>
  withTempDir(async (dir) => {
    await writeRects(`${dir}/truth`, "a", [[1, 1, 5, 5, 5, 5]]);
    await writeRects(`${dir}/pred`, "a", [[1, 1, 5, 5, 5, 5]]);
    await Deno.writeTextFile(`${dir}/truth/dataset.json`, JSON.stringify({ classes: "tumour" }));
    const r = await evaluate("--no-cache", "breakdown", "--true", `${dir}/truth`, "--pred", `${dir}/pred`);
    assert.equal(r.code, 1);
    const errorLines = r.stderr.split("\n").filter((l) => l.startsWith("error"));
    assert.equal(errorLines.length, 1, r.stderr);
    assert.match(errorLines[0] as string, /^error: .*dataset\.json: field "classes": expected a list of class names/);
  }));
