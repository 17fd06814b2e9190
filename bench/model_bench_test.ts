import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { kernelFlops } from "./model_bench.ts";

await tf.setBackend("cpu");

/** The FLOPs kernelFlops reads from a profile of `f` (shapes only, as the bench sees them). */
const profiled = async (f: () => tf.Tensor | tf.Tensor[]) => {
  const p = await tf.profile(() => void tf.tidy(f));
  return p.kernels.reduce((s, k) => s + kernelFlops(k.name, k.inputShapes, k.outputShapes[0] ?? []), 0);
};

Deno.test("kernelFlops: 2·m·n·k per product whichever operand is transposed; 2·|out|·kh·kw·ci per convolution", async () => {
  const [a, b] = [tf.ones([2, 3, 4]), tf.ones([2, 5, 4])];
  assert.equal(await profiled(() => tf.matMul(a, b, false, true)), 2 * 2 * 3 * 5 * 4);
  assert.equal(await profiled(() => tf.matMul(tf.transpose(a, [0, 2, 1]), b, true, true)), 2 * 2 * 3 * 5 * 4);
  const [x, w] = [tf.ones([1, 8, 8, 3]) as tf.Tensor4D, tf.ones([3, 3, 3, 6]) as tf.Tensor4D];
  const conv = 2 * (8 * 8 * 6) * (3 * 3 * 3);
  assert.equal(await profiled(() => tf.conv2d(x, w, 1, "same")), conv);
  // forward, input gradient and filter gradient: three convolutions' worth
  assert.equal(
    await profiled(() =>
      tf.grads((x0, w0) => tf.sum(tf.conv2d(x0 as tf.Tensor4D, w0 as tf.Tensor4D, 1, "same")))([x, w])
    ),
    3 * conv,
  );
  assert.equal(kernelFlops("Relu", [[10]], [10]), 0);
});
