/**
 * The vision–language parts wired into the model and the training step: prompt ids, the outputs
 * SIM adds, the losses of a step, and that one step moves the text tower, the projections and the
 * category tokens (the gradients reach them) without leaking tensors.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { initBackend } from "../backend/tf.ts";
import { syntheticSample } from "../data/synthetic.ts";
import { SYNTHETIC_CLASSES } from "../data/synthetic.ts";
import { WORD_SPECIALS } from "../text/tokenizer.ts";
import { namedTensors } from "./checkpoint.ts";
import { applyModel, initModel, MODEL_PRESETS, type ModelConfig } from "./model.ts";
import { batchOf, defaultTrainOptions, disposeBatch, trainStep } from "./train_step.ts";
import {
  encodePrompts,
  matchedQueries,
  organPrompts,
  promptIds,
  textEmbeddings,
  visionLanguageLoss,
  visionLanguagePreset,
} from "./vision_language.ts";
import { planLoss } from "./losses.ts";
import type { Match } from "./matcher.ts";
import { type AblationRow, modelOf } from "./train.ts";
import { attributeLabels, attributePrompts, type FittedAttribute } from "./attribute_labels.ts";
import { SCALES } from "../attributes/words.ts";

await Effect.runPromise(initBackend("wasm"));

const withVl = (sim: boolean, attributes = false): ModelConfig => ({
  ...MODEL_PRESETS.micro,
  vl: visionLanguagePreset({ attributes, sim }),
});

Deno.test("promptIds: one row per class prompt, <sot> first, <eot> after the prompt's words, <pad> after", () => {
  const ids = promptIds(visionLanguagePreset({ attributes: false, sim: false }), ["neoplastic", "spindle-shaped"]);
  // "a spindle - shaped nucleus": 5 words + <sot> + <eot>
  assert.deepEqual(ids.shape, [2, 7]);
  const rows = ids.arraySync();
  assert.deepEqual(rows.map((r) => r[0]), [WORD_SPECIALS.sot, WORD_SPECIALS.sot]);
  assert.deepEqual(rows.map((r) => r.indexOf(WORD_SPECIALS.eot)), [4, 6]);
  assert.equal(rows[0]?.[5], WORD_SPECIALS.pad);
  assert.notEqual(rows[0]?.[2], rows[1]?.[2], "the class words differ");
  ids.dispose();
});

Deno.test("organ prompts: organ-major `a {class} nucleus in {organ}`, every word in the vocabulary", () => {
  const classes = ["neoplastic", "dead"], organs = ["breast", "colon"];
  assert.deepEqual(organPrompts(classes, organs), [
    "a neoplastic nucleus in breast",
    "a dead nucleus in breast",
    "a neoplastic nucleus in colon",
    "a dead nucleus in colon",
  ]);
  const plain = visionLanguagePreset({ attributes: false, sim: false });
  const withOrgans = { ...plain, organs };
  const ids = encodePrompts(withOrgans, classes, organPrompts(classes, organs)).arraySync();
  for (const row of ids) assert.ok(!row.includes(WORD_SPECIALS.unk), `no unknown word in ${row}`);
  assert.notEqual(ids[0]?.[5], ids[2]?.[5], "the organ words differ");
});

Deno.test("matchedQueries: flat rows b·Q + q and the matched nuclei's classes", () => {
  const images = [
    { queryIndex: Int32Array.of(1, 4), targetIndex: Int32Array.of(1, 0) },
    { queryIndex: Int32Array.of(0), targetIndex: Int32Array.of(2) },
  ];
  const targets = [{ classes: Int32Array.of(3, 0) }, { classes: Int32Array.of(1, 1, 4) }];
  const matched = matchedQueries(images, targets, 8);
  assert.deepEqual(Array.from(matched.rows), [1, 4, 8]);
  assert.deepEqual(Array.from(matched.labels), [0, 3, 4]);
  assert.deepEqual([Array.from(matched.images), Array.from(matched.targets)], [[0, 0, 1], [1, 0, 2]]);
});

Deno.test("micro model with SIM: the last queries [B, Q, D] and dynamic tokens [B, (C+1)·k, D] come out", () => {
  const config = withVl(true);
  const params = initModel(config, 5, 1);
  const images = tf.zeros([2, 64, 64, 3]) as tf.Tensor4D;
  const shapes = tf.tidy(() => {
    const o = applyModel(params, config, 5, images);
    return { queries: o.queries?.shape, tokens: o.tokens?.shape, last: o.predictions.at(-1)?.logits.shape };
  });
  assert.deepEqual(shapes, { queries: [2, 8, 32], tokens: [2, 6 * 5, 32], last: [2, 8, 6] });
  const noSim = withVl(false);
  const plain = tf.tidy(() => {
    const o = applyModel(initModel(noSim, 5, 1), noSim, 5, images);
    return { queries: o.queries?.shape, tokens: o.tokens };
  });
  assert.deepEqual(plain, { queries: [2, 8, 32], tokens: undefined });
  images.dispose();
});

Deno.test("a training step with fixed prompts and SIM: L_fix and L_cent are positive, the text tower, projections and tokens move, no tensor leaks", () => {
  const config = withVl(true);
  const params = initModel(config, 5, 2);
  const batch = batchOf([syntheticSample(3, 0, { size: 64 }), syntheticSample(3, 1, { size: 64 })]);
  const optimizer = tf.train.adam(1e-3);
  const options = {
    ...defaultTrainOptions,
    learningRate: 1e-3,
    loss: { points: 256 },
    classNames: SYNTHETIC_CLASSES,
  };
  const watched = namedTensors(params.vl).filter(([name]) =>
    ["text.token_embedding", "visual.weight", "textual.weight", "sim.tokens"].includes(name)
  );
  assert.equal(watched.length, 4);
  const before = watched.map(([, t]) => t.dataSync().slice());
  const first = trainStep(params, config, 5, optimizer, batch, options);
  assert.ok(first.fix > 0 && Number.isFinite(first.fix), `L_fix ${first.fix}`);
  assert.ok(first.cent > 0 && Number.isFinite(first.cent), `L_cent ${first.cent}`);
  watched.forEach(([name, t], i) => {
    const now = t.dataSync();
    assert.ok(now.some((v, j) => v !== before[i]?.[j]), `${name} did not change`);
  });
  const count = tf.memory().numTensors;
  for (let i = 0; i < 2; i++) trainStep(params, config, 5, optimizer, batch, options);
  assert.equal(tf.memory().numTensors, count, "no tensor leaks across steps");
  const baseline = trainStep(initModel(MODEL_PRESETS.micro, 5, 2), MODEL_PRESETS.micro, 5, optimizer, batch, options);
  assert.deepEqual([baseline.fix, baseline.cent], [0, 0], "the baseline has no vision–language losses");
  disposeBatch(batch);
});

// size from the equivalent diameter: ≤ 6 px small, ≤ 10 px medium, larger large
const size: FittedAttribute = {
  feature: "equivalent_diameter",
  thresholds: [6, 10],
  words: ["small", "medium", "large"],
  scale: SCALES.size,
};

Deno.test("attributeLabels: each nucleus's word as its index in the family scale; prompts in scale order", () => {
  // two nuclei: a 4×4 square (diameter √(16·4/π) ≈ 4.5 → small) and a 10×10 one (≈ 11.3 → large)
  const [h, w] = [16, 16];
  const instances = new Int32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (y >= 1 && y < 5 && x >= 1 && x < 5) instances[y * w + x] = 1;
      if (y >= 5 && y < 15 && x >= 5 && x < 15) instances[y * w + x] = 2;
    }
  }
  const sample = {
    id: "t",
    organ: "",
    height: h,
    width: w,
    image: new Uint8Array(h * w * 3).fill(128),
    instances,
    classOf: Int32Array.of(-1, 0, 1),
  };
  const labels = attributeLabels([size], sample);
  assert.deepEqual([...labels.entries()].map(([id, l]) => [id, Array.from(l)]), [[1, [1]], [2, [3]]]);
  assert.deepEqual(attributePrompts([size]), [[
    "a tiny nucleus",
    "a small nucleus",
    "a medium nucleus",
    "a large nucleus",
    "a huge nucleus",
  ]]);
});

Deno.test("a training step with attribute prompts: L_attr is positive and finite; without labels it is an error", () => {
  const config = withVl(false, true);
  const params = initModel(config, 5, 3);
  const samples = [syntheticSample(3, 0, { size: 64 }), syntheticSample(3, 1, { size: 64 })];
  const labels = { labels: samples.map((s) => attributeLabels([size], s)), candidates: [5] };
  const batch = batchOf(samples, labels);
  assert.equal(batch.attributes?.labels.length, 2);
  const optimizer = tf.train.adam(1e-3);
  const options = {
    ...defaultTrainOptions,
    loss: { points: 256 },
    classNames: SYNTHETIC_CLASSES,
    attributePrompts: attributePrompts([size]),
  };
  const parts = trainStep(params, config, 5, optimizer, batch, options);
  assert.ok(parts.attr > 0 && Number.isFinite(parts.attr), `L_attr ${parts.attr}`);
  assert.equal(parts.cent, 0, "no SIM, no L_cent");
  const plain = batchOf(samples);
  assert.throws(() => trainStep(params, config, 5, optimizer, plain, options), /L_attr needs/);
  disposeBatch(batch);
  disposeBatch(plain);
});

Deno.test("a training step of row full (fusion, rule predicted): the presence head learns, fusion parameters move; inference needs no truth", () => {
  const config: ModelConfig = {
    ...MODEL_PRESETS.micro,
    vl: visionLanguagePreset({ attributes: false, sim: true, fusion: "predicted" }, SYNTHETIC_CLASSES),
  };
  const params = initModel(config, 5, 4);
  const batch = batchOf([syntheticSample(3, 0, { size: 64 }), syntheticSample(3, 1, { size: 64 })]);
  const optimizer = tf.train.adam(1e-3);
  const options = { ...defaultTrainOptions, loss: { points: 256 } };
  const watched = namedTensors(params.vl?.fusion).filter(([name]) => ["presence.weight", "text.weight"].includes(name));
  const before = watched.map(([, t]) => t.dataSync().slice());
  const parts = trainStep(params, config, 5, optimizer, batch, options);
  assert.ok(parts.presence > 0 && Number.isFinite(parts.presence), `presence BCE ${parts.presence}`);
  watched.forEach(([name, t], i) => assert.ok(t.dataSync().some((v, j) => v !== before[i]?.[j]), `${name} moved`));
  const shapes = tf.tidy(() => {
    const o = applyModel(params, config, 5, batch.images); // no truth: the presence head decides
    return { presence: o.presence?.shape, last: o.predictions.at(-1)?.masks.shape };
  });
  assert.deepEqual(shapes, { presence: [2, 5], last: [2, 8, 32, 32] });
  const all = { ...config, vl: { ...config.vl!, fusion: { rule: "all" as const, weightPresence: 1 } } };
  const count = tf.memory().numTensors;
  trainStep(params, all, 5, optimizer, batch, options);
  assert.equal(tf.memory().numTensors, count, "no leaks with fusion");
  disposeBatch(batch);
});

Deno.test("each row's model holds exactly its parts' parameters", () => {
  const groups = (row: AblationRow) => {
    const config = modelOf({ preset: "micro", stem: true, row }, SYNTHETIC_CLASSES);
    const params = initModel(config, 5, 0);
    const names = namedTensors(params).map(([n]) => n);
    const has = (prefix: string) => names.some((n) => n.startsWith(prefix));
    const out = ["vl.text.", "vl.visual.", "vl.textual.", "vl.sim.", "vl.fusion."].filter(has);
    tf.dispose(namedTensors(params).map(([, t]) => t));
    return out;
  };
  const text = ["vl.text.", "vl.visual.", "vl.textual."];
  assert.deepEqual(groups("baseline"), []);
  assert.deepEqual(groups("vl_fixed"), text);
  assert.deepEqual(groups("vl_attr_quantile"), text);
  assert.deepEqual(groups("vl_attr_entropy"), text);
  assert.deepEqual(groups("sim"), [...text, "vl.sim."]);
  assert.deepEqual(groups("full"), [...text, "vl.sim.", "vl.fusion."]);
});

Deno.test("finite differences through the whole micro model: L_fix + L_cent w.r.t. a category token and a word embedding", async () => {
  await tf.setBackend("cpu");
  try {
    const config = withVl(true);
    const params = initModel(config, 5, 5);
    const batch = batchOf([syntheticSample(4, 0, { size: 64 })]);
    const vl = params.vl!, tower = vl.text!;
    // the matching is a decision: fix it once, then differentiate the losses for those pairs
    let plan: ReadonlyArray<Match> = [];
    tf.tidy(() => {
      const out = applyModel(params, config, 5, batch.images);
      plan = planLoss(out.predictions, batch.targets, { points: 128 }).layers.at(-1) ?? [];
    });
    const ids = promptIds(config.vl!, SYNTHETIC_CLASSES);
    const loss = (token: tf.Tensor, words: tf.Tensor): tf.Scalar => {
      const p = {
        ...params,
        vl: { ...vl, sim: { ...vl.sim!, tokens: token }, text: { ...tower, token_embedding: words } },
      };
      const out = applyModel(p, config, 5, batch.images);
      const text = textEmbeddings(p.vl, config.vl!, ids);
      const matched = matchedQueries(plan, batch.targets, out.queries!.shape[1]);
      return visionLanguageLoss(p.vl, config.vl!, text, 5, out.queries!, matched, out.tokens).total;
    };
    const [gTokens, gWords] = tf.grads(loss)([vl.sim!.tokens, tower.token_embedding]);
    const check = (which: 0 | 1, index: number, analytic: number) => {
      const eps = 1e-2;
      const at = (delta: number) =>
        tf.tidy(() => {
          const base = [vl.sim!.tokens, tower.token_embedding][which] as tf.Tensor;
          const bumped = tf.add(base, tf.mul(tf.oneHot(index, base.size).reshape(base.shape), delta));
          return loss(which === 0 ? bumped : vl.sim!.tokens, which === 1 ? bumped : tower.token_embedding)
            .dataSync()[0] as number;
        });
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      assert.ok(Math.abs(numeric - analytic) <= 2e-2 * Math.max(1e-2, Math.abs(analytic)), `${numeric} vs ${analytic}`);
      assert.ok(Math.abs(analytic) > 1e-6, "a gradient that is not zero");
    };
    const wordRow = ids.dataSync()[2] as number; // the first class word of the prompts
    check(0, 3, gTokens!.dataSync()[3] as number);
    check(1, wordRow * 128 + 5, gWords!.dataSync()[wordRow * 128 + 5] as number);
    tf.dispose([gTokens!, gWords!, ids]);
    disposeBatch(batch);
  } finally {
    await tf.setBackend("wasm");
  }
});

Deno.test("L_fix with organ prompts: each nucleus is scored against its own image's organ's class embeddings", () => {
  const config = withVl(false), params = initModel(config, 5, 3), vl = params.vl!;
  tf.tidy(() => {
    const queries = tf.randomNormal([2, 4, config.decoder.d], 0, 1, "float32", 1) as tf.Tensor3D; // [B, Q, D]
    const text = tf.randomNormal([5, 128], 0, 1, "float32", 2) as tf.Tensor2D; // [C, E]
    const matched = {
      rows: Int32Array.of(0, 2, 5, 7),
      labels: Int32Array.of(1, 3, 0, 4),
      images: Int32Array.of(0, 0, 1, 1),
      targets: Int32Array.of(0, 1, 0, 1),
    };
    const fix = (organs?: { text: tf.Tensor3D; ofImage: Int32Array }) =>
      visionLanguageLoss(vl, config.vl!, text, 5, queries, matched, undefined, undefined, organs).fix
        .dataSync()[0] as number;
    const plain = fix();
    // every organ's prompts equal to the organ-free ones: the same loss
    const same = fix({ text: tf.stack([text, text]) as tf.Tensor3D, ofImage: Int32Array.of(0, 1) });
    assert.ok(Math.abs(same - plain) < 1e-5, `${same} vs ${plain}`);
    // image 1's organ differs: only its nuclei's terms change — equal to the mean of the two halves
    const other = tf.randomNormal([5, 128], 0, 1, "float32", 3) as tf.Tensor2D;
    const mixed = fix({ text: tf.stack([text, other]) as tf.Tensor3D, ofImage: Int32Array.of(0, 1) });
    const half = (t: tf.Tensor2D, rows: number[]) => {
      const m = {
        rows: Int32Array.from(rows.map((i) => matched.rows[i] as number)),
        labels: Int32Array.from(rows.map((i) => matched.labels[i] as number)),
        images: Int32Array.from(rows.map((i) => matched.images[i] as number)),
        targets: Int32Array.from(rows.map((i) => matched.targets[i] as number)),
      };
      return visionLanguageLoss(vl, config.vl!, t, 5, queries, m, undefined).fix.dataSync()[0] as number;
    };
    const expected = (half(text, [0, 1]) + half(other, [2, 3])) / 2;
    assert.ok(Math.abs(mixed - expected) < 1e-5, `${mixed} vs ${expected}`);
    assert.ok(Math.abs(mixed - plain) > 1e-4, "the organ's prompts matter");
  });
  tf.dispose(namedTensors(params).map(([, t]) => t));
});
