/**
 * The training step on `webgpu` (run by `deno task bench --only webgpu`; not part of the default
 * run: on a software adapter such as lavapipe one `tiny` step takes minutes). The same step as the
 * model section — `tiny` baseline, 256² synthetic tiles, 4,096 loss points — through
 * `trainStepAsync` (webgpu reads asynchronously: two forward runs a step), median of 5 after 2
 * warm-ups, next to the same step on wasm (OpenBLAS on every core where it loads), measured in the same run.
 * A machine without a WebGPU adapter gets one row saying why.
 */
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { initBackend } from "../stages/backend/tf.ts";
import { syntheticSample } from "../stages/data/synthetic.ts";
import { initModel, MODEL_PRESETS, type ModelConfig, tileSize } from "../stages/model/model.ts";
import { parameterList } from "../stages/model/layers.ts";
import { batchOf, defaultTrainOptions, disposeBatch, trainStep, trainStepAsync } from "../stages/model/train_step.ts";
import type { Row } from "./evaluation_bench.ts";

interface AdapterInfo {
  readonly vendor?: string;
  readonly architecture?: string;
  readonly device?: string;
  readonly description?: string;
}

/** The adapter Deno offers, in words (empty when it says nothing). */
const adapterName = async (): Promise<string> => {
  const gpu = (navigator as { gpu?: { requestAdapter(): Promise<{ info?: AdapterInfo } | null> } }).gpu;
  const info = (await gpu?.requestAdapter().catch(() => null))?.info;
  return [info?.description, info?.device, info?.vendor].find((s) => s !== undefined && s !== "") ?? "";
};

/** Median seconds of `steps` steps after `warmups`, on the active backend. */
const medianStep = async (
  config: ModelConfig,
  batchSize: number,
  onGpu: boolean,
  warmups: number,
  steps: number,
): Promise<number> => {
  const params = initModel(config, 5, 1);
  const batch = batchOf(
    Array.from({ length: batchSize }, (_, i) => syntheticSample(1, i, { size: tileSize(config) })),
  );
  const optimizer = tf.train.adam(1e-4);
  const options = { ...defaultTrainOptions, loss: { points: 4096 } };
  const step = () =>
    onGpu
      ? trainStepAsync(params, config, 5, optimizer, batch, options)
      : Promise.resolve(trainStep(params, config, 5, optimizer, batch, options));
  try {
    for (let i = 0; i < warmups; i++) await step();
    const times: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t = performance.now();
      await step();
      times.push((performance.now() - t) / 1000);
    }
    return times.sort((a, b) => a - b)[Math.floor(steps / 2)] as number;
  } finally {
    disposeBatch(batch);
    optimizer.dispose();
    tf.dispose(parameterList(params));
  }
};

/** Rows for batches `sizes` of `preset` (the bench: tiny, batches 4 and 2). */
export const webgpuBench = async (
  preset: keyof typeof MODEL_PRESETS = "tiny",
  sizes: ReadonlyArray<number> = [4, 2],
  warmups = 2,
  steps = 5,
): Promise<Row[]> => {
  const config = MODEL_PRESETS[preset];
  const started = await Effect.runPromise(Effect.result(initBackend("webgpu")));
  if (started._tag === "Failure") {
    return [{ name: `training step, ${preset} baseline on webgpu`, value: "not run", note: started.failure.message }];
  }
  const adapter = await adapterName();
  const gpu: number[] = [];
  try {
    for (const size of sizes) gpu.push(await medianStep(config, size, true, warmups, steps));
  } finally {
    await Effect.runPromise(initBackend("wasm"));
  }
  const { matmul } = await Effect.runPromise(initBackend("wasm"));
  const cpu: number[] = [];
  for (const size of sizes) cpu.push(await medianStep(config, size, false, warmups, steps));
  const side = tileSize(config);
  return sizes.map((size, i) => ({
    name: `training step, ${preset} baseline (batch ${size}, ${side}², webgpu${adapter === "" ? "" : `: ${adapter}`})`,
    value: `${(gpu[i] as number).toFixed(2)} s`,
    note:
      `median of ${steps} after ${warmups} warm-ups, trainStepAsync (asynchronous reads: two forward runs a step); ` +
      `${((gpu[i] as number) / (cpu[i] as number)).toFixed(2)}× the same step on wasm (${
        (cpu[i] as number).toFixed(2)
      } s; matrix products: ${matmul}) measured after it`,
  }));
};
