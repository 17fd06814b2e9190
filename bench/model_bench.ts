/**
 * Model benchmark (run by `deno task bench`): one AdamW training step of the `tiny` baseline
 * (batches of 2 and 4, 256² synthetic tiles, 4,096 loss points) on the WASM backend with our kernels, median of
 * 5 after 3 warm-ups, and where the time goes (the five most expensive kernels of one step). Where
 * the native BLAS loads, the step is timed with matrix products on OpenBLAS and the loss's planning
 * on 1 and 2 threads (planning's second thread is a worker, plan_pool.ts), and on pure WASM (one
 * thread: tfjs-wasm has no threads under Deno); the PyTorch peer of the same architecture runs in
 * the same call.
 */
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { initBackend } from "../stages/backend/tf.ts";
import { activeBlas, useBlas } from "../stages/backend/kernels/batch_matmul.ts";
import { syntheticSample } from "../stages/data/synthetic.ts";
import { initModel, MODEL_PRESETS } from "../stages/model/model.ts";
import { parameterList } from "../stages/model/layers.ts";
import { type PeerRow, torchStepPeer } from "./torch_peer.ts";
import { setPlanningThreads } from "../stages/model/plan_pool.ts";
import { batchOf, defaultTrainOptions, disposeBatch, trainStep } from "../stages/model/train_step.ts";
import type { Row } from "./evaluation_bench.ts";

const size = (shape: ReadonlyArray<number>) => shape.reduce((a, b) => a * b, 1);

/**
 * Multiply-add FLOPs (×2) of one profiled kernel: matrix products and convolutions, which are
 * where the arithmetic is; element-wise kernels count 0. The profile has shapes, not attributes:
 * a product's inner size is |a's last two axes| / m, whichever of them is transposed.
 */
export const kernelFlops = (
  name: string,
  inputs: ReadonlyArray<ReadonlyArray<number>>,
  output: ReadonlyArray<number>,
) => {
  const [a, b] = [inputs[0] ?? [], inputs[1] ?? []];
  switch (name) {
    case "BatchMatMul":
    case "_FusedMatMul": {
      const m = output.at(-2) ?? 0, k = m === 0 ? 0 : size(a.slice(-2)) / m;
      return 2 * size(output) * k;
    }
    case "Conv2D": // [x, filter [kh, kw, ci, co]] → y
      return 2 * size(output) * size(b.slice(0, 3));
    case "Conv2DBackpropFilter": // [x, dy] → filter [kh, kw, ci, co]
      return 2 * size(b) * size(output.slice(0, 3));
    case "Conv2DBackpropInput": // [dy, filter [kh, kw, ci, co]] → dx
      return 2 * size(a) * size(b.slice(0, 3));
    default:
      return 0;
  }
};

/**
 * Median of 5 timed steps after 3 warm-ups (V8 compiles the planning worker's code during its first
 * jobs), the five most expensive kernels and the FLOPs of one more step.
 */
const timeStep = async (size: number): Promise<{ median: number; peakBytes: number; top: string; flops: number }> => {
  const config = MODEL_PRESETS.tiny;
  const params = initModel(config, 5, 1);
  const batch = batchOf(Array.from({ length: size }, (_, i) => syntheticSample(1, i)));
  const optimizer = tf.train.adam(1e-4);
  const options = { ...defaultTrainOptions, loss: { points: 4096 } };
  for (let i = 0; i < 3; i++) trainStep(params, config, 5, optimizer, batch, options);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    trainStep(params, config, 5, optimizer, batch, options);
    times.push(performance.now() - t);
  }
  const profile = await tf.profile(() => void trainStep(params, config, 5, optimizer, batch, options));
  const byKernel = new Map<string, number>();
  let flops = 0;
  for (const k of profile.kernels) {
    flops += kernelFlops(k.name, k.inputShapes, k.outputShapes[0] ?? []);
    byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (Number(await k.kernelTimeMs) || 0));
  }
  const top = [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([n, ms]) => `${n} ${ms.toFixed(0)} ms`)
    .join(", ");
  disposeBatch(batch);
  optimizer.dispose();
  tf.dispose(parameterList(params));
  return { median: times.sort((a, b) => a - b)[2] as number, peakBytes: profile.peakBytes, top, flops };
};

interface Run {
  readonly batch: number;
  readonly threads: number;
  readonly label: string;
  readonly median: number;
  readonly peakBytes: number;
  readonly top: string;
  readonly flops: number;
}

export const modelBench = async (): Promise<Row[]> => {
  const backend = await Effect.runPromise(initBackend("wasm"));
  const blas = activeBlas();
  const runs: Run[] = [], failed: Row[] = [];
  /** Times one configuration; a failure (WASM's 4 GiB memory at batch 4) becomes a row that says so. */
  const time = async (size: number, threads: number, label: string) => {
    try {
      runs.push({ batch: size, threads, label, ...(await timeStep(size)) });
    } catch (error) {
      failed.push({
        name: `training step, tiny baseline (batch ${size}, 256², ${label})`,
        value: "failed",
        note: String(error instanceof Error ? error.message : error).split("\n")[0] ?? "",
      });
    }
  };
  const pureLabel = "pure wasm (1 thread: tfjs-wasm has no threads under Deno)";
  // batch 4 first, on a fresh heap: its ≈ 4.3 GB peak is close to WASM's 4 GiB memory
  for (const size of [4, 2]) {
    if (blas !== undefined) {
      const threads = blas.threads();
      try {
        for (const n of [1, 2]) {
          blas.setThreads(n);
          setPlanningThreads(n);
          await time(size, n, `wasm + OpenBLAS matmul/conv and loss planning on ${n} ${n > 1 ? "threads" : "thread"}`);
        }
      } finally {
        setPlanningThreads(1);
        if (threads !== undefined) blas.setThreads(threads);
      }
    }
    useBlas(undefined);
    try {
      await time(size, 1, pureLabel);
    } finally {
      useBlas(blas);
    }
  }
  const peers = await torchStepPeer([2, 4]);
  const peer = (batch: number, threads: number) => peers.find((p) => p.batch === batch && p.threads === threads);
  const ratio = (median: number, row: PeerRow | undefined): string =>
    row?.seconds === undefined ? "n/a" : `${(median / 1000 / row.seconds).toFixed(2)}×`;
  // the same architecture and shapes on every path and in the peer: the same FLOPs. A kernel that
  // calls other kernels (pure WASM's conv gradients run convolutions) shows up twice in a profile,
  // so the smallest count over the paths is the one that counts each product once.
  const flopsOf = (batch: number) => Math.min(...runs.filter((r) => r.batch === batch).map((r) => r.flops));
  const rate = (batch: number, seconds: number) => `${(flopsOf(batch) / seconds / 1e9).toFixed(1)} GFLOP/s`;
  const pure = (r: Run) => (r.label.startsWith("pure") ? 1 : 0);
  runs.sort((a, b) => a.batch - b.batch || pure(a) - pure(b) || a.threads - b.threads);
  return [
    ...failed,
    ...runs.map((r) => ({
      name: `training step, tiny baseline (batch ${r.batch}, 256², ${r.label})`,
      value: `${(r.median / 1000).toFixed(2)} s`,
      note:
        `median of 5 after 3 warm-ups; ${(r.flops / 1e9).toFixed(1)} GFLOP of products and convolutions, ${
          rate(r.batch, r.median / 1000)
        }; peak ${(r.peakBytes / 1e9).toFixed(2)} GB of tensors; top kernels: ${r.top}; ` +
        `${ratio(r.median, peer(r.batch, 1))} the PyTorch 1-thread step and ${
          ratio(r.median, peer(r.batch, 2))
        } the 2-thread step of batch ${r.batch} measured below` +
        (r.label.startsWith("pure") ? "" : `; matmul: ${backend.matmul.replace(/, \d+ threads/, "")}`),
    })),
    ...peers.map((p) =>
      p.seconds === undefined || p.batch === undefined ? p : { ...p, note: `${p.note}; ${rate(p.batch, p.seconds)}` }
    ),
  ];
};
