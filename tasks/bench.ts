/**
 * `deno task bench`: benchmarks (never timed tests). Prints a Markdown table; `--json FILE` also
 * writes the raw numbers. Sections: `pipeline`, `hungarian`, `evaluation`, `data`, `attributes`, `model`; `--only NAME`
 * runs one, `--images N` sets the PanNuke image/tile count of `evaluation` and `data` (default
 * 2,656, one fold). Peers (joblib, scipy, the numpy reference) are measured in the same run when
 * python3 has them. The `data` section writes a 12 GB float64 fold to a temporary folder.
 */
import { hungarianBench, pannukeBench, type Row } from "../bench/evaluation_bench.ts";
import { pipelineBench } from "../bench/pipeline_bench.ts";
import { dataBench } from "../bench/data_bench.ts";
import { featuresBench } from "../bench/features_bench.ts";
import { attributeChainBench } from "../bench/attributes_bench.ts";
import { modelBench } from "../bench/model_bench.ts";

const flag = (name: string) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};

const main = async () => {
  const only = flag("only");
  const images = Number(flag("images") ?? 2656);
  if (!Number.isSafeInteger(images) || images < 1) {
    throw new Error(`--images: expected a positive integer, found ${flag("images")}`);
  }
  const rows: Row[] = [];
  const results: Record<string, number> = {};
  const dir = await Deno.makeTempDir({ prefix: "ivaan-bench-" });
  try {
    if (only === undefined || only === "pipeline") rows.push(...(await pipelineBench(dir, results)));
    if (only === undefined || only === "hungarian") rows.push(...(await hungarianBench(dir)));
    if (only === undefined || only === "evaluation") rows.push(...(await pannukeBench(dir, images)));
    if (only === undefined || only === "data") rows.push(...(await dataBench(`${dir}/data`, images)));
    if (only === undefined || only === "attributes") {
      rows.push(...(await featuresBench()), ...(await attributeChainBench(dir)));
    }
    if (only === undefined || only === "model") rows.push(...(await modelBench()));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  console.log(`| benchmark | result | note |\n|---|---|---|`);
  for (const r of rows) console.log(`| ${r.name} | ${r.value} | ${r.note} |`);
  console.log(`\n${navigator.hardwareConcurrency} CPUs, Deno ${Deno.version.deno}, ${new Date().toISOString()}`);
  const out = flag("json");
  if (out !== undefined) await Deno.writeTextFile(out, JSON.stringify({ rows, results }, null, 2) + "\n");
};

if (import.meta.main) await main();
