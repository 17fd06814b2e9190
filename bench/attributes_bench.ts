/**
 * Attribute-chain benchmark (run by `deno task bench`): the whole chain (features → selection →
 * bins → words → prompts) on CoNSeP Train, cold (empty cache) and fully cached (a rerun that loads
 * only the requested outputs). Target ratio ≥ 100×. Skipped with a note without ../shared/data.
 */
import { Effect, Layer } from "effect";
import { FileStore, Progress, Runner } from "../mod.ts";
import { attributePipeline } from "../tasks/attributes.ts";
import type { Row } from "./evaluation_bench.ts";

const CONSEP = new URL("../../shared/data/consep/Train", import.meta.url).pathname;

export const attributeChainBench = async (dir: string): Promise<Row[]> => {
  if (!(await Deno.stat(CONSEP).then(() => true, () => false))) {
    return [{ name: "attribute chain on CoNSeP Train", value: "skipped", note: `${CONSEP} is absent` }];
  }
  const pipeline = attributePipeline({ kind: "consep", path: CONSEP, seed: 0, tiles: 0, merge: true }, {
    seed: 0,
    criterion: "mdlp",
    method: "entropy",
  });
  const run = () =>
    Effect.runPromise(
      Runner.run(pipeline, ["words"]).pipe(
        Effect.provide(Layer.mergeAll(FileStore.layer(`${dir}/attributes-cache`), Progress.silent)),
      ),
    );
  const t0 = performance.now();
  await run();
  const cold = performance.now() - t0;
  const cached: number[] = [];
  for (let k = 0; k < 5; k++) {
    const t = performance.now();
    const { report } = await run();
    cached.push(performance.now() - t);
    if (report.some((s) => s.status === "computed")) {
      throw new Error("bench: the cached attribute chain recomputed a node");
    }
  }
  const median = cached.sort((a, b) => a - b)[2] as number;
  return [{
    name: "attribute chain on CoNSeP Train (15,555 nuclei): cold vs cached",
    value: `${(cold / 1000).toFixed(2)} s vs ${median.toFixed(1)} ms`,
    note: `ratio ${
      (cold / median).toFixed(0)
    }× (target ≥ 100×); cached = median of 5 reruns (fingerprint check of the 54 source files, 4 manifests and the words JSON)`,
  }];
};
