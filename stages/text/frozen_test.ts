import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import * as Source from "../../pipeline/source.ts";
import { MemoryStore } from "../../mod.ts";
import { writeClipFolder } from "../../tests/_clip_folder.ts";
import { withTempDir } from "../../tests/_helpers.ts";
import { SCALES } from "../attributes/words.ts";
import { encodeWithClipFolder, frozenPrompts, frozenTextOf } from "./frozen.ts";

await tf.setBackend("cpu");

const folder = (path: string) =>
  Effect.runPromise(Source.directory(path).resolve.pipe(Effect.provide(MemoryStore.layer))).then((r) => r.value);

Deno.test("frozenPrompts: class prompts, image sentences and every scale word's prompt, once each", () => {
  const p = frozenPrompts(["neoplastic", "dead"]);
  assert.deepEqual(p.slice(0, 4), [
    "a neoplastic nucleus",
    "a dead nucleus",
    "a photo of a neoplastic nuclei.",
    "a photo of a dead nuclei.",
  ]);
  assert.equal(new Set(p).size, p.length);
  for (const word of Object.values(SCALES).flat()) assert.ok(p.includes(`a ${word} nucleus`), word);
});

Deno.test("a CLIP folder's features: one row per prompt, batching never mixes rows", () =>
  withTempDir(async (dir) => {
    await writeClipFolder(`${dir}/clip`);
    const ref = await folder(`${dir}/clip`);
    const prompts = frozenPrompts(Array.from({ length: 15 }, (_, i) => `class${i}`));
    assert.ok(prompts.length > 64, "more than one batch");
    const all = frozenTextOf(await encodeWithClipFolder(ref, prompts));
    assert.equal(all.features.length, prompts.length * 24);
    assert.deepEqual(all.prompts, prompts);
    for (const i of [0, 5, 64, prompts.length - 1]) {
      const one = frozenTextOf(await encodeWithClipFolder(ref, [prompts[i] as string]));
      const row = all.features.subarray(i * 24, (i + 1) * 24);
      one.features.forEach((v, k) => assert.ok(Math.abs(v - (row[k] as number)) < 1e-5, `prompt ${i}, dim ${k}`));
    }
    const distinct = new Set(Array.from({ length: 6 }, (_, i) => all.features[i * 24]?.toFixed(6)));
    assert.ok(distinct.size > 1, "different prompts, different features");
  }));

Deno.test("a broken CLIP folder is one error naming the file", () =>
  withTempDir(async (dir) => {
    await writeClipFolder(`${dir}/clip`);
    await Deno.remove(`${dir}/clip/merges.txt`);
    await assert.rejects(
      () => folder(`${dir}/clip`).then((r) => encodeWithClipFolder(r, ["a x nucleus"])),
      /merges\.txt is missing/,
    );
    await writeClipFolder(`${dir}/c2`);
    await Deno.writeTextFile(`${dir}/c2/config.json`, JSON.stringify({ hidden_size: 30, num_attention_heads: 4 }));
    await assert.rejects(
      () => folder(`${dir}/c2`).then((r) => encodeWithClipFolder(r, ["a x nucleus"])),
      /config\.json/,
    );
  }));
