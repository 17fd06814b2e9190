import assert from "node:assert/strict";
import { Effect } from "effect";
import { readNpy } from "../pipeline/codec/npy.ts";
import { decodeSafetensors } from "../pipeline/codec/safetensors.ts";
import { deno, withTempDir } from "./_helpers.ts";
import { blasInstallCommand } from "../stages/backend/blas_notice.ts";
import { loadBlas } from "../stages/backend/kernels/blas.ts";
import { taskArgs } from "./_tasks.ts";

const train = (...args: string[]) => deno([...taskArgs("train"), ...args]);
const trainWithEnv = (env: Record<string, string>, ...args: string[]) => deno([...taskArgs("train"), ...args], env);

Deno.test("deno task train (micro preset, 3 steps): checkpoint, metrics and summary; the rerun comes from the cache", () =>
  withTempDir(async (dir) => {
    const args = ["--data", "synthetic:2", "--tiles", "10", "--preset", "micro", "--steps", "3", "--batch", "1"];
    args.push("--out", `${dir}/run`, "--cache", `${dir}/cache`);
    const first = await train(...args);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /# Training summary/);
    assert.match(first.stdout, /wrote .*\/run\/checkpoint\.safetensors, metrics\.json, run\.json and summary\.md/);
    // what predict reads to describe nuclei with the training data's attribute bins
    const record = JSON.parse(await Deno.readTextFile(`${dir}/run/run.json`));
    assert.deepEqual([record.data, record.tiles, record.merge, record.row], ["synthetic:2", 10, false, "baseline"]);
    const metrics = JSON.parse(await Deno.readTextFile(`${dir}/run/metrics.json`));
    assert.equal(metrics.history.length, 3);
    assert.ok(metrics.history.every((h: { total: number }) => Number.isFinite(h.total)));
    assert.ok(metrics.validation.tiles > 0);
    for (const key of ["bPQ", "aji", "detectionF1", "meanClassF1"]) {
      assert.equal(typeof metrics.validation[key] === "number" || metrics.validation[key] === null, true, key);
    }
    const checkpoint = await Deno.stat(`${dir}/run/checkpoint.safetensors`);
    assert.ok(checkpoint.size > 10_000);
    // the held-out split in PanNuke's layout, scored by `deno task evaluate pannuke` as by the training
    const [truth, pred] = [await readNpy(`${dir}/run/heldout/masks.npy`), await readNpy(`${dir}/run/heldout/pred.npy`)];
    assert.deepEqual(truth.shape, [metrics.validation.tiles, 64, 64, 6]);
    assert.deepEqual(pred.shape, truth.shape);
    const scored = await deno([
      ...taskArgs("evaluate"),
      "pannuke",
      ...["--true", `${dir}/run/heldout/masks.npy`, "--pred", `${dir}/run/heldout/pred.npy`],
      ...["--types", `${dir}/run/heldout/types.npy`, "--json", `${dir}/scores.json`, "--cache", `${dir}/cache`],
    ]);
    assert.equal(scored.code, 0, scored.stderr);
    const scores = JSON.parse(await Deno.readTextFile(`${dir}/scores.json`));
    assert.ok(Object.keys(scores.tissues).length > 0, "synthetic organs are PanNuke tissues");
    assert.equal(scores.detection.f1, metrics.validation.detectionF1, "the same pairs, the same detection F1");
    assert.match(first.stdout, /held-out predictions \(\d+ tiles, PanNuke layout\): deno task evaluate pannuke/);
    const plan = await train(...args, "--explain");
    assert.match(plan.stdout, /checkpoint\s+hit\s+model\.train/);
    const again = await train(...args);
    assert.match(again.stdout, /\(from the cache\) wrote/);
  }));

Deno.test("deno task train: a backend that cannot start is one clear error, never a silent fallback", async () => {
  const r = await train("--backend", "node", "--steps", "1");
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error: backend 'node' is not available: @tensorflow\/tfjs-node is not installed/);
  const bad = await train("--data", "nowhere:1");
  assert.match(bad.stderr, /^error: unknown data source 'nowhere:1'/);
});

Deno.test("deno task train: ablations --no-stem and --queries learned, --threads; their summary says so", () =>
  withTempDir(async (dir) => {
    const common = ["--data", "synthetic:2", "--tiles", "6", "--preset", "micro", "--steps", "2", "--batch", "1"];
    const ablations = [
      "--no-stem",
      "--queries",
      "learned",
      "--threads",
      "1",
      "--focus-crops",
      "1",
      "--center-weight",
      "3",
    ];
    const r = await train(...common, ...ablations, ...["--out", `${dir}/run`, "--cache", `${dir}/cache`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /preset micro \(learned queries, without the stem; row baseline\)/);
    assert.match(r.stdout, /; 1 of the crops on a nucleus, class-balanced; loss weights dense 1, centre 3;/);
    assert.match(r.stdout, /matrix products: (OpenBLAS \(.*\) via FFI, 1 threads|XNNPACK, 1 thread)/);
    const file = await Effect.runPromise(decodeSafetensors(await Deno.readFile(`${dir}/run/checkpoint.safetensors`)));
    const names = Object.keys(file.tensors).join(" ");
    assert.match(names, /decoder\.queryFeat/, "learned queries are parameters");
    assert.doesNotMatch(names, /centers\.head/, "no centre head without centre queries");
    const plan = await train(...common, "--out", `${dir}/run2`, "--cache", `${dir}/cache`, "--explain");
    assert.match(plan.stdout, /checkpoint\s+miss\s+model\.train/, "the preset's defaults are another config");
    const focus = await train("--focus-crops", "1.5");
    assert.equal(focus.code, 1);
    assert.match(focus.stderr, /^error: --focus-crops must be in \[0, 1\], found 1.5/m);
    const negative = await train("--dense-weight", "-1");
    assert.equal(negative.code, 1);
    assert.match(negative.stderr, /^error: --dense-weight and --center-weight must be ≥ 0, found -1 and 1/m);
    const zero = await train("--threads", "0");
    assert.equal(zero.code, 1);
    assert.match(zero.stderr, /^error: --threads must be at least 1, found 0/);
  }));

Deno.test("deno task train --row full: the attribute chain feeds training; text tower, projections, category tokens and fusion are saved; every loss part logged", () =>
  withTempDir(async (dir) => {
    const common = ["--data", "synthetic:2", "--tiles", "6", "--preset", "micro", "--steps", "2", "--batch", "1"];
    const r = await train(...common, "--row", "full", "--out", `${dir}/run`, "--cache", `${dir}/cache`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /preset micro \(centers queries, with the stem; row full\)/);
    const file = await Effect.runPromise(decodeSafetensors(await Deno.readFile(`${dir}/run/checkpoint.safetensors`)));
    for (
      const name of [
        "vl.text.token_embedding",
        "vl.visual.weight",
        "vl.textual.weight",
        "vl.sim.tokens",
        "vl.fusion.presence.weight",
      ]
    ) {
      assert.ok(file.tensors[name] !== undefined, `${name} is saved`);
    }
    const metrics = JSON.parse(await Deno.readTextFile(`${dir}/run/metrics.json`));
    for (const h of metrics.history as Array<{ fix: number; attr: number; cent: number; presence: number }>) {
      assert.ok(h.fix > 0 && h.attr > 0 && h.cent > 0 && h.presence > 0, JSON.stringify(h));
    }
    const plan = await train(...common, "--row", "vl_attr_quantile", "--cache", `${dir}/cache`, "--explain");
    assert.match(plan.stdout, /features\s+hit/, "the feature table is shared between rows");
    assert.match(plan.stdout, /bins\s+miss/, "quantile bins are another fit");
    assert.ok(metrics.validation.tiles > 0, "the held-out split is predicted with SIM");
    const bad = await train("--row", "everything");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /row/);
    const rule = await train("--fusion-rule", "all");
    assert.match(rule.stderr, /^error: --fusion-rule: only row full has feature fusion/);
  }));

Deno.test("deno task train: Ctrl-C stops a long run promptly (exit 130), between steps", () =>
  withTempDir(async (dir) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [...taskArgs("train"), "--preset", "micro", "--data", "synthetic:1", "--tiles", "6"].concat(
        ["--steps", "100000", "--batch", "1", "--out", `${dir}/run`, "--cache", `${dir}/cache`],
      ),
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!/training: \d+/.test(seen)) { // progress lines: the loop is running
      const { value, done } = await stderr.read();
      if (done) break;
      seen += value;
    }
    const sent = performance.now();
    child.kill("SIGINT");
    const status = await child.status;
    await child.stdout.cancel();
    await stderr.cancel();
    assert.equal(status.code, 130, seen.slice(-500));
    // before the per-step yield, the signal waited for the next checkpoint write (≈ 8.6 s here, minutes on tiny)
    assert.ok(performance.now() - sent < 3_000, `stopped after ${performance.now() - sent} ms`);
  }));

Deno.test("deno task train: one note on stderr when wasm runs without native BLAS (why, cost, command); none with it or with IVAAN_BLAS=off", (t) =>
  withTempDir(async (dir) => {
    const args = ["--data", "synthetic:2", "--tiles", "4", "--preset", "micro", "--steps", "1", "--batch", "1"];
    args.push("--checkpoint-every", "0", "--cache", `${dir}/cache`);
    const notes = (stderr: string) => stderr.split("\n").filter((l) => l.includes("native BLAS"));
    await t.step("IVAAN_BLAS naming a missing library: the note; summary.md records XNNPACK and why", async () => {
      const r = await trainWithEnv(
        { IVAAN_BLAS: `${dir}/missing/libopenblas.so.0` },
        ...args,
        "--out",
        `${dir}/without`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(notes(r.stderr).length, 1, r.stderr);
      const line = notes(r.stderr)[0] as string;
      assert.match(
        line,
        /^note: native BLAS not found \(IVAAN_BLAS=.*\/missing\/libopenblas\.so\.0 cannot be opened\): training runs pure WASM on one thread, ≈ 3\.5× slower on 2 cores; point IVAAN_BLAS at an OpenBLAS library, or unset it and install it with: /,
      );
      assert.ok(line.endsWith(`install it with: ${blasInstallCommand()} (or deno task setup)`), line);
      const summary = await Deno.readTextFile(`${dir}/without/summary.md`);
      assert.match(summary, /backend wasm \(matrix products: XNNPACK, 1 thread \(no OpenBLAS found .*\/missing\//);
    });
    await t.step("IVAAN_BLAS=off: no note (turned off on purpose)", async () => {
      const r = await trainWithEnv({ IVAAN_BLAS: "off" }, ...args, "--out", `${dir}/off`);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(notes(r.stderr), [], r.stderr);
      assert.match(
        await Deno.readTextFile(`${dir}/off/summary.md`),
        /matrix products: XNNPACK, 1 thread \(IVAAN_BLAS=off\)/,
      );
    });
    const native = loadBlas();
    if (!("blas" in native)) {
      console.log(`skipping "with native BLAS": none here (${native.unavailable}); deno task setup installs it`);
    }
    await t.step({
      name: "with native BLAS: no note; summary.md records OpenBLAS",
      ignore: !("blas" in native),
      fn: async () => {
        const r = await train(...args, "--out", `${dir}/with`);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(notes(r.stderr), [], r.stderr);
        assert.match(await Deno.readTextFile(`${dir}/with/summary.md`), /matrix products: OpenBLAS \(.*\) via FFI/);
      },
    });
  }));

Deno.test("deno task train --minutes: the run plans its steps from the measured step time and stops at the budget", () =>
  withTempDir(async (dir) => {
    const args = [
      "--data",
      "synthetic:2",
      "--tiles",
      "10",
      "--preset",
      "conv_micro",
      "--batch",
      "1",
      "--minutes",
      "0.15",
    ];
    args.push("--out", `${dir}/run`, "--cache", `${dir}/cache`);
    const started = performance.now();
    const run = await train(...args);
    const seconds = (performance.now() - started) / 1000;
    assert.equal(run.code, 0, run.stderr);
    const metrics = JSON.parse(await Deno.readTextFile(`${dir}/run/metrics.json`));
    const steps = metrics.history.length;
    // far fewer than the 1,000,000-step ceiling, more than the 5 that measure the step time
    assert.ok(steps > 5 && steps < 10_000, `${steps} steps`);
    const last = metrics.history.at(-1);
    // the plan is re-estimated every step: on a loaded machine (the suite runs in parallel) the budget can end a step
    // or two before the latest plan, never after it
    assert.ok(last.planned >= steps && last.planned - steps <= 2, `planned ${last.planned}, ran ${steps} steps`);
    // the cosine schedule ends at the planned end: the last learning rate is near 0
    assert.ok(last.lr < 0.05 * 1e-3, `last lr ${last.lr}`);
    assert.match(run.stdout, new RegExp(`${steps} steps of batch 1 \\(a budget of 0.15 min\\); cosine schedule`));
    // a conv preset's recipe weighs its dense and centre losses 10 against the queries' (recipe.ts)
    assert.match(run.stdout, /cosine schedule; loss weights dense 20, centre 20; seed 0/);
    // 9 s of budget; start-up, validation of 2 tiles and the files come on top
    assert.ok(seconds < 60, `${seconds} s`);
    const file = await Effect.runPromise(decodeSafetensors(await Deno.readFile(`${dir}/run/checkpoint.safetensors`)));
    assert.equal(file.metadata?.step, String(steps));
  }));

Deno.test("deno task train --val-fraction 0: every image trains, no held-out split; bad fractions are one-line errors", () =>
  withTempDir(async (dir) => {
    const args = ["--data", "synthetic:2", "--tiles", "6", "--preset", "micro", "--steps", "2", "--batch", "1"];
    args.push("--val-fraction", "0", "--out", `${dir}/run`, "--cache", `${dir}/cache`);
    const run = await train(...args);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /split: 6 training images, 0 held out \(no validation\)/);
    assert.match(run.stdout, /No held-out validation/);
    const bad = await train(
      "--preset",
      "micro",
      "--val-fraction",
      "1",
      "--out",
      `${dir}/bad`,
      "--cache",
      `${dir}/cache`,
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: --val-fraction must be in \[0, 1\), found 1$/m);
  }));
