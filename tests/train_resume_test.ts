import assert from "node:assert/strict";
import { decodeSafetensors } from "../pipeline/codec/safetensors.ts";
import { Effect } from "effect";
import { deno, withTempDir } from "./_helpers.ts";
import { taskArgs } from "./_tasks.ts";

const train = (...args: string[]) => deno([...taskArgs("train"), ...args]);
const parameters = async (path: string) => {
  const file = await Effect.runPromise(decodeSafetensors(await Deno.readFile(path)));
  return Object.fromEntries(
    Object.entries(file.tensors).filter(([n]) => !n.startsWith("optimizer/")).map((
      [n, t],
    ) => [n, Array.from(t.data as Float32Array)]),
  );
};

Deno.test("training resumed from a step-2 checkpoint ends with exactly the parameters of an uninterrupted run", () =>
  withTempDir(async (dir) => {
    const common = [
      "--data",
      "synthetic:4",
      "--tiles",
      "8",
      "--preset",
      "micro",
      "--batch",
      "1",
      "--steps",
      "4",
      "--cache",
      `${dir}/cache`,
    ];
    const straight = await train(...common, "--out", `${dir}/a`, "--checkpoint-every", "2");
    assert.equal(straight.code, 0, straight.stderr);
    assert.ok((await Deno.stat(`${dir}/a/checkpoint-step2.safetensors`)).isFile);
    const resumed = await train(
      ...common,
      "--out",
      `${dir}/b`,
      "--resume",
      `${dir}/a/checkpoint-step2.safetensors`,
      "--checkpoint-every",
      "0",
    );
    assert.equal(resumed.code, 0, resumed.stderr);
    const a = await parameters(`${dir}/a/checkpoint.safetensors`),
      b = await parameters(`${dir}/b/checkpoint.safetensors`);
    assert.deepEqual(Object.keys(b), Object.keys(a));
    for (const name of Object.keys(a)) assert.deepEqual(b[name], a[name], name);
    const metrics = JSON.parse(await Deno.readTextFile(`${dir}/b/metrics.json`));
    assert.deepEqual(metrics.history.map((h: { step: number }) => h.step), [1, 2, 3, 4]);
    const wrong = await train(
      ...common.map((x) => (x === "1" ? "2" : x)),
      "--out",
      `${dir}/c`,
      "--resume",
      `${dir}/a/checkpoint-step2.safetensors`,
    );
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /resume: the checkpoint was trained with batch = 1, not 2/);
  }));

Deno.test("an attribute-prompt row (--row full) resumes exactly too, with its attribute words from the cache", () =>
  withTempDir(async (dir) => {
    const common = ["--data", "synthetic:4", "--tiles", "8", "--preset", "micro", "--batch", "1", "--steps", "4"];
    common.push("--row", "full", "--cache", `${dir}/cache`);
    const straight = await train(...common, "--out", `${dir}/a`, "--checkpoint-every", "2");
    assert.equal(straight.code, 0, straight.stderr);
    const resumed = await train(
      ...common,
      ...["--out", `${dir}/b`, "--resume", `${dir}/a/checkpoint-step2.safetensors`, "--checkpoint-every", "0"],
    );
    assert.equal(resumed.code, 0, resumed.stderr);
    const a = await parameters(`${dir}/a/checkpoint.safetensors`),
      b = await parameters(`${dir}/b/checkpoint.safetensors`);
    assert.ok(Object.keys(a).some((n) => n.startsWith("vl.text.")), "the text tower is in the checkpoint");
    assert.deepEqual(Object.keys(b), Object.keys(a));
    for (const name of Object.keys(a)) assert.deepEqual(b[name], a[name], name);
    const metrics = JSON.parse(await Deno.readTextFile(`${dir}/b/metrics.json`));
    assert.deepEqual(metrics.history.map((h: { step: number }) => h.step), [1, 2, 3, 4]);
    assert.ok(metrics.history.every((h: { attr?: number }) => typeof h.attr === "number"), "L_attr logged");
  }));
