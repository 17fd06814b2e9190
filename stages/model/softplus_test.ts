import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { initBackend } from "../backend/tf.ts";
import { softplus } from "./softplus.ts";

await Effect.runPromise(initBackend("wasm"));

Deno.test("softplus equals tfjs's within 6e-8 absolute (and 1e-6 relative above 1e-3), on wasm and cpu; its gradient is the sigmoid", async () => {
  const values = Float32Array.from({ length: 4001 }, (_, i) => (i - 2000) / 50); // −40 … 40
  for (const backend of ["wasm", "cpu"]) {
    await tf.setBackend(backend);
    const [ours, reference, grad, sigmoid] = tf.tidy(() => {
      const x = tf.tensor1d(values);
      return [
        softplus(x).dataSync(),
        tf.softplus(x).dataSync(),
        tf.grad((v: tf.Tensor) => softplus(v).sum())(x).dataSync(),
        tf.sigmoid(x).dataSync(),
      ];
    });
    values.forEach((v, i) => {
      const [a, b] = [ours[i] as number, reference[i] as number];
      assert.ok(Math.abs(a - b) <= 6e-8 + 1e-6 * Math.abs(b), `${backend}: softplus(${v}) = ${a}, tfjs ${b}`);
      assert.equal(grad[i], sigmoid[i], `${backend}: gradient at ${v}`);
    });
  }
  await tf.setBackend("wasm");
});

Deno.test("softplus leaks no tensors, forward or backward", () => {
  const before = tf.memory().numTensors;
  const x = tf.randomNormal([7, 9]);
  tf.tidy(() => tf.grad((v: tf.Tensor) => softplus(v).sum())(x)).dispose();
  softplus(x).dispose();
  x.dispose();
  assert.equal(tf.memory().numTensors, before);
});
