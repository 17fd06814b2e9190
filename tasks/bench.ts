/**
 * `deno task bench`: benchmarks (never timed tests). Prints a Markdown table; `--json FILE` also
 * writes the raw numbers. Sections: `pipeline`, `hungarian`, `evaluation`, `data`, `attributes`, `model`, `slide`
 * (whole-slide prediction of a synthetic pyramidal TIFF, `--slide-side N` pixels square), and `webgpu`
 * (only when named: it needs a WebGPU adapter); `--only NAME`
 * runs one, `--images N` sets the PanNuke image/tile count of `evaluation` and `data` (default
 * 2,656, one fold). Peers (joblib, scipy, the numpy reference) are measured in the same run when
 * python3 has them. The `data` section writes a 12 GB float64 fold to a temporary folder.
 */
import * as NodeServices from "@effect/platform-node/NodeServices";
import { Console, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { runTask, UsageError, writeAtomic } from "./_main.ts";
import { hungarianBench, pannukeBench, type Row } from "../bench/evaluation_bench.ts";
import { pipelineBench } from "../bench/pipeline_bench.ts";
import { dataBench } from "../bench/data_bench.ts";
import { featuresBench } from "../bench/features_bench.ts";
import { attributeChainBench } from "../bench/attributes_bench.ts";
import { modelBench } from "../bench/model_bench.ts";
import { webgpuBench } from "../bench/webgpu_bench.ts";
import { SLIDE_PRESETS, slideBench } from "../bench/slide_bench.ts";

const SECTIONS = ["pipeline", "hungarian", "evaluation", "data", "attributes", "model", "slide", "webgpu"] as const;

const bench = Command.make("bench", {
  only: Flag.Literals("only", SECTIONS).pipe(
    Flag.withDescription(
      `Run one section: ${
        SECTIONS.join(", ")
      } (default: all but webgpu, which needs a WebGPU adapter and runs only when named)`,
    ),
    Flag.optional,
  ),
  images: Flag.Int("images").pipe(
    Flag.withDescription("PanNuke images/tiles of the evaluation and data sections (default 2,656, one fold)"),
    Flag.withDefault(2656),
  ),
  slideSide: Flag.Int("slide-side").pipe(
    Flag.withDescription("Side in pixels of the slide section's synthetic slide at 0.25 µm/px (default 8,192)"),
    Flag.withDefault(8192),
  ),
  slidePreset: Flag.Literals("slide-preset", SLIDE_PRESETS).pipe(
    Flag.withDescription(`The slide section's one model preset: ${SLIDE_PRESETS.join(", ")} (default both)`),
    Flag.optional,
  ),
  slideCompression: Flag.Literals("slide-compression", ["jpeg", "none"] as const).pipe(
    Flag.withDescription(
      "The slide section's pyramid: jpeg (quality 90, as scanners write; default) or none (raw pixels: ≈ 4·side² " +
        "bytes, e.g. --slide-side 16384 for a 1 GB file)",
    ),
    Flag.withDefault("jpeg" as const),
  ),
  slideIslands: Flag.Finite("slide-islands").pipe(
    Flag.withDescription(
      "The slide's four tissue islands' size as a fraction of the default, in (0, 1] (default 1: 30–40 % tissue); " +
        "less tissue means fewer tiles to predict on a slide of the same size",
    ),
    Flag.withDefault(1),
  ),
  json: Flag.String("json").pipe(
    Flag.withDescription("Also write the raw numbers as JSON to this file"),
    Flag.optional,
  ),
}, (f) =>
  Effect.gen(function* () {
    if (f.images < 1) return yield* new UsageError({ message: `--images must be positive, found ${f.images}` });
    if (f.slideSide < 256) {
      return yield* new UsageError({ message: `--slide-side must be at least 256, found ${f.slideSide}` });
    }
    if (!(f.slideIslands > 0 && f.slideIslands <= 1)) {
      return yield* new UsageError({ message: `--slide-islands must be in (0, 1], found ${f.slideIslands}` });
    }
    const presets = Option.match(f.slidePreset, { onNone: () => SLIDE_PRESETS, onSome: (p) => [p] });
    const only = Option.getOrUndefined(f.only);
    const run = (section: (typeof SECTIONS)[number]) =>
      only === section || (only === undefined && section !== "webgpu");
    const { rows, results } = yield* Effect.promise(async () => {
      const rows: Row[] = [];
      const results: Record<string, number> = {};
      const dir = await Deno.makeTempDir({ prefix: "ivaan-bench-" });
      try {
        if (run("pipeline")) rows.push(...(await pipelineBench(dir, results)));
        if (run("hungarian")) rows.push(...(await hungarianBench(dir)));
        if (run("evaluation")) rows.push(...(await pannukeBench(dir, f.images)));
        if (run("data")) rows.push(...(await dataBench(`${dir}/data`, f.images)));
        if (run("attributes")) rows.push(...(await featuresBench()), ...(await attributeChainBench(dir)));
        if (run("model")) rows.push(...(await modelBench()));
        if (run("slide")) {
          const build = { compression: f.slideCompression, islands: f.slideIslands };
          rows.push(...(await slideBench(dir, f.slideSide, presets, results, build)));
        }
        if (run("webgpu")) rows.push(...(await webgpuBench()));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
      return { rows, results };
    });
    yield* Console.log(`| benchmark | result | note |\n|---|---|---|`);
    for (const r of rows) yield* Console.log(`| ${r.name} | ${r.value} | ${r.note} |`);
    yield* Console.log(
      `\n${navigator.hardwareConcurrency} CPUs, Deno ${Deno.version.deno}, ${new Date().toISOString()}`,
    );
    if (Option.isSome(f.json)) {
      yield* writeAtomic(f.json.value, JSON.stringify({ rows, results }, null, 2) + "\n");
      yield* Console.log(`wrote ${f.json.value}`);
    }
  })).pipe(Command.withDescription(
    "Benchmarks against the Python peers measured in the same run (a Markdown table on stdout). Example: deno task bench --only model --json bench.json",
  ));

if (import.meta.main) {
  runTask(bench.pipe(Command.run({ version: "0.1.0" }), Effect.provide(NodeServices.layer)));
}
