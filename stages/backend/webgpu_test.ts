import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { initBackend } from "./tf.ts";

Deno.test({
  name:
    "webgpu starts only where it can read values synchronously; otherwise it fails with one clear reason, never falls back",
  // a WebGPU device (even a software one) keeps resources this test cannot close
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await Effect.runPromise(initBackend("wasm"));
    const r = await Effect.runPromise(Effect.result(initBackend("webgpu")));
    try {
      if (r._tag === "Failure") {
        assert.equal(r.failure.backend, "webgpu");
        assert.match(
          r.failure.reason,
          /^(navigator\.gpu is missing|no WebGPU adapter|tfjs-webgpu cannot read values synchronously under Deno|@tensorflow\/tfjs-backend-webgpu cannot be loaded)/,
        );
        assert.doesNotMatch(r.failure.reason, /\n/, "one line");
        assert.equal(tf.getBackend(), "wasm", "the backend in use before is in use again");
      } else {
        assert.equal(tf.getBackend(), "webgpu");
        const two = tf.tidy(() => tf.add(tf.ones([1 << 16]), tf.ones([1 << 16])).dataSync()[0]);
        assert.equal(two, 2, "a value computed on the GPU reads back synchronously");
      }
    } finally {
      await Effect.runPromise(initBackend("wasm"));
    }
  },
});
