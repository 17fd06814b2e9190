/**
 * Model benchmark (run by `deno task bench`): one AdamW training step of the `tiny` baseline
 * (batch 2, 256² synthetic tiles, 4,096 loss points) on the WASM backend with our kernels, median of
 * 3 after a warm-up, and where the time goes (the five most expensive kernels of one step).
 */
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { initBackend } from "../stages/backend/tf.ts";
import { syntheticSample } from "../stages/data/synthetic.ts";
import { initModel, MODEL_PRESETS } from "../stages/model/model.ts";
import { torchStepPeer } from "./torch_peer.ts";
import { batchOf, defaultTrainOptions, disposeBatch, trainStep } from "../stages/model/train_step.ts";
import type { Row } from "./evaluation_bench.ts";

export const modelBench = async (): Promise<Row[]> => {
  await Effect.runPromise(initBackend("wasm"));
  const config = MODEL_PRESETS.tiny;
  const params = initModel(config, 5, 1);
  const batch = batchOf([syntheticSample(1, 0), syntheticSample(1, 1)]);
  const optimizer = tf.train.adam(1e-4);
  const options = { ...defaultTrainOptions, loss: { points: 4096 } };
  trainStep(params, config, 5, optimizer, batch, options);
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    trainStep(params, config, 5, optimizer, batch, options);
    times.push(performance.now() - t);
  }
  const profile = await tf.profile(() => void trainStep(params, config, 5, optimizer, batch, options));
  const byKernel = new Map<string, number>();
  for (const k of profile.kernels) {
    byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (Number(await k.kernelTimeMs) || 0));
  }
  const top = [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([n, ms]) => `${n} ${ms.toFixed(0)} ms`).join(
    ", ",
  );
  disposeBatch(batch);
  optimizer.dispose();
  const median = times.sort((a, b) => a - b)[1] as number;
  const peers = await torchStepPeer();
  const ratio = (row: Row | undefined): string => {
    const seconds = row === undefined ? NaN : parseFloat(row.value);
    return Number.isFinite(seconds) ? `${(median / 1000 / seconds).toFixed(1)}×` : "n/a";
  };
  return [{
    name: "training step, tiny baseline (batch 2, 256², wasm, 1 thread)",
    value: `${(median / 1000).toFixed(2)} s`,
    note: `median of 3; peak ${(profile.peakBytes / 1e9).toFixed(2)} GB of tensors; top kernels: ${top}; ` +
      `${ratio(peers[0])} the PyTorch 1-thread step and ${ratio(peers[1])} the 2-thread step measured below`,
  }, ...peers];
};
