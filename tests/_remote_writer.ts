/**
 * The pipeline of tests/remote_cache_test.ts, and (run as a script) its crashing writer:
 * `deno run -A tests/_remote_writer.ts DIR URL` runs the chain against the local cache DIR in front
 * of the remote cache URL, and SIGKILLs itself the moment it is about to upload its first manifest:
 * the payload files of that entry are on the server, its manifest is not.
 */
import { Effect, Layer } from "effect";
import { Pipeline, Progress, RemoteStore, Runner } from "../mod.ts";
import { Runs, testStages } from "./_helpers.ts";

/** numbers → scaled → total → parity, each stage counting its runs in `runs`. */
export const remoteChain = (runs: Runs, factor = 2) => {
  const s = testStages(runs);
  return Pipeline.empty
    .node("numbers", s.numbers, { config: { n: 5 } })
    .node("scaled", s.scale, { inputs: { values: "numbers" }, config: { factor } })
    .node("total", s.sum, { inputs: { values: "scaled" } })
    .node("parity", s.parity, { inputs: { value: "total" } });
};

if (import.meta.main) {
  const [dir, url] = Deno.args as [string, string];
  const dyingFetch: typeof fetch = (input, init) => {
    const target = input instanceof Request ? input.url : String(input);
    if (init?.method === "PUT" && target.includes("/ac/")) Deno.kill(Deno.pid, "SIGKILL");
    return fetch(input, init);
  };
  await Effect.runPromise(
    Runner.run(remoteChain(new Runs()), ["parity"]).pipe(
      Effect.provide(Layer.mergeAll(RemoteStore.layer(dir, url, { fetch: dyingFetch }), Progress.silent)),
    ),
  );
  console.log("the writer was not killed");
}
