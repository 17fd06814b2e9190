import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { initBackend } from "../backend/tf.ts";
import { mulberry32 } from "../data/random.ts";
import { planLoss } from "./losses.ts";
import { type InstanceTargets, targetMaskValues } from "./matcher.ts";
import { planImages, planningThreads, setPlanningThreads, sharedBuffer, stopPlanningWorkers } from "./plan_pool.ts";

await Effect.runPromise(initBackend("wasm"));

const rng = mulberry32(31);
/** 3 decoder layers of B=2 images, Q=12 queries, 5 classes + no object, 32² masks; 64² targets. */
const example = () => {
  const outputs = [0, 1, 2].map(() => ({
    logits: tf.tensor3d(Float32Array.from({ length: 2 * 12 * 6 }, () => rng() * 4 - 2), [2, 12, 6]),
    masks: tf.tensor4d(Float32Array.from({ length: 2 * 12 * 32 * 32 }, () => rng() * 12 - 6), [2, 12, 32, 32]),
  }));
  const targets: InstanceTargets[] = [5, 9].map((n) => {
    const masks = new Float32Array(n * 64 * 64);
    for (let k = 0; k < n; k++) {
      const [x0, y0] = [Math.floor(rng() * 54), Math.floor(rng() * 54)];
      for (let y = y0; y < y0 + 10; y++) for (let x = x0; x < x0 + 10; x++) masks[k * 4096 + y * 64 + x] = 1;
    }
    return { classes: Int32Array.from({ length: n }, (_, k) => k % 5), masks: tf.tensor3d(masks, [n, 64, 64]) };
  });
  return {
    outputs,
    targets,
    dispose: () => tf.dispose([...outputs.flatMap((o) => [o.logits, o.masks]), ...targets.map((t) => t.masks)]),
  };
};

Deno.test("planning on two threads gives exactly the plans of one thread, call after call, as its shared buffers grow", () => {
  const { outputs, targets, dispose } = example();
  try {
    setPlanningThreads(1);
    const serial = planLoss(outputs, targets, { points: 300, seed: 4 });
    setPlanningThreads(2);
    assert.equal(planningThreads(), 2);
    for (let call = 0; call < 3; call++) {
      const parallel = planLoss(outputs, targets, { points: 300, seed: 4 });
      assert.deepEqual(parallel, serial, `call ${call}`);
    }
    const other = planLoss(outputs, targets, { points: 300, seed: 5 });
    assert.notDeepEqual(other, serial, "another seed plans otherwise");
    // growing the shared buffers (and reusing them for smaller jobs) changes nothing either
    for (const points of [1001, 2333, 300]) {
      setPlanningThreads(1);
      const one = planLoss(outputs, targets, { points, seed: 6 });
      setPlanningThreads(2);
      assert.deepEqual(planLoss(outputs, targets, { points, seed: 6 }), one, `${points} points`);
    }
  } finally {
    setPlanningThreads(1);
    stopPlanningWorkers();
    dispose();
  }
});

Deno.test("an error on the worker's side reaches the caller, and the next call works with a new worker", () => {
  const { targets, dispose } = example();
  const image = (n: number) => ({
    logits: Float32Array.from({ length: 12 * 6 }, () => rng()),
    masks: Float32Array.from({ length: 12 * 32 * 32 }, () => rng() - 0.5),
    maskShape: [12, 32, 32] as const,
    classes: (targets[n] as InstanceTargets).classes,
    targets: targetMaskValues((targets[n] as InstanceTargets).masks),
    targetShape: (targets[n] as InstanceTargets).masks.shape,
  });
  const settings = {
    costClass: 2,
    costMask: 5,
    costDice: 5,
    points: 64,
    oversample: 3,
    importanceRatio: 0.75,
    matchSeed: 1,
    pointSeed: 2,
  };
  try {
    setPlanningThreads(2);
    // the costlier unit stays on this thread; the one with an impossible point count goes to the worker
    assert.throws(
      () => planImages([{ image: image(1), settings }, { image: image(0), settings: { ...settings, points: -1 } }]),
      /planning worker: RangeError/,
    );
    const plans = planImages([{ image: image(1), settings }, { image: image(0), settings }]);
    assert.deepEqual(plans.map((p) => p.queryIndex.length), [9, 5]);
    assert.ok(plans.every((p, k) => p.coords.length === [9, 5][k]! * 64 * 2));
  } finally {
    setPlanningThreads(1);
    stopPlanningWorkers();
    dispose();
  }
});

Deno.test("the reused shared buffers grow in whole 8-byte words, so every typed array can view them", () => {
  let last = 0;
  for (const bytes of [12, 16, 13, 40, 41, 7]) {
    const b = sharedBuffer("test", bytes);
    assert.ok(b.byteLength >= bytes && b.byteLength >= last, `${bytes} bytes → ${b.byteLength}`);
    assert.equal(b.byteLength % 8, 0, `${bytes} bytes → ${b.byteLength}`);
    new Float64Array(b), new Int32Array(b), new Float32Array(b);
    last = b.byteLength;
  }
});
