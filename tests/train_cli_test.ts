import assert from "node:assert/strict";
import { deno, withTempDir } from "./_helpers.ts";

const train = (...args: string[]) => deno(["run", "-A", "tasks/train.ts", ...args]);

Deno.test("deno task train (micro preset, 3 steps): checkpoint, metrics and summary; the rerun comes from the cache", () =>
  withTempDir(async (dir) => {
    const args = [
      "--data",
      "synthetic:2",
      "--tiles",
      "10",
      "--preset",
      "micro",
      "--steps",
      "3",
      "--batch",
      "1",
      "--out",
      `${dir}/run`,
      "--cache",
      `${dir}/cache`,
    ];
    const first = await train(...args);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /# Training summary/);
    assert.match(first.stdout, /wrote .*\/run\/checkpoint\.safetensors, metrics\.json and summary\.md/);
    const metrics = JSON.parse(await Deno.readTextFile(`${dir}/run/metrics.json`));
    assert.equal(metrics.history.length, 3);
    assert.ok(metrics.history.every((h: { total: number }) => Number.isFinite(h.total)));
    assert.ok(metrics.validation.tiles > 0);
    for (const key of ["bPQ", "aji", "detectionF1", "meanClassF1"]) {
      assert.equal(typeof metrics.validation[key] === "number" || metrics.validation[key] === null, true, key);
    }
    const checkpoint = await Deno.stat(`${dir}/run/checkpoint.safetensors`);
    assert.ok(checkpoint.size > 10_000);
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
