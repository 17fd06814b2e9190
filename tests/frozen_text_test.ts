import assert from "node:assert/strict";
import { Effect } from "effect";
import { decodeSafetensors } from "../pipeline/codec/safetensors.ts";
import * as tf from "@tensorflow/tfjs";
import { MemoryStore, Source } from "../mod.ts";
import { encodeWithClipFolder, frozenTextOf } from "../stages/text/frozen.ts";
import { writeClipFolder } from "./_clip_folder.ts";
import { deno, withTempDir } from "./_helpers.ts";
import { taskArgs } from "./_tasks.ts";

await tf.setBackend("cpu");

const train = (...args: string[]) => deno([...taskArgs("train"), ...args]);
const tensors = async (path: string) => (await Effect.runPromise(decodeSafetensors(await Deno.readFile(path)))).tensors;

Deno.test("train --text-encoder: a frozen CLIP folder's features are a cached stage; training never changes them", () =>
  withTempDir(async (dir) => {
    await writeClipFolder(`${dir}/clip`);
    const common = ["--data", "synthetic:2", "--tiles", "8", "--preset", "micro", "--batch", "1", "--row", "vl_fixed"];
    common.push("--text-encoder", `${dir}/clip`, "--cache", `${dir}/cache`, "--checkpoint-every", "0");
    const r = await train(...common, "--steps", "3", "--out", `${dir}/a`);
    assert.equal(r.code, 0, r.stderr);
    const t = await tensors(`${dir}/a/checkpoint.safetensors`);
    const names = Object.keys(t);
    assert.ok(!names.some((n) => n.startsWith("vl.text.")), "no trainable tower");
    assert.ok(names.includes("vl.frozen") && names.includes("vl.textual.weight"));
    // the stored features are the stage's, untouched by 3 steps of AdamW (a non-trainable variable)
    const meta = JSON.parse(
      (await Effect.runPromise(decodeSafetensors(await Deno.readFile(`${dir}/a/checkpoint.safetensors`)))).metadata
        ?.model ?? "{}",
    );
    const prompts: string[] = meta.vl.frozenText.prompts;
    assert.deepEqual(t["vl.frozen"]?.shape, [prompts.length, 24]);
    const clip =
      (await Effect.runPromise(Source.directory(`${dir}/clip`).resolve.pipe(Effect.provide(MemoryStore.layer))))
        .value;
    const expected = frozenTextOf(await encodeWithClipFolder(clip, prompts)).features; // cpu here, wasm in training
    const stored = t["vl.frozen"]?.data as Float32Array;
    expected.forEach((v, i) =>
      assert.ok(Math.abs(v - (stored[i] as number)) < 1e-4, `feature ${i}: ${stored[i]} vs ${v}`)
    );
    assert.ok(!names.some((n) => n.startsWith("optimizer/") && n.includes("frozen")));
    const optimizerWeights = names.filter((n) => n.startsWith("optimizer/")).length;
    const trainable = names.filter((n) => !n.startsWith("optimizer/") && n !== "vl.frozen").length;
    assert.equal(
      optimizerWeights,
      2 * trainable + 1,
      "Adam's m and v for every trainable tensor (+ iterations), none for the features",
    );
    // a longer run recomputes only the training: the text stage is a cache hit
    const plan = await train(...common, "--steps", "4", "--out", `${dir}/b`, "--explain");
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /^\s*text\s+hit\s+text\.frozen/m);
    assert.match(plan.stdout, /^\s*checkpoint\s+miss\s+model\.train\.frozen_text/m);
    // the checkpoint predicts (the features travel inside it)
    const img = `${dir}/x.png`;
    const sharp = (await import("sharp")).default;
    await sharp({ create: { width: 80, height: 70, channels: 3, background: { r: 200, g: 150, b: 200 } } }).png()
      .toFile(img);
    const p = await deno([
      ...taskArgs("predict"),
      "--model",
      `${dir}/a/checkpoint.safetensors`,
      "--input",
      img,
      "--out",
      `${dir}/pred`,
      "--cache",
      `${dir}/cache`,
    ]);
    assert.equal(p.code, 0, p.stderr);
  }));

Deno.test("train --text-encoder: attribute rows too; the baseline and a missing folder are one clear error", () =>
  withTempDir(async (dir) => {
    await writeClipFolder(`${dir}/clip`);
    const common = ["--data", "synthetic:2", "--tiles", "8", "--preset", "micro", "--batch", "1", "--steps", "2"];
    common.push("--cache", `${dir}/cache`, "--checkpoint-every", "0");
    const r = await train(...common, "--row", "full", "--text-encoder", `${dir}/clip`, "--out", `${dir}/a`);
    assert.equal(r.code, 0, r.stderr);
    const metrics = JSON.parse(await Deno.readTextFile(`${dir}/a/metrics.json`));
    const history: Array<{ attr: number; fix: number }> = metrics.history;
    assert.ok(history.every((h) => Number.isFinite(h.attr) && Number.isFinite(h.fix)));
    assert.ok(history.some((h) => h.attr > 0 && h.fix > 0), "L_attr and L_fix on a tile with nuclei");
    const baseline = await train(...common, "--text-encoder", `${dir}/clip`, "--out", `${dir}/b`);
    assert.equal(baseline.code, 1);
    assert.match(baseline.stderr, /^error: --text-encoder: the baseline has no text/m);
    const missing = await train(
      ...common,
      "--row",
      "vl_fixed",
      "--text-encoder",
      `${dir}/nothing`,
      "--out",
      `${dir}/c`,
    );
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: --text-encoder: .*nothing is not a folder/m);
  }));

Deno.test("train --organ-prompts: L_fix against the image's organ's prompts, with the tiny tower or a frozen encoder", () =>
  withTempDir(async (dir) => {
    await writeClipFolder(`${dir}/clip`);
    const common = ["--data", "synthetic:2", "--tiles", "8", "--preset", "micro", "--batch", "1", "--steps", "3"];
    common.push("--row", "vl_fixed", "--organ-prompts", "--cache", `${dir}/cache`, "--checkpoint-every", "0");
    for (const [out, extra] of [["tower", []], ["frozen", ["--text-encoder", `${dir}/clip`]]] as const) {
      const r = await train(...common, ...extra, "--out", `${dir}/${out}`);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /row vl_fixed, organ prompts/);
      const file = await Effect.runPromise(
        decodeSafetensors(await Deno.readFile(`${dir}/${out}/checkpoint.safetensors`)),
      );
      const organs: string[] = JSON.parse(file.metadata?.model ?? "{}").vl.organs;
      assert.ok(organs.length >= 2 && organs.every((o) => o !== ""), `synthetic organs: ${organs}`);
      if (out === "frozen") {
        const prompts: string[] = JSON.parse(file.metadata?.model ?? "{}").vl.frozenText.prompts;
        for (const o of organs) assert.ok(prompts.includes(`a neoplastic nucleus in ${o}`), o);
      }
      const history: Array<{ fix: number }> = JSON.parse(await Deno.readTextFile(`${dir}/${out}/metrics.json`)).history;
      assert.ok(history.every((h) => Number.isFinite(h.fix)) && history.some((h) => h.fix > 0));
    }
    const baseline = await train(...common.map((a) => (a === "vl_fixed" ? "baseline" : a)), "--out", `${dir}/b`);
    assert.equal(baseline.code, 1);
    assert.match(baseline.stderr, /^error: --organ-prompts: the baseline has no text/m);
  }));
