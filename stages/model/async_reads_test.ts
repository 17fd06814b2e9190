/**
 * The paths for backends without synchronous reads (webgpu under Deno), run on `wasm` with
 * `forceAsyncReads`: each gives what the synchronous path gives.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { forceAsyncReads, initBackend } from "../backend/tf.ts";
import { SYNTHETIC_CLASSES, syntheticSample } from "../data/synthetic.ts";
import { namedTensors } from "./checkpoint.ts";
import { pointSampleAt } from "./matcher.ts";
import { applyModel, applyModelAsync, initModel, MODEL_PRESETS, type ModelConfig, outputTensors } from "./model.ts";
import { attentionBias } from "./transformer_decoder.ts";
import { batchOf, defaultTrainOptions, disposeBatch, trainStep, trainStepAsync } from "./train_step.ts";
import { visionLanguagePreset } from "./vision_language.ts";
import { mulberry32 } from "../data/random.ts";

await Effect.runPromise(initBackend("wasm"));

/** `f` with the synchronous paths (false) or the device paths (true); reads are restored after. */
const withReads = <A>(asyncReads: boolean, f: () => A): A => {
  forceAsyncReads(asyncReads);
  try {
    return f();
  } finally {
    forceAsyncReads(false);
  }
};

const randomTensor = (shape: number[], seed: number, scale = 1): tf.Tensor => {
  const rng = mulberry32(seed), n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => (rng() * 2 - 1) * scale), shape);
};

const maxRelative = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number, y = b[i] as number;
    worst = Math.max(worst, Math.abs(x - y) / Math.max(1, Math.abs(y)));
  }
  return worst;
};

Deno.test("masked attention's bias as tensor ops equals the bias from values, hidden queries included, and passes no gradient", () => {
  const masks = tf.tidy(() => {
    const m = randomTensor([2, 5, 8, 8], 1, 3) as tf.Tensor4D; // [B, Q, h, w]
    // query 2 of image 1 hides everything: it must attend everywhere (bias 0)
    const hidden = tf.tensor4d(
      Array.from({ length: 2 * 5 * 64 }, (_, i) => (i >= (5 + 2) * 64 && i < (5 + 3) * 64 ? -5 : 0)),
      [2, 5, 8, 8],
    );
    return tf.add(m, hidden) as tf.Tensor4D;
  });
  const fromValues = withReads(false, () => tf.tidy(() => attentionBias(masks, 4, 4).dataSync()));
  const onDevice = withReads(true, () => tf.tidy(() => attentionBias(masks, 4, 4).dataSync()));
  assert.deepEqual(Array.from(onDevice), Array.from(fromValues));
  assert.ok(
    fromValues.slice((5 + 2) * 16, (5 + 3) * 16).every((v) => v === 0),
    "a query that hides all attends everywhere",
  );
  assert.ok(fromValues.some((v) => v === -1e9), "some pixels are masked");
  const grad = withReads(
    true,
    () => tf.tidy(() => tf.grad((m: tf.Tensor) => tf.sum(attentionBias(m as tf.Tensor4D, 4, 4)))(masks).dataSync()),
  );
  assert.ok(grad.every((g) => g === 0), "detached");
  masks.dispose();
});

Deno.test("point sampling as a gather on the device equals the values path, gradient included (points outside the grid too)", () => {
  const masks = randomTensor([4, 6, 7], 2) as tf.Tensor3D; // [R, h, w]
  const rng = mulberry32(3), K = 3, P = 50;
  // coordinates a little outside [0, 1] as well: the taps outside the grid weigh 0
  const xy = Float32Array.from({ length: K * P * 2 }, () => rng() * 1.2 - 0.1);
  const rows = Int32Array.of(3, 0, 3);
  const dy = randomTensor([K, P], 4);
  const run = (asyncReads: boolean) =>
    withReads(asyncReads, () =>
      tf.tidy(() => {
        const value = pointSampleAt(masks, xy, P, false, rows).dataSync();
        const grad = tf.grad((m: tf.Tensor) => tf.sum(tf.mul(pointSampleAt(m as tf.Tensor3D, xy, P, false, rows), dy)))(
          masks,
        ).dataSync();
        return { value, grad };
      }));
  const sync = run(false), device = run(true);
  assert.ok(maxRelative(device.value, sync.value) <= 1e-6, "values");
  assert.ok(maxRelative(device.grad, sync.grad) <= 1e-6, "gradients");
  tf.dispose([masks, dy]);
});

/**
 * A step from the same start by `trainStep` and by `trainStepAsync` (device paths): losses and
 * parameters. One step: after it the two differ in the last bits (the clipping scale is computed in
 * float32 on the device), which a second step's point sampling may turn into other points.
 */
const compareSteps = async (config: ModelConfig, seed: number) => {
  const samples = [syntheticSample(3, 0, { size: 64 }), syntheticSample(3, 1, { size: 64 })];
  const options = { ...defaultTrainOptions, learningRate: 1e-3, loss: { points: 256 }, classNames: SYNTHETIC_CLASSES };
  const run = async (asyncReads: boolean) => {
    const params = initModel(config, 5, seed);
    // SGD: Adam would turn last-bit differences of a near-zero gradient into whole steps of ±lr
    const optimizer = tf.train.sgd(1e-2);
    const batch = batchOf(samples);
    const losses = [];
    for (let i = 0; i < 1; i++) {
      losses.push(
        asyncReads
          ? await (async () => {
            forceAsyncReads(true);
            try {
              return await trainStepAsync(params, config, 5, optimizer, batch, options);
            } finally {
              forceAsyncReads(false);
            }
          })()
          : trainStep(params, config, 5, optimizer, batch, options),
      );
    }
    const values = namedTensors(params).map(([name, t]) => [name, t.dataSync().slice()] as const);
    const count = tf.memory().numTensors;
    if (asyncReads) {
      forceAsyncReads(true);
      try {
        await trainStepAsync(params, config, 5, optimizer, batch, options);
      } finally {
        forceAsyncReads(false);
      }
      assert.equal(tf.memory().numTensors, count, "no tensor leaks across asynchronous steps");
    }
    disposeBatch(batch);
    tf.dispose(namedTensors(params).map(([, t]) => t));
    optimizer.dispose();
    return { losses, values };
  };
  const sync = await run(false), device = await run(true);
  sync.losses.forEach((l, i) => {
    for (const [part, v] of Object.entries(l)) {
      const other = device.losses[i]?.[part as keyof typeof l] as number;
      assert.ok(Math.abs(other - v) <= 1e-5 * Math.max(1, Math.abs(v)), `step ${i + 1} ${part}: ${other} vs ${v}`);
    }
  });
  assert.ok(sync.losses[0]!.total > 0);
  sync.values.forEach(([name, v], i) => {
    const other = device.values[i]?.[1] ?? new Float32Array();
    assert.ok(maxRelative(other, v) <= 1e-6, `${name}: ${maxRelative(other, v)}`);
  });
};

Deno.test("trainStepAsync (two runs, decisions replayed, device paths) trains as trainStep: micro with centre queries", async () => {
  await compareSteps(MODEL_PRESETS.micro, 2);
});

Deno.test("trainStepAsync trains as trainStep: row full (feature fusion with the truth's presence, SIM)", async () => {
  await compareSteps({
    ...MODEL_PRESETS.micro,
    vl: visionLanguagePreset({ attributes: false, sim: true, fusion: "predicted" }, SYNTHETIC_CLASSES),
  }, 4);
});

Deno.test("applyModelAsync predicts as applyModel, presence decided by its head, and returns the decisions it took", async () => {
  const config: ModelConfig = {
    ...MODEL_PRESETS.micro,
    vl: visionLanguagePreset({ attributes: false, sim: false, fusion: "predicted" }, SYNTHETIC_CLASSES),
  };
  const params = initModel(config, 5, 5);
  const images = tf.tensor4d(syntheticSample(3, 2, { size: 64 }).image, [1, 64, 64, 3]);
  const sync = tf.tidy(() => applyModel(params, config, 5, images).predictions.at(-1)!.masks.dataSync());
  forceAsyncReads(true);
  try {
    const before = tf.memory().numTensors;
    tf.dispose(outputTensors(await applyModelAsync(params, config, 5, images)));
    assert.equal(tf.memory().numTensors, before, "disposing the output frees everything the run made");
    const out = await applyModelAsync(params, config, 5, images);
    assert.ok(maxRelative(out.predictions.at(-1)!.masks.dataSync(), sync) <= 1e-5);
    assert.equal(out.decided.peaks?.cells.length, 8, "the peaks it chose");
    assert.equal(out.decided.present?.length, 5, "the classes it decided present");
    assert.ok(out.centers !== undefined && !out.centers.isDisposed, "the centre logits are returned, alive");
    assert.ok(out.presence !== undefined && !out.presence.isDisposed, "the presence logits are returned, alive");
    const replayed = tf.tidy(() =>
      applyModel(params, config, 5, images, out.decided).predictions.at(-1)!.masks.dataSync()
    );
    assert.ok(maxRelative(replayed, sync) <= 1e-5, "replaying the decisions gives the same prediction");
    tf.dispose(outputTensors(out));
  } finally {
    forceAsyncReads(false);
  }
  tf.dispose([images, ...namedTensors(params).map(([, t]) => t)]);
});
