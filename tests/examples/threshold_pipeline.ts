/**
 * The README's example: a small pipeline composed from the stages in image_stages.ts. Run it
 * twice to see the cache at work (the second run is all hits and loads only the final output):
 *
 *   deno run -A tests/examples/threshold_pipeline.ts --cache /tmp/example-cache
 *   deno run -A tests/examples/threshold_pipeline.ts --cache /tmp/example-cache --passes 8
 *
 * `--passes` changes only the smoothing config: smoothing and everything after it recompute,
 * the image does not. `--explain` prints the plan and stops.
 */
import { Effect } from "effect";
import { FileStore, Pipeline, Progress, Runner } from "../../mod.ts";
import { blobImage, foreground, histogram, otsuThreshold, smooth } from "./image_stages.ts";

/** The example pipeline; `passes` is the smoothing config. */
export const thresholdPipeline = (passes: number, size = 384) =>
  Pipeline.empty
    .node("image", blobImage, { config: { seed: 7, size, blobs: 40 } })
    .node("smoothed", smooth, { inputs: { image: "image" }, config: { passes } })
    .node("histogram", histogram, { inputs: { image: "smoothed" } })
    .node("threshold", otsuThreshold, { inputs: { histogram: "histogram" } })
    .node("foreground", foreground, { inputs: { image: "smoothed", threshold: "threshold" } });

if (import.meta.main) {
  const flag = (name: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const pipeline = thresholdPipeline(Number(flag("passes") ?? 12));
  const program = Effect.gen(function* () {
    const plan = yield* Runner.explain(pipeline, ["foreground"]);
    console.log(Runner.formatPlan(plan));
    if (Deno.args.includes("--explain")) return;
    const started = performance.now();
    const { outputs, report } = yield* Runner.run(pipeline, ["foreground"]);
    console.log(
      `ran in ${(performance.now() - started).toFixed(0)} ms: ${report.map((s) => `${s.node}=${s.status}`).join(" ")}`,
    );
    console.log(`foreground: ${JSON.stringify(outputs.foreground)}`);
  });
  await Effect.runPromise(program.pipe(
    Effect.provide(FileStore.layer(flag("cache") ?? ".ivaan-cache")),
    Effect.provide(Progress.auto),
  ));
}
