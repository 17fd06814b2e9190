import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { initBackend } from "../backend/tf.ts";
import { applyConvEncoder, initConvEncoder } from "./conv_encoder.ts";
import { initializer, parameterList } from "./layers.ts";

await Effect.runPromise(initBackend("wasm"));

const CONFIG = { img_size: 64, widths: [4, 8, 8, 16, 16], blocks: [1, 1, 2, 1, 1] } as const;

Deno.test("conv encoder x=[2,64,64,3]: levels at strides 2…32 with the configured widths", () => {
  const params = initConvEncoder(initializer(1), CONFIG);
  const shapes = tf.tidy(() =>
    applyConvEncoder(params, tf.randomNormal([2, 64, 64, 3], 0, 1, "float32", 3)).map((l) => l.shape)
  );
  assert.deepEqual(shapes, [[2, 32, 32, 4], [2, 16, 16, 8], [2, 8, 8, 8], [2, 4, 4, 16], [2, 2, 2, 16]]);
  tf.dispose(parameterList(params));
});

Deno.test("conv encoder: zero-γ blocks start as the identity (each level is its down-sampling's ReLU(LN(conv)))", () => {
  const params = initConvEncoder(initializer(2), CONFIG);
  const noBlocks = { levels: params.levels.map((l) => ({ ...l, blocks: [] })) };
  const [a, b] = tf.tidy(() => {
    const x = tf.randomNormal([1, 64, 64, 3], 0, 1, "float32", 4) as tf.Tensor4D;
    return [applyConvEncoder(params, x)[4].dataSync(), applyConvEncoder(noBlocks, x)[4].dataSync()];
  });
  assert.deepEqual(Array.from(a ?? []), Array.from(b ?? []));
  tf.dispose(parameterList(params));
});

Deno.test("conv encoder: the gradient reaches the blocks' zero-initialised scales and the first convolution", () => {
  const params = initConvEncoder(initializer(3), CONFIG);
  const first = params.levels[0]?.down.weight, gamma = params.levels[2]?.blocks[1]?.norm2.weight;
  assert.ok(first !== undefined && gamma !== undefined);
  const norms = tf.tidy(() => {
    const x = tf.randomNormal([1, 64, 64, 3], 0, 1, "float32", 5) as tf.Tensor4D;
    const grads = tf.grads((w: tf.Tensor, g: tf.Tensor) => {
      const levels = applyConvEncoder({
        levels: params.levels.map((l, i) =>
          i === 0
            ? { ...l, down: { weight: w } }
            : i === 2
            ? { ...l, blocks: l.blocks.map((b, j) => j === 1 ? { ...b, norm2: { ...b.norm2, weight: g } } : b) }
            : l
        ),
      }, x);
      return tf.addN(levels.map((l) => tf.sum(tf.square(l))));
    })([first, gamma]);
    return grads.map((t) => tf.norm(t).dataSync()[0] as number);
  });
  assert.ok(norms.every((n) => n > 0), `gradient norms ${norms}`);
  tf.dispose(parameterList(params));
});
