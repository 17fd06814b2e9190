/**
 * `deno task ablate`: the paper's ablation as ONE cached DAG — every row (and seed) trained,
 * its held-out split predicted and scored, the table, its JSON and a chart written.
 *
 *   deno task ablate [--data SOURCE] [--rows baseline,vl_fixed,…] [--seeds N] [--steps N]
 *                    [--preset tiny] [--batch B] [--set ROW.KEY=VALUE …] [--backend wasm] [--threads N]
 *                    [--out DIR] [--explain] [--cache DIR] [--remote-cache URL]
 *
 *   dataset ─┬─ features ─ selection ─┬─ bins.quantile ─ words.quantile ─┐
 *            │                        └─ bins.entropy ── words.entropy ──┤ (rows with attribute prompts)
 *            └──────────────── train.ROW.sSEED ◄─────────────────────────┘
 *                                 └─ heldout.ROW.sSEED ─ scores.ROW.sSEED
 *
 * Rows share the dataset and the attribute chain through the cache; each row's training is keyed by
 * its own config and seed, so changing one row (`--set vl_fixed.steps=400`) retrains that row only,
 * as `--explain` shows. Writes OUT/ablation.md, OUT/ablation.json and OUT/ablation.png.
 */
import { type ModelPreset, PRESET_NAMES } from "../stages/model/model.ts";
import { defaultPreset, defaultSchedule } from "../stages/model/recipe.ts";
import * as NodeServices from "@effect/platform-node/NodeServices";
import { Console, Effect, Layer, Option } from "effect";
import { Command, Flag } from "effect/cli";
import sharp from "sharp";
import { Pipeline, Progress, Runner, Source } from "../mod.ts";
import type { StageError, StageRequirements } from "../pipeline/stage.ts";
import {
  attributeBins,
  attributeSelection,
  attributeWords,
  maskFeaturesStage,
  trainingNuclei,
} from "../stages/attributes/stages.ts";
import { BACKENDS, layer as backendLayer, TfBackend } from "../stages/backend/tf.ts";
import { checkSourcePath, datasetSource, parseSource, SOURCE_HELP } from "../stages/data/source.ts";
import { ablationChartSvg, ablationMarkdown, type AblationRun, summarise } from "../stages/model/ablation.ts";
import { heldoutPredictions } from "../stages/model/heldout.ts";
import { heldoutScores, type Scores } from "../stages/model/scores.ts";
import {
  trainBaseline,
  trainFrozenText,
  trainFrozenTextWithAttributes,
  TrainingCheckpoints,
  trainWithAttributes,
} from "../stages/model/stages.ts";
import { frozenTextStage } from "../stages/text/frozen.ts";
import { ABLATION_ROWS, type AblationRow, attributeBinning, defaultLearningRate } from "../stages/model/train.ts";
import {
  cacheFlag,
  centerWeightFlag,
  denseWeightFlag,
  lossWeightsOf,
  mergeFlag,
  noteMissingBlas,
  organPromptsFlag,
  queueFlag,
  queueUrl,
  remoteCacheFlag,
  runTask,
  storeLayer,
  textEncoderFlag,
  textEncoderFolder,
  threadsFlag,
  tilesFlag,
  UsageError,
  withPlanningThreads,
  writeAtomic,
} from "./_main.ts";

/** What `--set ROW.KEY=VALUE` may change, and how the value reads. */
const SETTABLE = { steps: "steps", batch: "batch", lr: "learningRate", minutes: "minutes" } as const;

/** One row's training config (the `model.train` schema's encoded form). */
interface RowConfig {
  preset: ModelPreset;
  steps: number;
  batch: number;
  seed: number;
  learningRate: number;
  stem: boolean;
  schedule: "step" | "cosine";
  minutes?: number;
  /** the recipe's dense and centre loss weights (recipe.ts), where not 1 */
  weightDense?: number;
  weightCenter?: number;
  row?: AblationRow;
}

/** `--set` values as (row, field, value), checked. */
const parseSets = (sets: ReadonlyArray<string>, rows: ReadonlyArray<string>) => {
  const out: Array<{ row: string; field: (typeof SETTABLE)[keyof typeof SETTABLE]; value: number }> = [];
  for (const s of sets) {
    const m = /^([a-z_]+)\.([a-z]+)=(.+)$/.exec(s);
    const key = m?.[2] as keyof typeof SETTABLE | undefined;
    const value = Number(m?.[3]);
    if (m === null || key === undefined || !(key in SETTABLE) || !Number.isFinite(value) || value <= 0) {
      return { error: `--set ${s}: expected ROW.KEY=VALUE with KEY one of ${Object.keys(SETTABLE).join(", ")}` };
    }
    if (!rows.includes(m[1] as string)) return { error: `--set ${s}: row '${m[1]}' is not among --rows` };
    if (key !== "lr" && key !== "minutes" && !Number.isInteger(value)) {
      return { error: `--set ${s}: ${key} must be an integer` };
    }
    out.push({ row: m[1] as string, field: SETTABLE[key], value });
  }
  return { sets: out };
};

type Stages =
  | typeof frozenTextStage
  | typeof trainFrozenText
  | typeof trainFrozenTextWithAttributes
  | typeof maskFeaturesStage
  | typeof trainingNuclei
  | typeof attributeSelection
  | typeof attributeBins
  | typeof attributeWords
  | typeof trainBaseline
  | typeof trainWithAttributes
  | typeof heldoutPredictions
  | typeof heldoutScores;
/**
 * The DAG has generated node names, so its nodes are typed as a widened record (`name` keeps a
 * literal from narrowing it): outputs are read by name, and wiring is checked when it is built.
 */
type AblationPipeline = Pipeline<Record<string, never>, StageError<Stages>, StageRequirements<Stages>>;
const name = (n: string): string => n;

/** The flags of `deno task ablate`; a worker parses a job's arguments with them too (tasks/worker.ts). */
export const ablateFlags = {
  data: Flag.String("data").pipe(
    Flag.withDescription(`Training data: ${SOURCE_HELP} (default synthetic:0)`),
    Flag.withDefault("synthetic:0"),
  ),
  tiles: tilesFlag,
  merge: mergeFlag,
  rows: Flag.String("rows").pipe(
    Flag.withDescription(
      `Comma-separated rows of the paper's ablation (default all: ${ABLATION_ROWS.join(",")})`,
    ),
    Flag.withDefault(ABLATION_ROWS.join(",")),
  ),
  seeds: Flag.Int("seeds").pipe(
    Flag.withDescription("Seeds per row, 0 … N−1 (default 1; ≥ 3 to report a spread that means something)"),
    Flag.withDefault(1),
  ),
  steps: Flag.Int("steps").pipe(
    Flag.withDescription("Optimisation steps per row (default 200; with --minutes the most a row may take)"),
    Flag.optional,
  ),
  denseWeight: denseWeightFlag,
  centerWeight: centerWeightFlag,
  minutes: Flag.Finite("minutes").pipe(
    Flag.withDescription(
      "A wall-clock budget per training (as deno task train --minutes): steps planned from the measured step time",
    ),
    Flag.optional,
  ),
  preset: Flag.Literals("preset", PRESET_NAMES).pipe(
    Flag.withDescription("Model (default: tiny on synthetic data, conv on real data, as deno task train)"),
    Flag.optional,
  ),
  batch: Flag.Int("batch").pipe(Flag.withDescription("Tiles per step (default 2)"), Flag.withDefault(2)),
  set: Flag.String("set").pipe(
    Flag.withDescription(
      "Change one row's training: ROW.KEY=VALUE with KEY steps, batch, lr or minutes (repeatable), e.g. --set vl_fixed.steps=400",
    ),
    Flag.atLeast(0),
  ),
  organPrompts: organPromptsFlag,
  textEncoder: textEncoderFlag,
  backend: Flag.Literals("backend", BACKENDS).pipe(
    Flag.withDescription("tfjs backend (default wasm); a backend that cannot start is an error"),
    Flag.withDefault("wasm" as const),
  ),
  threads: threadsFlag,
  out: Flag.String("out").pipe(
    Flag.withDescription("Output folder (default runs/ablate)"),
    Flag.withDefault("runs/ablate"),
  ),
  explain: Flag.Boolean("explain").pipe(
    Flag.withDescription("Print the plan (which rows are cached, which would train, and why) and stop"),
    Flag.withDefault(false),
  ),
  cache: cacheFlag,
  remoteCache: remoteCacheFlag,
  queue: queueFlag,
} as const;
export type AblateFlags = Command.Command.Config.Infer<typeof ablateFlags>;

/**
 * The ablation's DAG from the flags (checked; a mistake is a UsageError): the pipeline, the score
 * node of each row and seed, the training nodes (what `--queue` hands to workers) and the services
 * its stages need besides the store and progress.
 */
export const buildAblation = (f: AblateFlags) =>
  Effect.gen(function* () {
    const fail = (message: string) => new UsageError({ message });
    const parsed = parseSource(f.data, { tiles: f.tiles, merge: f.merge });
    if ("error" in parsed) return yield* fail(parsed.error);
    const rows = f.rows.split(",").map((r) => r.trim()).filter((r) => r !== "");
    const unknown = rows.find((r) => !(ABLATION_ROWS as readonly string[]).includes(r));
    if (unknown !== undefined) {
      return yield* fail(
        `--rows: unknown row '${unknown}' (rows: ${ABLATION_ROWS.join(", ")})`,
      );
    }
    if (rows.length === 0 || new Set(rows).size !== rows.length) {
      return yield* fail("--rows: give each row once, at least one");
    }
    const minutes = Option.getOrUndefined(f.minutes);
    const steps = Option.getOrElse(f.steps, () => minutes === undefined ? 200 : 1_000_000);
    if (f.seeds < 1 || steps < 1 || f.batch < 1) {
      return yield* fail(`--seeds, --steps and --batch must be positive, found ${f.seeds}, ${steps}, ${f.batch}`);
    }
    if (minutes !== undefined && !(minutes > 0)) return yield* fail(`--minutes must be positive, found ${minutes}`);
    const preset = defaultPreset(parsed.ref.kind !== "synthetic", Option.getOrUndefined(f.preset));
    const schedule = defaultSchedule(preset);
    const weights = lossWeightsOf(preset, f.denseWeight, f.centerWeight);
    if ("error" in weights) return yield* fail(weights.error);
    const threads = Option.getOrUndefined(f.threads);
    if (threads !== undefined && threads < 1) return yield* fail(`--threads must be at least 1, found ${threads}`);
    const parsedSets = parseSets(f.set, rows);
    if ("error" in parsedSets) return yield* fail(parsedSets.error as string);
    yield* checkSourcePath(parsed.ref);

    const configOf = (row: AblationRow, seed: number): RowConfig => {
      const config: RowConfig = {
        preset,
        steps,
        batch: f.batch,
        seed,
        learningRate: defaultLearningRate(preset),
        stem: true,
        schedule: schedule === "cosine" ? "cosine" : "step",
        ...(minutes === undefined ? {} : { minutes }),
        ...(weights.dense === 1 ? {} : { weightDense: weights.dense }),
        ...(weights.center === 1 ? {} : { weightCenter: weights.center }),
        ...(row === "baseline" ? {} : { row }),
        ...(row !== "baseline" && f.organPrompts ? { organPrompts: true } : {}),
      };
      for (const s of parsedSets.sets ?? []) if (s.row === row) config[s.field] = s.value;
      return config;
    };
    let p: AblationPipeline = Pipeline.dynamic<never>().source(name("dataset"), datasetSource(parsed.ref));
    const binnings = [...new Set(rows.map((r) => attributeBinning(r as AblationRow)).filter((b) => b !== undefined))];
    if (binnings.length > 0) {
      p = p.node(name("features"), maskFeaturesStage, { inputs: { dataset: "dataset" } });
      // each seed has its own training split: selection and bins see only its nuclei
      for (let seed = 0; seed < f.seeds; seed++) {
        p = p.node(name(`training.s${seed}`), trainingNuclei, {
          inputs: { table: "features", dataset: "dataset" },
          config: { seed },
        }).node(name(`selection.s${seed}`), attributeSelection, { inputs: { table: `training.s${seed}` } });
        for (const method of binnings) {
          p = p.node(name(`bins.${method}.s${seed}`), attributeBins, {
            inputs: { table: `training.s${seed}`, selection: `selection.s${seed}` },
            config: { method },
          }).node(name(`words.${method}.s${seed}`), attributeWords, { inputs: { fit: `bins.${method}.s${seed}` } });
        }
      }
    }
    const textEncoder = Option.getOrUndefined(f.textEncoder);
    if (textEncoder !== undefined) {
      yield* textEncoderFolder(textEncoder);
      // one frozen encoding of every prompt, shared by every row with text
      p = p.source(name("clip"), Source.directory(textEncoder))
        .node(name("text"), frozenTextStage, { inputs: { dataset: "dataset", clip: "clip" } });
    }
    const targets: Array<{ row: AblationRow; seed: number; node: string }> = [];
    for (const row of rows as AblationRow[]) {
      for (let seed = 0; seed < f.seeds; seed++) {
        const id = `${row}.s${seed}`, config = configOf(row, seed), binning = attributeBinning(row);
        p = textEncoder !== undefined && row !== "baseline"
          ? binning === undefined
            ? p.node(`train.${id}`, trainFrozenText, { inputs: { dataset: "dataset", text: "text" }, config })
            : p.node(`train.${id}`, trainFrozenTextWithAttributes, {
              inputs: { dataset: "dataset", words: `words.${binning}.s${seed}`, text: "text" },
              config,
            })
          : binning === undefined
          ? p.node(`train.${id}`, trainBaseline, { inputs: { dataset: "dataset" }, config })
          : p.node(`train.${id}`, trainWithAttributes, {
            inputs: { dataset: "dataset", words: `words.${binning}.s${seed}` },
            config,
          });
        p = p.node(`heldout.${id}`, heldoutPredictions, {
          inputs: { dataset: "dataset", checkpoint: `train.${id}` },
          config,
        }).node(`scores.${id}`, heldoutScores, { inputs: { heldout: `heldout.${id}` } });
        targets.push({ row, seed, node: `scores.${id}` });
      }
    }
    const services = Layer.mergeAll(
      backendLayer(f.backend, threads === undefined ? {} : { threads }),
      TrainingCheckpoints.none,
    );
    return {
      pipeline: p,
      targets,
      trainings: targets.map((t) => t.node.replace(/^scores\./, "train.")),
      services,
      rows,
      preset,
      steps,
      minutes,
      sets: parsedSets.sets ?? [],
    };
  });

const ablate = Command.make(
  "ablate",
  ablateFlags,
  (f) =>
    withPlanningThreads(Option.getOrUndefined(f.threads))(Effect.gen(function* () {
      const fail = (message: string) => new UsageError({ message });
      const queue = yield* queueUrl(f);
      const { pipeline: p, targets, trainings, services, rows, preset, steps, minutes, sets } = yield* buildAblation(f);
      const layers = Layer.mergeAll(storeLayer(f), Progress.auto, services);
      const names = targets.map((t) => t.node);
      if (f.explain) {
        yield* Console.log(Runner.formatPlan(yield* Runner.explain(p, names).pipe(Effect.provide(layers))));
        return;
      }
      yield* noteMissingBlas(f.backend, "training");
      const started = performance.now();
      if (queue !== undefined) {
        // the trainings on the workers; below, the same run as without a queue finds them in the cache
        const { distribute } = yield* Effect.promise(() => import("../pipeline/queue/nodes.ts"));
        const { settingsFromEnv } = yield* Effect.promise(() => import("../pipeline/queue/queue.ts"));
        yield* distribute(queue, p, trainings, {
          task: "ablate",
          argv: Deno.args,
          settings: settingsFromEnv(),
          say: Console.error,
        }).pipe(Effect.provide(layers));
      }
      // one training at a time: each already uses both cores (native BLAS threads)
      const { outputs, backend } = yield* Effect.gen(function* () {
        const run = yield* Runner.run(p, names, { concurrency: 1 });
        return { ...run, backend: yield* TfBackend };
      }).pipe(Effect.provide(layers));
      const runs: AblationRun[] = targets.map((t) => ({
        row: t.row,
        seed: t.seed,
        scores: (outputs as Record<string, unknown>)[t.node] as Scores,
      }));
      const classes = Object.keys(runs[0]?.scores.classPQ ?? {});
      const summary = summarise(runs, rows, classes);
      const table = ablationMarkdown(summary, classes);
      const command = `deno task ablate ${Deno.args.join(" ")}`.trim();
      const markdown = [
        `# Ablation: ${f.data}`,
        "",
        `Preset ${preset}, ${minutes === undefined ? `${steps} steps` : `${minutes} min`} of batch ${f.batch} per row${
          sets.length > 0 ? ` (changed: ${f.set.join(", ")})` : ""
        }; seeds 0–${f.seeds - 1}; held-out split scored per row (mean ± sample sd over seeds).`,
        "",
        `Backend ${f.backend} (matrix products: ${backend.matmul}).`,
        "",
        table,
        "",
        `Command: \`${command}\``,
        "",
      ].join("\n");
      yield* Effect.tryPromise({
        try: () => Deno.mkdir(f.out, { recursive: true }),
        catch: (e) => fail(`cannot create ${f.out}: ${e instanceof Error ? e.message : e}`),
      });
      yield* writeAtomic(`${f.out}/ablation.md`, markdown);
      yield* writeAtomic(
        `${f.out}/ablation.json`,
        JSON.stringify(
          { command, backend: { name: f.backend, matmul: backend.matmul }, rows, runs, summary },
          null,
          1,
        ) +
          "\n",
      );
      const svg = ablationChartSvg(
        summary,
        `Ablation on ${f.data} (${preset}, ${minutes === undefined ? `${steps} steps` : `${minutes} min`})`,
      );
      const png = yield* Effect.tryPromise({
        try: () => sharp(new TextEncoder().encode(svg)).png().toBuffer(),
        catch: (e) => fail(`cannot render the chart: ${e instanceof Error ? e.message : e}`),
      });
      yield* writeAtomic(`${f.out}/ablation.png`, new Uint8Array(png));
      yield* Console.log(markdown);
      yield* Console.log(
        `wrote ${f.out}/ablation.md, ablation.json and ablation.png in ${
          ((performance.now() - started) / 1000).toFixed(0)
        } s`,
      );
    })),
).pipe(
  Command.withDescription(
    "Train, predict and score the rows of the paper's ablation in one cached pipeline. Example: deno task ablate --rows baseline,vl_fixed --seeds 3 --steps 300",
  ),
);

if (import.meta.main) {
  runTask(ablate.pipe(Command.run({ version: "0.1.0" }), Effect.provide(NodeServices.layer)));
}
