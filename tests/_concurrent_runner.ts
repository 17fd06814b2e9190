/**
 * Child process of concurrency_test.ts: runs a pipeline of slow stages against CACHE_DIR and
 * prints `{ outputs, report }` as JSON. Usage: deno run -A tests/_concurrent_runner.ts CACHE_DIR
 */
import { Effect, Layer, Schema } from "effect";
import { FileStore, json, Pipeline, Progress, Runner, Stage } from "../mod.ts";

const Num = json(Schema.Number);
const slowConst = Stage.make({
  name: "t.slowConst",
  version: 1,
  config: Schema.Struct({ value: Schema.Number, ms: Schema.Number }),
  inputs: {},
  output: Num,
  run: (_, { value, ms }) => Effect.as(Effect.sleep(ms), value),
});
const slowAdd = Stage.make({
  name: "t.slowAdd",
  version: 1,
  config: Schema.Struct({ ms: Schema.Number }),
  inputs: { a: Num, b: Num },
  output: Num,
  run: ({ a, b }, { ms }) => Effect.as(Effect.sleep(ms), a + b),
});

export const concurrentPipeline = Pipeline.empty
  .node("a", slowConst, { config: { value: 1, ms: 300 } })
  .node("b", slowConst, { config: { value: 2, ms: 300 } })
  .node("c", slowConst, { config: { value: 3, ms: 100 } })
  .node("ab", slowAdd, { inputs: { a: "a", b: "b" }, config: { ms: 300 } })
  .node("abc", slowAdd, { inputs: { a: "ab", b: "c" }, config: { ms: 200 } });

if (import.meta.main) {
  const result = await Effect.runPromise(
    Runner.run(concurrentPipeline, ["abc"], { concurrency: 2 }).pipe(
      Effect.provide(Layer.mergeAll(FileStore.layer(Deno.args[0] as string), Progress.silent)),
    ),
  );
  console.log(JSON.stringify(result));
}
