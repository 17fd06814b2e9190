/**
 * Model benchmark (run by `deno task bench`): one AdamW training step of the `tiny` baseline and of
 * the `conv` preset (its convolutional encoder and dense supervision; issue #17) (batches of 2 and
 * 4, 256² synthetic tiles, 4,096 loss points) on the WASM backend with our kernels, median of
 * 5 after 3 warm-ups, and where the time goes (the five most expensive kernels of one step). Where
 * the native BLAS loads, the step is timed with matrix products on OpenBLAS and the loss's planning
 * on 1 and 2 threads (planning's second thread is a worker, plan_pool.ts), and on pure WASM (one
 * thread: tfjs-wasm has no threads under Deno); the PyTorch peer of the same architecture (per
 * preset) runs in the same call.
 */
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { initBackend } from "../stages/backend/tf.ts";
import { activeBlas, useBlas } from "../stages/backend/kernels/batch_matmul.ts";
import { syntheticSample } from "../stages/data/synthetic.ts";
import { initModel, MODEL_PRESETS } from "../stages/model/model.ts";
import { parameterList } from "../stages/model/layers.ts";
import { type PeerPreset, type PeerRow, torchStepPeer } from "./torch_peer.ts";
import { setPlanningThreads } from "../stages/model/plan_pool.ts";
import { defaultTrainOptions, disposeBatch, modelBatch, trainStep } from "../stages/model/train_step.ts";
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
 * The benched presets in the table's order, and their rows' titles. They are timed in the reverse
 * order: the conv preset's batch-4 step has the larger peak (its encoder's stride-2 and stride-4
 * activations), so it runs first, on a fresh heap.
 */
const PRESETS: ReadonlyArray<{ readonly preset: PeerPreset; readonly title: string }> = [
  { preset: "tiny", title: "tiny baseline" },
  { preset: "conv", title: "conv preset" },
];

const stepName = (title: string, batch: number, label: string) =>
  `training step, ${title} (batch ${batch}, 256², ${label})`;

interface Timing {
  readonly median: number;
  readonly peakBytes: number;
  readonly top: string;
  readonly flops: number;
  /** the model's parameter count (initModel's tensors) */
  readonly params: number;
}

/**
 * Median of 5 timed steps after 3 warm-ups (V8 compiles the planning worker's code during its first
 * jobs), the five most expensive kernels and the FLOPs of one more step; with dense supervision
 * (`conv`), the batch carries its targets at the mask stride, as training builds them.
 */
const timeStep = async (preset: PeerPreset, size: number): Promise<Timing> => {
  const config = MODEL_PRESETS[preset];
  const params = initModel(config, 5, 1);
  const count = parameterList(params).reduce((n, t) => n + t.size, 0);
  const batch = modelBatch(config, 5, Array.from({ length: size }, (_, i) => syntheticSample(1, i)));
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
  return { median: times.sort((a, b) => a - b)[2] as number, peakBytes: profile.peakBytes, top, flops, params: count };
};

interface Run extends Timing {
  readonly preset: PeerPreset;
  readonly title: string;
  readonly batch: number;
  readonly threads: number;
  readonly label: string;
}

export const modelBench = async (): Promise<Row[]> => {
  const backend = await Effect.runPromise(initBackend("wasm"));
  const blas = activeBlas();
  const runs: Run[] = [], failed: Row[] = [];
  /** Times one configuration; a failure (WASM's 4 GiB memory at batch 4) becomes a row that says so. */
  const time = async (preset: PeerPreset, title: string, size: number, threads: number, label: string) => {
    try {
      runs.push({ preset, title, batch: size, threads, label, ...(await timeStep(preset, size)) });
    } catch (error) {
      failed.push({
        name: stepName(title, size, label),
        value: "failed",
        note: String(error instanceof Error ? error.message : error).split("\n")[0] ?? "",
      });
    }
  };
  const pureLabel = "pure wasm (1 thread: tfjs-wasm has no threads under Deno)";
  // batch 4 first, on a fresh heap: its ≈ 4.2 GB peak (tiny) is close to WASM's 4 GiB memory
  for (const size of [4, 2]) {
    for (const { preset, title } of [...PRESETS].reverse()) {
      if (blas !== undefined) {
        const threads = blas.threads();
        try {
          for (const n of [1, 2]) {
            blas.setThreads(n);
            setPlanningThreads(n);
            const label = `wasm + OpenBLAS matmul/conv and loss planning on ${n} ${n > 1 ? "threads" : "thread"}`;
            await time(preset, title, size, n, label);
          }
        } finally {
          setPlanningThreads(1);
          if (threads !== undefined) blas.setThreads(threads);
        }
      }
      useBlas(undefined);
      try {
        await time(preset, title, size, 1, pureLabel);
      } finally {
        useBlas(blas);
      }
    }
  }
  const peers: PeerRow[] = [];
  for (const { preset } of PRESETS) peers.push(...(await torchStepPeer([2, 4], preset)));
  const peer = (preset: PeerPreset, batch: number, threads: number) =>
    peers.find((p) => p.preset === preset && p.batch === batch && p.threads === threads);
  const ratio = (median: number, row: PeerRow | undefined): string =>
    row?.seconds === undefined ? "n/a" : `${(median / 1000 / row.seconds).toFixed(2)}×`;
  // the same architecture and shapes on every path and in the peer: the same FLOPs. A kernel that
  // calls other kernels (pure WASM's conv gradients run convolutions) shows up twice in a profile,
  // so the smallest count over the paths is the one that counts each product once.
  const flopsOf = (preset: PeerPreset, batch: number) =>
    Math.min(...runs.filter((r) => r.preset === preset && r.batch === batch).map((r) => r.flops));
  const rate = (preset: PeerPreset, batch: number, seconds: number) => {
    const flops = flopsOf(preset, batch);
    return Number.isFinite(flops) ? `${(flops / seconds / 1e9).toFixed(1)} GFLOP/s` : "no FLOP count (our runs failed)";
  };
  const pure = (r: Run) => (r.label.startsWith("pure") ? 1 : 0);
  const order = (preset: PeerPreset) => PRESETS.findIndex((p) => p.preset === preset);
  runs.sort((a, b) =>
    order(a.preset) - order(b.preset) || a.batch - b.batch || pure(a) - pure(b) || a.threads - b.threads
  );
  return [
    ...failed,
    ...runs.map((r) => ({
      name: stepName(r.title, r.batch, r.label),
      value: `${(r.median / 1000).toFixed(2)} s`,
      note:
        `median of 5 after 3 warm-ups; ${r.params.toLocaleString("en-US")} parameters; ${
          (r.flops / 1e9).toFixed(1)
        } GFLOP of products and convolutions, ${rate(r.preset, r.batch, r.median / 1000)}; peak ${
          (r.peakBytes / 1e9).toFixed(2)
        } GB of tensors; top kernels: ${r.top}; ` +
        `${ratio(r.median, peer(r.preset, r.batch, 1))} the PyTorch 1-thread step and ${
          ratio(r.median, peer(r.preset, r.batch, 2))
        } the 2-thread step of batch ${r.batch} measured below` +
        (r.label.startsWith("pure") ? "" : `; matmul: ${backend.matmul.replace(/, \d+ threads/, "")}`),
    })),
    ...peers.map((p) =>
      p.seconds === undefined || p.batch === undefined
        ? p
        : { ...p, note: `${p.note}; ${rate(p.preset, p.batch, p.seconds)}` }
    ),
  ];
};
