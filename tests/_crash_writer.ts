/**
 * Child process of crash_test.ts: writes large cache entries in a loop until it is killed.
 * Usage: deno run -A tests/_crash_writer.ts CACHE_DIR MEGABYTES [ROUNDS]
 * Each round runs a pipeline of four nodes whose seeds are new, so every round writes new entries.
 */
import { Effect, Layer, Schema } from "effect";
import { FileStore, Pipeline, Progress, Runner, safetensors, Stage, tensor, type TensorFile } from "../mod.ts";

/** A pseudo-random float tensor of `megabytes` MB from a seed. */
export const bigTensor = Stage.make({
  name: "t.bigTensor",
  version: 1,
  config: Schema.Struct({ seed: Schema.Int, megabytes: Schema.Number }),
  inputs: {},
  output: safetensors,
  run: (_, { seed, megabytes }) =>
    Effect.sync(() => {
      const data = new Float32Array(Math.round((megabytes * 1e6) / 4));
      let s = seed >>> 0;
      for (let i = 0; i < data.length; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        data[i] = s / 4294967296;
      }
      return { tensors: { x: tensor("F32", [data.length], data) } };
    }),
});

export const crashPipeline = (round: number, megabytes: number) => {
  let p = Pipeline.dynamic<TensorFile>();
  for (let i = 0; i < 4; i++) p = p.node(`big${i}`, bigTensor, { config: { seed: round * 10 + i, megabytes } });
  return p;
};

if (import.meta.main) {
  const [dir, mb, rounds] = [Deno.args[0] as string, Number(Deno.args[1] ?? 8), Number(Deno.args[2] ?? Infinity)];
  const base = Math.floor(Math.random() * 1e6);
  for (let r = 0; r < rounds; r++) {
    const p = crashPipeline(base + r, mb);
    await Effect.runPromise(
      Runner.run(p, ["big0", "big1", "big2", "big3"], { concurrency: 2 }).pipe(
        Effect.provide(Layer.mergeAll(FileStore.layer(dir), Progress.silent)),
      ),
    );
    console.log(`round ${r} done`);
  }
}
