import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { decodeSafetensors, type HostTensor } from "../../pipeline/codec/safetensors.ts";
import { readNpy } from "../../pipeline/codec/npy.ts";
import {
  applyViT,
  initViT,
  loadSamEncoderWeights,
  samEncoderShapes,
  VIT_PRESETS,
  type ViTConfig,
  vitVariables,
} from "./vit.ts";

// Golden fixture: tests/fixtures/vit/make_vit_golden.py (independent float64 PyTorch reference).
const fixture = (name: string) => new URL(`../../tests/fixtures/vit/${name}`, import.meta.url);

const loadFixture = async () => {
  const config: ViTConfig = JSON.parse(await Deno.readTextFile(fixture("config.json")));
  const file = await Effect.runPromise(decodeSafetensors(await Deno.readFile(fixture("weights.safetensors"))));
  const params = await Effect.runPromise(loadSamEncoderWeights(file.tensors, config));
  return { config, params, tensors: file.tensors };
};

const npy4 = async (name: string): Promise<tf.Tensor4D> => {
  const a = await readNpy(fixture(name).pathname);
  return tf.tensor4d(a.data as Float32Array, a.shape as [number, number, number, number]);
};

/** Max |a − b| over all elements. */
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor): number =>
  tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] as number);

for (
  const [name, what] of [
    ["native", "x=[1,64,64,3] → [1,8,8,16]: window 3 pads the 8×8 grid to 9×9"],
    ["resized", "x=[2,56,40,3] → [2,7,5,16]: bicubic abs-pos 8×8→7×5, rel-pos tables 15→13/15→9, window pads 7→9, 5→6"],
  ] as const
) {
  Deno.test(`applyViT matches the PyTorch reference to 1e-4 max abs, ${what}`, async () => {
    await tf.setBackend("cpu");
    const { config, params } = await loadFixture();
    const images = await npy4(`input_${name}.npy`);
    const expected = await npy4(`output_${name}.npy`);
    const actual = applyViT(params, config, images);
    assert.deepEqual(actual.shape, expected.shape);
    const diff = maxAbsDiff(actual, expected);
    console.log(`vit parity (${name}): max abs diff ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-4, `max abs diff ${diff}`);
    tf.dispose([images, expected, actual, ...vitVariables(params)]);
  });
}

Deno.test("loadSamEncoderWeights converts layouts: conv OIHW → HWIO, linear [out,in] → [in,out]", async () => {
  await tf.setBackend("cpu");
  const { params, tensors } = await loadFixture();
  const conv = tensors["image_encoder.patch_embed.proj.weight"] as HostTensor; // [32, 3, 8, 8]
  const w = params.patch_embed.proj.weight.arraySync() as number[][][][]; // [8, 8, 3, 32]
  assert.deepEqual(params.patch_embed.proj.weight.shape, [8, 8, 3, 32]);
  // element (o=5, i=2, y=1, x=7) in OIHW sits at (y=1, x=7, i=2, o=5) in HWIO
  assert.equal(w[1]?.[7]?.[2]?.[5], conv.data[((5 * 3 + 2) * 8 + 1) * 8 + 7]);
  const qkv = tensors["image_encoder.blocks.0.attn.qkv.weight"] as HostTensor; // [96, 32]
  const q = params.blocks[0]?.attn.qkv.weight.arraySync() as number[][]; // [32, 96]
  assert.equal(q[3]?.[70], qkv.data[70 * 32 + 3]);
  tf.dispose(vitVariables(params));
});

Deno.test("loadSamEncoderWeights fails naming the tensor when the config does not fit", async () => {
  await tf.setBackend("cpu");
  const { config, tensors } = await loadFixture();
  const before = tf.memory().numTensors;
  const deeper = await Effect.runPromise(Effect.flip(loadSamEncoderWeights(tensors, { ...config, depth: 3 })));
  assert.equal(deeper.tensor, "image_encoder.blocks.2.norm1.weight");
  assert.equal(deeper.reason, "missing");
  const shallower = await Effect.runPromise(Effect.flip(loadSamEncoderWeights(tensors, { ...config, depth: 1 })));
  assert.match(shallower.tensor, /^image_encoder\.blocks\.1\./);
  const wider = await Effect.runPromise(Effect.flip(loadSamEncoderWeights(tensors, { ...config, window_size: 4 })));
  assert.equal(wider.tensor, "image_encoder.blocks.0.attn.rel_pos_h");
  assert.match(wider.message, /shape \[5,16\], expected \[7,16\]/);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("presets: SAM sizes for vit_b / vit_l / vit_h, checkpoint shapes of vit_h", () => {
  const { vit_b, vit_l, vit_h } = VIT_PRESETS;
  assert.deepEqual([vit_b.embed_dim, vit_b.depth, vit_b.num_heads], [768, 12, 12]);
  assert.deepEqual([vit_l.embed_dim, vit_l.depth, vit_l.num_heads], [1024, 24, 16]);
  assert.deepEqual([vit_h.embed_dim, vit_h.depth, vit_h.num_heads], [1280, 32, 16]);
  assert.deepEqual(vit_b.global_attn_indexes, [2, 5, 8, 11]);
  assert.deepEqual(vit_l.global_attn_indexes, [5, 11, 17, 23]);
  assert.deepEqual(vit_h.global_attn_indexes, [7, 15, 23, 31]);
  for (const c of [vit_b, vit_l, vit_h]) {
    assert.deepEqual([c.img_size, c.patch_size, c.window_size, c.out_chans, c.use_rel_pos], [1024, 16, 14, 256, true]);
  }
  // the tensor shapes of sam_vit_h_4b8939.pth's image encoder (no tensors are created)
  const h = samEncoderShapes(vit_h);
  assert.deepEqual(h["pos_embed"], [1, 64, 64, 1280]);
  assert.deepEqual(h["blocks.0.attn.rel_pos_h"], [27, 80]);
  assert.deepEqual(h["blocks.7.attn.rel_pos_w"], [127, 80]);
  assert.deepEqual(h["blocks.31.mlp.lin1.weight"], [5120, 1280]);
  assert.deepEqual(h["neck.2.weight"], [256, 256, 3, 3]);
  assert.equal(Object.keys(h).length, 3 + 32 * 14 + 6); // patch weight/bias + pos_embed, 14 a block, neck
  const count = (shapes: Record<string, number[]>) =>
    Object.values(shapes).reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
  // ViT-B encoder parameter count, derived from the shapes above: a regression guard for the table
  assert.equal(count(samEncoderShapes(vit_b)), 89_670_912);
});

Deno.test("tiny: init shapes are the NHWC layouts of its checkpoint shapes; x=[1,128,96,3] → [1,8,6,128]", async () => {
  await tf.setBackend("cpu");
  const config = VIT_PRESETS.tiny;
  const params = initViT(config, 0);
  const torch = samEncoderShapes(config);
  assert.deepEqual(params.patch_embed.proj.weight.shape, [16, 16, 3, 192]);
  assert.deepEqual(params.pos_embed?.shape, [1, 16, 16, 192]);
  assert.deepEqual(params.blocks[0]?.attn.rel_pos_h?.shape, [15, 64]); // window 8
  assert.deepEqual(params.blocks[1]?.attn.rel_pos_h?.shape, [31, 64]); // global, 16×16 grid
  assert.deepEqual(params.blocks[3]?.mlp.lin1.weight.shape, [192, 768]);
  assert.deepEqual(params.neck.conv2.shape, [3, 3, 128, 128]);
  const n = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  const total = vitVariables(params).reduce((acc, v) => acc + n(v.shape), 0);
  assert.equal(total, Object.values(torch).reduce((acc, s) => acc + n(s), 0));
  assert.equal(vitVariables(params).length, Object.keys(torch).length);
  const y = applyViT(params, config, tf.randomNormal<tf.Rank.R4>([1, 128, 96, 3], 0, 1, "float32", 1));
  assert.deepEqual(y.shape, [1, 8, 6, 128]);
  assert.ok(Array.from(y.dataSync()).every(Number.isFinite));
  tf.dispose([y, ...vitVariables(params)]);
});

Deno.test("initViT is deterministic in its seed", async () => {
  await tf.setBackend("cpu");
  const config: ViTConfig = { ...VIT_PRESETS.tiny, depth: 1, embed_dim: 48 };
  const [a, b, c] = [initViT(config, 3), initViT(config, 3), initViT(config, 4)];
  assert.deepEqual(a.blocks[0]?.attn.qkv.weight.dataSync(), b.blocks[0]?.attn.qkv.weight.dataSync());
  assert.notDeepEqual(a.blocks[0]?.attn.qkv.weight.dataSync(), c.blocks[0]?.attn.qkv.weight.dataSync());
  tf.dispose([...vitVariables(a), ...vitVariables(b), ...vitVariables(c)]);
});

Deno.test("applyViT leaks no tensors: numTensors flat across two forward passes in tf.tidy", async () => {
  await tf.setBackend("cpu");
  const { config, params } = await loadFixture();
  const images = await npy4("input_resized.npy");
  const counts: number[] = [tf.memory().numTensors];
  for (let pass = 0; pass < 2; pass++) {
    tf.tidy(() => {
      applyViT(params, config, images);
    });
    counts.push(tf.memory().numTensors);
  }
  assert.deepEqual(counts, [counts[0], counts[0], counts[0]]);
  // and without an outer tidy: applyViT itself keeps only its result
  const y = applyViT(params, config, images);
  assert.equal(tf.memory().numTensors, (counts[0] as number) + 1);
  y.dispose();
  tf.dispose([images, ...vitVariables(params)]);
});

Deno.test("applyViT rejects images with the wrong channel count", async () => {
  await tf.setBackend("cpu");
  const { config, params } = await loadFixture();
  const gray = tf.zeros<tf.Rank.R4>([1, 64, 64, 1]);
  assert.throws(() => applyViT(params, config, gray), /vit: images must be \[B, H, W, 3\], got \[1,64,64,1\]/);
  tf.dispose([gray, ...vitVariables(params)]);
});
