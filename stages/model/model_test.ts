import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { initBackend } from "../backend/tf.ts";
import { syntheticSample } from "../data/synthetic.ts";
import { applyModel, imagePrediction, initModel, lastPredictionValues, MODEL_PRESETS } from "./model.ts";
import { batchOf, defaultTrainOptions, disposeBatch, modelBatch, trainStep } from "./train_step.ts";
import { namedTensors } from "./checkpoint.ts";

await Effect.runPromise(initBackend("wasm"));

Deno.test("micro model: predictions of every decoder layer have the Mask2Former shapes (fine masks: stride 2)", () => {
  const config = MODEL_PRESETS.micro;
  const params = initModel(config, 5, 1);
  const images = tf.zeros([2, 64, 64, 3]) as tf.Tensor4D;
  const shapes = tf.tidy(() =>
    applyModel(params, config, 5, images).predictions.map((p) => [p.logits.shape, p.masks.shape])
  );
  // one prediction before the first layer and one after each of the 2 layers
  assert.deepEqual(shapes, Array(3).fill([[2, 8, 6], [2, 8, 32, 32]]));
  images.dispose();
});

Deno.test("micro model as Mask2Former (learned queries, stride-4 masks): no centre head, learned query parameters", () => {
  const config = { ...MODEL_PRESETS.micro, queries: "learned" as const, maskStride: 4 as const };
  const params = initModel(config, 5, 1);
  assert.equal(params.centers, undefined);
  assert.equal(params.pixelDecoder.fineOutput, undefined);
  assert.deepEqual(params.decoder.queryFeat?.shape, [8, 32]);
  const images = tf.zeros([1, 64, 64, 3]) as tf.Tensor4D;
  const out = tf.tidy(() => {
    const o = applyModel(params, config, 5, images);
    return { centers: o.centers, shapes: o.predictions.map((p) => p.masks.shape) };
  });
  assert.equal(out.centers, undefined);
  assert.deepEqual(out.shapes, Array(3).fill([1, 8, 16, 16]));
  images.dispose();
});

Deno.test("micro model trains on one synthetic batch on wasm: the loss falls, the tensor count stays flat", () => {
  const config = MODEL_PRESETS.micro;
  const params = initModel(config, 5, 2);
  const batch = batchOf([syntheticSample(3, 0, { size: 64 }), syntheticSample(3, 1, { size: 64 })]);
  const optimizer = tf.train.adam(1e-3);
  const options = { ...defaultTrainOptions, learningRate: 1e-3, loss: { points: 512 } };
  const first = trainStep(params, config, 5, optimizer, batch, options).total;
  const count = tf.memory().numTensors; // after the first step the optimizer's slots exist
  let last = first;
  for (let i = 0; i < 30; i++) last = trainStep(params, config, 5, optimizer, batch, options).total;
  assert.equal(tf.memory().numTensors, count, "no tensor leaks across steps");
  assert.ok(Number.isFinite(last) && last < 0.75 * first, `loss ${first} → ${last}`);
  disposeBatch(batch);
});

Deno.test("conv_micro model: the conv encoder feeds the same decoder; dense maps [B, H/2, W/2, 3] at the mask stride", () => {
  const config = MODEL_PRESETS.conv_micro;
  const params = initModel(config, 5, 1);
  assert.equal(params.vit, undefined);
  assert.equal(params.pixelDecoder.stem1, undefined);
  const images = tf.zeros([2, 64, 64, 3]) as tf.Tensor4D;
  const out = tf.tidy(() => {
    const o = applyModel(params, config, 5, images);
    return { shapes: o.predictions.map((p) => [p.logits.shape, p.masks.shape]), dense: o.dense?.shape };
  });
  assert.deepEqual(out.shapes, Array(3).fill([[2, 8, 6], [2, 8, 32, 32]]));
  assert.deepEqual(out.dense, [2, 32, 32, 3]);
  images.dispose();
});

Deno.test("conv_micro model trains on one synthetic batch with dense supervision: the losses fall, no tensor leaks", () => {
  const config = MODEL_PRESETS.conv_micro;
  const params = initModel(config, 5, 2);
  const batch = batchOf([syntheticSample(3, 0, { size: 64 }), syntheticSample(3, 1, { size: 64 })], undefined, {
    denseStride: 2,
  });
  assert.deepEqual(batch.dense?.shape, [2, 32, 32, 3]);
  const optimizer = tf.train.adam(1e-3);
  const options = { ...defaultTrainOptions, learningRate: 1e-3, loss: { points: 512 } };
  const first = trainStep(params, config, 5, optimizer, batch, options);
  assert.ok(first.dense > 0, `the dense losses take part: ${first.dense}`);
  const count = tf.memory().numTensors;
  let last = first;
  for (let i = 0; i < 30; i++) last = trainStep(params, config, 5, optimizer, batch, options);
  assert.equal(tf.memory().numTensors, count, "no tensor leaks across steps");
  assert.ok(Number.isFinite(last.total) && last.total < 0.75 * first.total, `loss ${first.total} → ${last.total}`);
  assert.ok(last.dense < first.dense, `dense ${first.dense} → ${last.dense}`);
  disposeBatch(batch);
});

Deno.test("centerStride 2: the centre heat map, its targets and the queries' peaks are on the stride-2 grid; it trains", () => {
  const config = { ...MODEL_PRESETS.conv_micro, centerStride: 2 as const };
  const params = initModel(config, 5, 2);
  const batch = modelBatch(config, 5, [syntheticSample(3, 0, { size: 64 }), syntheticSample(3, 1, { size: 64 })]);
  assert.deepEqual(batch.centers.shape, [2, 32, 32]);
  const centers = tf.tidy(() => applyModel(params, config, 5, batch.images).centers?.shape);
  assert.deepEqual(centers, [2, 32, 32]);
  // σ of the locality prior stays 12 px: γ = 1/(2·6²) in stride-2 cells (1/(2·3²) at stride 4)
  assert.ok(Math.abs(Math.exp(params.centers?.logLocality.dataSync()[0] ?? 0) - 1 / 72) < 1e-7);
  const optimizer = tf.train.adam(1e-3);
  const options = { ...defaultTrainOptions, learningRate: 1e-3, loss: { points: 512 } };
  const first = trainStep(params, config, 5, optimizer, batch, options);
  const count = tf.memory().numTensors;
  let last = first;
  for (let i = 0; i < 20; i++) last = trainStep(params, config, 5, optimizer, batch, options);
  assert.equal(tf.memory().numTensors, count, "no tensor leaks across steps");
  assert.ok(last.center < first.center, `centre loss ${first.center} → ${last.center}`);
  disposeBatch(batch);
  tf.dispose(namedTensors(params).map(([, t]) => t));
  // stride-4 masks have no stride-2 features to read
  const coarse = { ...config, maskStride: 4 as const };
  const coarseParams = initModel(coarse, 5, 2);
  const images = tf.zeros([1, 64, 64, 3]) as tf.Tensor4D;
  assert.throws(
    () => tf.tidy(() => applyModel(coarseParams, coarse, 5, images).centers),
    /centerStride 2 needs maskStride 2/,
  );
  tf.dispose([images, ...namedTensors(coarseParams).map(([, t]) => t)]);
});

Deno.test("denseTypes: a type map [B, H/2, W/2, C+1] beside the dense maps, its targets in the batch; it trains", async () => {
  const config = { ...MODEL_PRESETS.conv_micro, denseTypes: true };
  const params = initModel(config, 5, 2);
  const batch = modelBatch(config, 5, [syntheticSample(3, 0, { size: 64 }), syntheticSample(3, 1, { size: 64 })]);
  assert.deepEqual(batch.types?.shape, [2, 32, 32, 6]);
  const optimizer = tf.train.adam(1e-3);
  const options = { ...defaultTrainOptions, learningRate: 1e-3, loss: { points: 512 } };
  const plain = initModel(MODEL_PRESETS.conv_micro, 5, 2);
  const plainBatch = modelBatch(MODEL_PRESETS.conv_micro, 5, [syntheticSample(3, 0, { size: 64 })]);
  const plainDense = trainStep(plain, MODEL_PRESETS.conv_micro, 5, tf.train.adam(1e-3), plainBatch, options).dense;
  const first = trainStep(params, config, 5, optimizer, batch, options);
  assert.ok(first.dense > plainDense, `the type loss joins the dense part: ${first.dense} vs ${plainDense}`);
  const count = tf.memory().numTensors;
  let last = first;
  for (let i = 0; i < 20; i++) last = trainStep(params, config, 5, optimizer, batch, options);
  assert.equal(tf.memory().numTensors, count, "no tensor leaks across steps");
  assert.ok(last.dense < first.dense, `dense ${first.dense} → ${last.dense}`);
  const values = await lastPredictionValues(params, config, 5, batch.images);
  assert.equal(values.types?.length, 2 * 32 * 32 * 6);
  assert.equal(imagePrediction(values, 1).maps?.types?.length, 32 * 32 * 6);
  disposeBatch(batch);
  disposeBatch(plainBatch);
  tf.dispose([...namedTensors(params), ...namedTensors(plain)].map(([, t]) => t));
});

Deno.test("initModel is a function of its seed: seed 0 gives the same parameters twice (tfjs reads seed 0 as none)", () => {
  const values = () => {
    const params = initModel(MODEL_PRESETS.micro, 3, 0);
    const out = namedTensors(params).map(([n, t]) => [n, Array.from(t.dataSync())] as const);
    tf.dispose(namedTensors(params).map(([, t]) => t));
    return out;
  };
  assert.deepEqual(values(), values());
});
