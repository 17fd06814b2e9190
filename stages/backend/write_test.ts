import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { initBackend } from "./tf.ts";
import { tensorFrom } from "./write.ts";

await Effect.runPromise(initBackend("wasm"));

Deno.test("tensorFrom starts at zeros and keeps what the callback writes, on wasm (in place) and cpu, leaking nothing", async () => {
  for (const backend of ["wasm", "cpu"]) {
    await tf.setBackend(backend);
    const before = tf.memory().numTensors;
    const x = tf.tensor2d([[1, -2, 3], [4.5, 0, -6]]);
    const made = tensorFrom([2, 3], (v) => {
      assert.ok(v.length === 6 && v.every((value) => value === 0), `${backend}: six zeros to start`);
      v[1] = 7, v[5] = -1;
    });
    assert.deepEqual(made.shape, [2, 3]);
    assert.deepEqual(Array.from(made.dataSync()), [0, 7, 0, 0, 0, -1], backend);
    const sum = tf.add(made, x); // an ordinary tensor: ops read it
    assert.deepEqual(Array.from(sum.dataSync()), [1, 5, 3, 4.5, 0, -7], backend);
    tf.dispose([x, made, sum]);
    assert.equal(tf.memory().numTensors, before, `${backend}: no tensor left`);
  }
  await tf.setBackend("wasm");
});
