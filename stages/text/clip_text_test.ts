import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { decodeSafetensors, type HostTensor } from "../../pipeline/codec/safetensors.ts";
import { readNpy } from "../../pipeline/codec/npy.ts";
import {
  applyClipText,
  CLIP_TEXT_PRESETS,
  type ClipTextConfig,
  clipTextShapes,
  clipTextVariables,
  eosPositions,
  initClipText,
  loadClipTextWeights,
} from "./clip_text.ts";
import { wordTokenizer } from "./tokenizer.ts";

// Golden fixture: tests/fixtures/clip_text/make_clip_text_golden.py (independent float64 PyTorch
// reference). ids [4, 16], eos 9 at positions 15, 4, 7 (and again at 12), 0.
const fixture = (name: string) => new URL(`../../tests/fixtures/clip_text/${name}`, import.meta.url);

const loadFixture = async () => {
  const config: ClipTextConfig = JSON.parse(await Deno.readTextFile(fixture("config.json")));
  const file = await Effect.runPromise(decodeSafetensors(await Deno.readFile(fixture("weights.safetensors"))));
  const params = await Effect.runPromise(loadClipTextWeights(file.tensors, config));
  const ids = await readNpy(fixture("ids.npy").pathname);
  return { config, params, tensors: file.tensors, ids: Int32Array.from(ids.data as Int32Array) };
};

const npy2 = async (name: string): Promise<tf.Tensor2D> => {
  const a = await readNpy(fixture(name).pathname);
  return tf.tensor2d(a.data as Float32Array, a.shape as [number, number]);
};

/** Max |a − b| over all elements. */
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor): number =>
  tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] as number);

const encodeRows = (params: Parameters<typeof applyClipText>[0], config: ClipTextConfig, ids: Int32Array, T = 16) =>
  tf.tidy(() => applyClipText(params, config, tf.tensor2d(ids, [ids.length / T, T], "int32")));

for (
  const [output, what, change] of [
    ["output.npy", "quick_gelu, pooled at the first eos", {}],
    ["output_gelu.npy", "hidden_act gelu (exact)", { hidden_act: "gelu" }],
    ["output_legacy_eos.npy", "eos_token_id 2: HF's legacy argmax pooling", { eos_token_id: 2 }],
  ] as const
) {
  Deno.test(`applyClipText matches the PyTorch reference to 1e-4, ids=[4,16] → [4,24], ${what}`, async () => {
    await tf.setBackend("cpu");
    const { config, params, ids } = await loadFixture();
    const expected = await npy2(output);
    const actual = encodeRows(params, { ...config, ...change }, ids);
    assert.deepEqual(actual.shape, [4, 24]);
    const diff = maxAbsDiff(actual, expected);
    const scale = tf.tidy(() => tf.max(tf.abs(expected)).dataSync()[0] as number);
    console.log(`clip_text parity (${output}): max abs diff ${diff.toExponential(2)}, max |y| ${scale.toFixed(2)}`);
    assert.ok(diff <= 1e-4 || diff / scale <= 1e-4, `max abs diff ${diff} (max |y| ${scale})`);
    tf.dispose([expected, actual, ...clipTextVariables(params)]);
  });
}

Deno.test("causal mask: a token after the pooled eos changes nothing, a token before it does", async () => {
  await tf.setBackend("cpu");
  const { config, params, ids } = await loadFixture();
  const base = encodeRows(params, config, ids);
  const after = ids.slice(), before = ids.slice();
  after[1 * 16 + 9] = 33; // row 1: eos at 4, padding from 5 on
  after[2 * 16 + 10] = 11; // row 2: between its first eos (7) and its second (12)
  after[3 * 16 + 15] = 40; // row 3: eos at 0
  before[1 * 16 + 2] = 33; // row 1, before its eos
  const a = encodeRows(params, config, after), b = encodeRows(params, config, before);
  assert.deepEqual(a.arraySync(), base.arraySync());
  const rowDiff = (x: tf.Tensor2D, r: number) =>
    tf.tidy(() =>
      tf.max(tf.abs(tf.sub(x.slice([r, 0], [1, 24]), base.slice([r, 0], [1, 24])))).dataSync()[0] as number
    );
  assert.ok(rowDiff(b, 1) > 1e-3, `changing a token before the eos moved row 1 by only ${rowDiff(b, 1)}`);
  assert.equal(rowDiff(b, 0) + rowDiff(b, 2) + rowDiff(b, 3), 0); // rows are independent
  tf.dispose([base, a, b, ...clipTextVariables(params)]);
});

Deno.test("pooling position: each row's output is that of its prefix up to the first eos, T = eos + 1", async () => {
  await tf.setBackend("cpu");
  const { config, params, ids } = await loadFixture();
  const full = encodeRows(params, config, ids);
  const rows = full.arraySync();
  for (const [row, eos] of [[0, 15], [1, 4], [2, 7], [3, 0]] as const) {
    const prefix = ids.slice(row * 16, row * 16 + eos + 1); // [eos + 1]
    const y = encodeRows(params, config, prefix, eos + 1); // [1, 24]
    const worst = (y.arraySync()[0] as number[]).reduce(
      (m, v, i) => Math.max(m, Math.abs(v - (rows[row]?.[i] ?? NaN))),
      0,
    );
    assert.ok(worst <= 1e-5, `row ${row}: prefix of ${eos + 1} tokens differs by ${worst}`);
    y.dispose();
  }
  tf.dispose([full, ...clipTextVariables(params)]);
});

Deno.test("eosPositions: first eos (−1 when none); eos_token_id 2: the first largest id", async () => {
  const { ids, params } = await loadFixture();
  assert.deepEqual([...eosPositions(ids, 16, 9)], [15, 4, 7, 0]);
  assert.deepEqual([...eosPositions(ids, 16, 2)], [3, 2, 10, 6]); // the positions the reference pooled at
  assert.deepEqual([...eosPositions([5, 7, 1, 7, 7, 0], 3, 7)], [1, 0]);
  assert.deepEqual([...eosPositions([5, 6, 1, 8, 8, 3], 3, 7)], [-1, -1]);
  assert.deepEqual([...eosPositions([5, 9, 9, 8, 8, 3], 3, 2)], [1, 0]); // ties: the first
  tf.dispose(clipTextVariables(params));
});

Deno.test("legacy pooling on the device: ties at the largest id (HF pads with eot) pool at the first", async () => {
  await tf.setBackend("cpu");
  const { config, params, ids } = await loadFixture();
  const legacy = { ...config, eos_token_id: 2 };
  const row = ids.slice(16, 21); // [1, 47, 59, 51, 9]
  const padded = Int32Array.from([...row, 59, 59, 59]); // 59 again after its first occurrence at 2
  const y1 = encodeRows(params, legacy, Int32Array.from(row.slice(0, 3)), 3); // pooled at 2
  const y2 = encodeRows(params, legacy, padded, 8);
  assert.ok(maxAbsDiff(y1, y2) <= 1e-5, `max abs diff ${maxAbsDiff(y1, y2)}`);
  tf.dispose([y1, y2, ...clipTextVariables(params)]);
});

Deno.test("loadClipTextWeights transposes Linear weights [out,in] → [in,out], keeps embeddings [rows, D]", async () => {
  await tf.setBackend("cpu");
  const { params, tensors } = await loadFixture();
  const q = tensors["text_model.encoder.layers.1.self_attn.q_proj.weight"] as HostTensor; // [32, 32]
  const w = params.layers[1]?.self_attn.q_proj.weight.arraySync() as number[][]; // [32, 32]
  assert.equal(w[3]?.[20], q.data[20 * 32 + 3]);
  const proj = tensors["text_projection.weight"] as HostTensor; // [24, 32]
  assert.deepEqual(params.text_projection.weight.shape, [32, 24]);
  assert.equal((params.text_projection.weight.arraySync() as number[][])[31]?.[5], proj.data[5 * 32 + 31]);
  const emb = tensors["text_model.embeddings.token_embedding.weight"] as HostTensor; // [64, 32]
  assert.deepEqual(params.token_embedding.shape, [64, 32]);
  assert.equal((params.token_embedding.arraySync() as number[][])[9]?.[4], emb.data[9 * 32 + 4]);
  assert.equal(params.text_projection.bias, undefined);
  tf.dispose(clipTextVariables(params));
});

Deno.test("loadClipTextWeights fails naming the tensor and the expected shape, creating no tensor", async () => {
  await tf.setBackend("cpu");
  const { config, tensors, params } = await loadFixture();
  tf.dispose(clipTextVariables(params));
  const before = tf.memory().numTensors;
  const flip = (t: Record<string, HostTensor>, c: ClipTextConfig) =>
    Effect.runPromise(Effect.flip(loadClipTextWeights(t, c)));

  const { ["text_model.encoder.layers.1.mlp.fc1.weight"]: _dropped, ...withoutFc1 } = tensors;
  const missing = await flip(withoutFc1, config);
  assert.equal(missing._tag, "ClipTextWeightsError");
  assert.equal(
    missing.message,
    "loadClipTextWeights: text_model.encoder.layers.1.mlp.fc1.weight: missing (expected shape [64,32] for this config)",
  );
  const wider = await flip(tensors, { ...config, intermediate_size: 80 });
  assert.equal(
    wider.message,
    "loadClipTextWeights: text_model.encoder.layers.0.mlp.fc1.weight: shape [64,32], expected [80,32] for this config",
  );
  const deeper = await flip(tensors, { ...config, num_hidden_layers: 3 });
  assert.match(deeper.message, /text_model\.encoder\.layers\.2\.layer_norm1\.weight: missing \(expected shape \[32\]/);
  const shallower = await flip(tensors, { ...config, num_hidden_layers: 1 });
  assert.match(shallower.message, /text_model\.encoder\.layers\.1\..*: not part of an encoder with this config$/);
  const ints = {
    ...tensors,
    "text_projection.weight": { dtype: "I32", shape: [24, 32], data: new Int32Array(768) },
  } as const;
  assert.match((await flip(ints, config)).message, /text_projection\.weight: dtype I32, expected F32 or F64$/);
  const heads = await flip(tensors, { ...config, num_attention_heads: 5 });
  assert.equal(heads._tag, "ClipTextConfigError");
  assert.equal(heads.message, "clip_text config: hidden_size: 32 is not divisible by num_attention_heads 5");
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("applyClipText leaks no tensors: numTensors flat across forward passes, in and out of tf.tidy", async () => {
  await tf.setBackend("cpu");
  const { config, params, ids } = await loadFixture();
  const input = tf.tensor2d(ids, [4, 16], "int32");
  const counts: number[] = [tf.memory().numTensors];
  for (let pass = 0; pass < 2; pass++) {
    tf.tidy(() => {
      applyClipText(params, config, input);
    });
    counts.push(tf.memory().numTensors);
  }
  assert.deepEqual(counts, [counts[0], counts[0], counts[0]]);
  const y = applyClipText(params, { ...config, eos_token_id: 2 }, input);
  assert.equal(tf.memory().numTensors, (counts[0] as number) + 1); // only the result stays
  y.dispose();
  tf.dispose([input, ...clipTextVariables(params)]);
});

Deno.test("applyClipText rejects float ids and more tokens than position embeddings", async () => {
  await tf.setBackend("cpu");
  const { config, params } = await loadFixture();
  const floats = tf.zeros<tf.Rank.R2>([1, 4]);
  assert.throws(
    () => applyClipText(params, config, floats),
    /clip_text: ids must be int32 \[B, T\].*got float32 \[1,4\]/,
  );
  const long = tf.zeros<tf.Rank.R2>([1, 17], "int32");
  assert.throws(() => applyClipText(params, config, long), /17 tokens exceed max_position_embeddings 16/);
  tf.dispose([floats, long, ...clipTextVariables(params)]);
});

Deno.test("presets: clip is the ViT-B/32 text tower (CLIP paper: 63M parameters), tiny ≈ 0.32M", () => {
  const { clip, tiny } = CLIP_TEXT_PRESETS;
  assert.deepEqual(
    [clip.vocab_size, clip.max_position_embeddings, clip.hidden_size, clip.num_attention_heads],
    [49408, 77, 512, 8],
  );
  assert.deepEqual([clip.num_hidden_layers, clip.intermediate_size, clip.projection_dim], [12, 2048, 512]);
  assert.deepEqual([clip.hidden_act, clip.layer_norm_eps, clip.eos_token_id], ["quick_gelu", 1e-5, 49407]);
  const count = (c: ClipTextConfig) =>
    Object.values(clipTextShapes(c)).reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
  // derived from the HF shapes: a regression guard for the table (the paper rounds it to 63M)
  assert.equal(count(clip), 63_428_096);
  assert.equal(Object.keys(clipTextShapes(clip)).length, 2 + 12 * 16 + 3);
  assert.equal(count(tiny), 320_512);
  assert.equal(tiny.eos_token_id, wordTokenizer([]).eot);
});

Deno.test("tiny: init shapes are the transposed checkpoint shapes; word-tokenized prompts → [3, 128]", async () => {
  await tf.setBackend("cpu");
  const prompts = ["a large nucleus", "a small nucleus", "a photo of a neoplastic nuclei."];
  const tok = wordTokenizer(prompts);
  const config = { ...CLIP_TEXT_PRESETS.tiny, vocab_size: tok.vocabSize };
  const params = initClipText(config, 0);
  assert.deepEqual(params.token_embedding.shape, [tok.vocabSize, 128]);
  assert.deepEqual(params.position_embedding.shape, [48, 128]);
  assert.deepEqual(params.layers[1]?.mlp.fc1.weight.shape, [128, 256]);
  assert.deepEqual(params.text_projection.weight.shape, [128, 128]);
  const n = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  const torch = clipTextShapes(config);
  assert.equal(clipTextVariables(params).length, Object.keys(torch).length);
  assert.equal(
    clipTextVariables(params).reduce((acc, v) => acc + n(v.shape), 0),
    Object.values(torch).reduce((a, s) => a + n(s), 0),
  );
  const ids = Int32Array.from(prompts.flatMap((p) => [...tok.encode(p, 12).ids]));
  const y = encodeRows(params, config, ids, 12);
  assert.deepEqual(y.shape, [3, 128]);
  assert.ok(Array.from(y.dataSync()).every(Number.isFinite));
  tf.dispose([y, ...clipTextVariables(params)]);
});

Deno.test("initClipText is deterministic in its seed", async () => {
  await tf.setBackend("cpu");
  const config: ClipTextConfig = { ...CLIP_TEXT_PRESETS.tiny, num_hidden_layers: 1, hidden_size: 32 };
  const [a, b, c] = [initClipText(config, 3), initClipText(config, 3), initClipText(config, 4)];
  assert.deepEqual(a.layers[0]?.self_attn.k_proj.weight.dataSync(), b.layers[0]?.self_attn.k_proj.weight.dataSync());
  assert.notDeepEqual(a.layers[0]?.self_attn.k_proj.weight.dataSync(), c.layers[0]?.self_attn.k_proj.weight.dataSync());
  tf.dispose([...clipTextVariables(a), ...clipTextVariables(b), ...clipTextVariables(c)]);
});

Deno.test("gradients reach every parameter (joint training): finite, non-zero, and no tensor left behind", async () => {
  await tf.setBackend("cpu");
  const tok = wordTokenizer(["a large nucleus", "a small nucleus in breast"]);
  const config = { ...CLIP_TEXT_PRESETS.tiny, vocab_size: tok.vocabSize, num_hidden_layers: 1 };
  const params = initClipText(config, 1);
  const ids = tf.tensor2d(
    Int32Array.from([...tok.encode("a large nucleus", 8).ids, ...tok.encode("a small nucleus in breast", 8).ids]),
    [2, 8],
    "int32",
  );
  const before = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(applyClipText(params, config, ids))));
  const variables = clipTextVariables(params);
  assert.equal(Object.keys(grads).length, variables.length);
  for (const v of variables) {
    const g = grads[v.name] as tf.Tensor;
    const [maxAbs, finite] = tf.tidy(() => [tf.max(tf.abs(g)).dataSync()[0], tf.all(tf.isFinite(g)).dataSync()[0]]);
    assert.ok(finite === 1 && (maxAbs as number) > 0, `${v.name}: max |grad| ${maxAbs}`);
  }
  tf.dispose([value, ...Object.values(grads)]);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([ids, ...variables]);
});
