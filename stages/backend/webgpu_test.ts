/**
 * The `webgpu` backend. Where Deno finds a WebGPU adapter (a GPU, or Mesa's software Vulkan
 * driver lavapipe: `apt-get install mesa-vulkan-drivers`), the model trains and predicts on it and
 * agrees with `wasm`; where it finds none, starting it fails with one clear reason. The test that
 * needs an adapter is reported as ignored where there is none.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { initBackend, readsSynchronously } from "./tf.ts";
import { SYNTHETIC_CLASSES, syntheticSample } from "../data/synthetic.ts";
import { namedTensors } from "../model/checkpoint.ts";
import { initModel, lastPredictionValues, MODEL_PRESETS } from "../model/model.ts";
import { batchOf, defaultTrainOptions, disposeBatch, trainStep, trainStepAsync } from "../model/train_step.ts";
import { webgpuBench } from "../../bench/webgpu_bench.ts";

const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
const adapter = await gpu?.requestAdapter().catch(() => null) ?? null;

// a WebGPU device (even a software one) keeps resources a test cannot close
const gpuTest = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  ...gpuTest,
  name: "webgpu without an adapter fails with one clear reason and leaves the backend in use as it was",
  ignore: adapter !== null,
  fn: async () => {
    await Effect.runPromise(initBackend("wasm"));
    const r = await Effect.runPromise(Effect.result(initBackend("webgpu")));
    assert.equal(r._tag, "Failure");
    if (r._tag !== "Failure") return;
    assert.equal(r.failure.backend, "webgpu");
    assert.match(
      r.failure.reason,
      /^(navigator\.gpu is missing|no WebGPU adapter|@tensorflow\/tfjs-backend-webgpu cannot be loaded)/,
    );
    assert.doesNotMatch(r.failure.reason, /\n/, "one line");
    assert.equal(tf.getBackend(), "wasm");
  },
});

Deno.test({
  ...gpuTest,
  name:
    "webgpu (needs a WebGPU adapter): AddN of many inputs, a training step that agrees with wasm, prediction, no leaks",
  ignore: adapter === null,
  fn: async () => {
    const config = MODEL_PRESETS.micro;
    const samples = [syntheticSample(3, 0, { size: 64 }), syntheticSample(3, 1, { size: 64 })];
    const options = {
      ...defaultTrainOptions,
      learningRate: 1e-3,
      loss: { points: 256 },
      classNames: SYNTHETIC_CLASSES,
    };
    const step = async (onGpu: boolean) => {
      const params = initModel(config, 5, 2), optimizer = tf.train.adam(1e-3), batch = batchOf(samples);
      try {
        return onGpu
          ? await trainStepAsync(params, config, 5, optimizer, batch, options)
          : trainStep(params, config, 5, optimizer, batch, options);
      } finally {
        disposeBatch(batch);
        optimizer.dispose();
        tf.dispose(namedTensors(params).map(([, t]) => t));
      }
    };
    await Effect.runPromise(initBackend("wasm"));
    const reference = await step(false);
    await Effect.runPromise(initBackend("webgpu"));
    try {
      assert.equal(tf.getBackend(), "webgpu");
      assert.equal(readsSynchronously(), false);
      // more inputs than one shader may bind: tfjs-webgpu's own AddN returned the first input
      const many = await tf.tidy(() => tf.addN(Array.from({ length: 20 }, (_, i) => tf.fill([3], i)))).data();
      assert.deepEqual(Array.from(many), [190, 190, 190]);

      const first = await step(true);
      for (const [part, v] of Object.entries(reference)) {
        const got = first[part as keyof typeof first];
        assert.ok(Math.abs(got - v) <= 1e-3 * Math.max(1, Math.abs(v)), `${part}: webgpu ${got}, wasm ${v}`);
      }

      const params = initModel(config, 5, 2), optimizer = tf.train.adam(1e-3), batch = batchOf(samples);
      await trainStepAsync(params, config, 5, optimizer, batch, options);
      const count = tf.memory().numTensors;
      await trainStepAsync(params, config, 5, optimizer, batch, options);
      assert.equal(tf.memory().numTensors, count, "no tensor leaks across steps");
      const p = await lastPredictionValues(params, config, 5, batch.images);
      assert.deepEqual(p.shape, { queries: 8, classes: 5, h: 32, w: 32 });
      assert.ok(p.masks.every(Number.isFinite) && p.logits.every(Number.isFinite));
      disposeBatch(batch);
      optimizer.dispose();
      tf.dispose(namedTensors(params).map(([, t]) => t));
    } finally {
      await Effect.runPromise(initBackend("wasm"));
    }
  },
});

Deno.test({
  ...gpuTest,
  name: "bench --only webgpu (needs a WebGPU adapter): one row per batch, a step time and its ratio to wasm",
  ignore: adapter === null,
  fn: async () => {
    const rows = await webgpuBench("micro", [1], 1, 1);
    assert.equal(rows.length, 1);
    assert.match(rows[0]?.name ?? "", /^training step, micro baseline \(batch 1, 64², webgpu/);
    assert.match(rows[0]?.value ?? "", /^\d+\.\d\d s$/);
    assert.match(rows[0]?.note ?? "", /\d+\.\d\d× the same step on wasm \(/);
    assert.equal(tf.getBackend(), "wasm", "the bench leaves wasm active");
  },
});
