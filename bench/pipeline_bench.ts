/**
 * Pipeline framework benchmarks (run by `deno task bench`):
 *  - a fully cached 1,000-node pipeline: wall time of explain + run (all hits, only the target
 *    loaded), i.e. the framework's own overhead per node; peer: the same chain memoised with
 *    Python's joblib.Memory (bench/joblib_chain.py, Debian python3-joblib), when installed;
 *  - the README example pipeline: cold run vs fully cached rerun (ratio).
 */
import { Effect, Schema } from "effect";
import { FileStore, json, Pipeline, Progress, Runner, Stage, type Store } from "../mod.ts";
import { thresholdPipeline } from "../tests/examples/threshold_pipeline.ts";
import type { Row } from "./evaluation_bench.ts";

const Num = json(Schema.Number);
const add = Stage.make({
  name: "bench.add",
  version: 1,
  config: Schema.Struct({ id: Schema.Int }),
  inputs: { a: Num, b: Num },
  output: Num,
  run: ({ a, b }, { id }) => Effect.succeed((a + b + id) % 1_000_003),
});
const seed = Stage.make({
  name: "bench.seed",
  version: 1,
  config: Schema.Struct({ value: Schema.Number }),
  inputs: {},
  output: Num,
  run: (_, { value }) => Effect.succeed(value),
});

/** n nodes: two seeds, then each node adds the two nodes before it (a long dependency chain). */
const widePipeline = (n: number) => {
  let p = Pipeline.dynamic<number>().node("n0", seed, { config: { value: 1 } }).node("n1", seed, {
    config: { value: 2 },
  });
  for (let i = 2; i < n; i++) {
    p = p.node(`n${i}`, add, { inputs: { a: `n${i - 1}`, b: `n${i - 2}` }, config: { id: i } });
  }
  return p;
};

const time = async <A>(f: () => Promise<A>): Promise<[number, A]> => {
  const t0 = performance.now();
  const a = await f();
  return [performance.now() - t0, a];
};

/** The pipeline rows; `results` receives the raw numbers. */
export const pipelineBench = async (dir: string, results: Record<string, number>): Promise<Row[]> => {
  const rows: Row[] = [];
  // 1,000-node cached overhead
  const n = 1000;
  const big = widePipeline(n);
  const target = [`n${n - 1}`];
  const inStore = <A, E>(e: Effect.Effect<A, E, Store | Progress>) =>
    Effect.runPromise(e.pipe(Effect.provide(FileStore.layer(`${dir}/big`)), Effect.provide(Progress.silent)));
  const [coldMs] = await time(() => inStore(Runner.run(big, target, { concurrency: 2 })));
  const samples: number[] = [];
  let explainMs = 0, runMs = 0;
  for (let rep = 0; rep < 5; rep++) {
    const [e] = await time(() => inStore(Runner.explain(big, target)));
    const [r, out] = await time(() => inStore(Runner.run(big, target, { concurrency: 2 })));
    if (out.report.some((s) => s.status !== "hit")) throw new Error("bench: the cached run was not all hits");
    samples.push(e + r);
    explainMs += e / 5;
    runMs += r / 5;
  }
  const cached = samples.sort((a, b) => a - b)[2] as number;
  results.bigColdMs = coldMs;
  results.bigCachedMedianMs = cached;
  rows.push({
    name: `${n}-node pipeline, cold run (computes all)`,
    value: `${coldMs.toFixed(0)} ms`,
    note: "file store, 2 stages at once",
  });
  rows.push({
    name: `${n}-node pipeline, fully cached: explain + run`,
    value: `${cached.toFixed(0)} ms`,
    note: `median of 5; explain ${explainMs.toFixed(0)} ms + run ${runMs.toFixed(0)} ms (means); ${
      (cached / n * 1000).toFixed(0)
    } µs/node`,
  });

  // peer: joblib.Memory on the same chain, same machine, same run
  const peer = await new Deno.Command("/usr/bin/python3", {
    args: [new URL("../bench/joblib_chain.py", import.meta.url).pathname, `${dir}/joblib`, String(n)],
    stdout: "piped",
    stderr: "piped",
  }).output().catch(() => undefined);
  if (peer?.code === 0) {
    const p = JSON.parse(new TextDecoder().decode(peer.stdout)) as { coldMs: number; cachedMedianMs: number };
    results.joblibColdMs = p.coldMs;
    results.joblibCachedMedianMs = p.cachedMedianMs;
    rows.push({
      name: `peer: joblib.Memory, same ${n}-node chain, fully cached`,
      value: `${p.cachedMedianMs.toFixed(0)} ms`,
      note: `median of 5 (cold ${p.coldMs.toFixed(0)} ms); ivaan explain+run / joblib = ${
        (cached / p.cachedMedianMs).toFixed(2)
      }, run only / joblib = ${(runMs / p.cachedMedianMs).toFixed(2)}`,
    });
  } else {
    rows.push({
      name: "peer: joblib.Memory",
      value: "not run",
      note: "needs /usr/bin/python3 with Debian python3-joblib",
    });
  }

  // example pipeline: cold vs cached
  const example = thresholdPipeline(12);
  const inExample = <A, E>(e: Effect.Effect<A, E, Store | Progress>) =>
    Effect.runPromise(e.pipe(Effect.provide(FileStore.layer(`${dir}/example`)), Effect.provide(Progress.silent)));
  const [exCold] = await time(() => inExample(Runner.run(example, ["foreground"])));
  const exCachedSamples: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    exCachedSamples.push((await time(() => inExample(Runner.run(example, ["foreground"]))))[0]);
  }
  const exCached = exCachedSamples.sort((a, b) => a - b)[2] as number;
  results.exampleColdMs = exCold;
  results.exampleCachedMs = exCached;
  rows.push({
    name: "example pipeline, cold",
    value: `${exCold.toFixed(0)} ms`,
    note: "tests/examples/threshold_pipeline.ts",
  });
  rows.push({
    name: "example pipeline, cached",
    value: `${exCached.toFixed(1)} ms`,
    note: `median of 5; cold/cached = ${(exCold / exCached).toFixed(0)}×`,
  });
  return rows;
};
