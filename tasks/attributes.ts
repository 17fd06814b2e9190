/**
 * `deno task attributes`: attribute selection and supervised entropy binning (features spec Part B) on a table of
 * per-nucleus features.
 *
 *   deno task attributes report --data SOURCE [--out DIR] [--seed S] [--criterion mdlp|gain] [--method entropy|quantile]
 *   deno task attributes fit --input ROWS.csv [--bin selected|all|f1,f2] [--criterion mdlp|gain] [--min-leaf N]
 *                            [--folds K] [--seed S] [--summary] [--json OUT.json] [other Part B parameters]
 *
 * ROWS.csv: a header row with a `label` column and feature columns (the §A3 names; `--features` picks others).
 * Without `--json` the §B6 JSON goes to stdout (`--summary`: only the selected features and per binned feature
 * its thresholds and words); with `--json` the full JSON is written atomically and stdout gets a short summary.
 *
 * `root` and `fit` are exported so that more subcommands can join them; the command runs only as the main module.
 */
import * as NodeServices from "@effect/platform-node/NodeServices";
import { Console, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { readRowsCsv } from "../stages/attributes/csv.ts";
import {
  AttributeError,
  type AttributeFit,
  type BinChoice,
  DEFAULT_PARAMS,
  fitAttributes,
  fitSummary,
} from "../stages/attributes/fit.ts";
import {
  cacheFlag,
  mergeFlag,
  remoteCacheFlag,
  runTask,
  storeLayer,
  tilesFlag,
  UsageError,
  writeAtomic,
} from "./_main.ts";
import { Layer } from "effect";
import sharp from "sharp";
import { Pipeline, Progress, Runner } from "../mod.ts";
import { checkSourcePath, datasetSource, parseSource, SOURCE_HELP } from "../stages/data/source.ts";
import {
  attributeBins,
  attributeSelection,
  attributeWords,
  maskFeaturesStage,
  prompts,
} from "../stages/attributes/stages.ts";
import { attributeHistograms, reportMarkdown } from "../stages/attributes/report.ts";

/** The `attributes` command; subcommands are attached where it runs. */
export const root = Command.make("attributes").pipe(
  Command.withDescription(
    "Attribute selection (Cohen's d separation, Spearman de-duplication) and supervised entropy binning into words.",
  ),
);

const list = (text: string): string[] => text.split(",").map((s) => s.trim()).filter((s) => s !== "");

const binChoice = (text: string): BinChoice => (text === "selected" || text === "all" ? text : list(text));

/** Runs the fit; a parameter error names the flag (`min_leaf: …` → `--min-leaf: …`). */
const runFit = (...args: Parameters<typeof fitAttributes>): Effect.Effect<AttributeFit, UsageError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(fitAttributes(...args));
    } catch (e) {
      if (!(e instanceof AttributeError)) return Effect.die(e);
      const message = e.message.replace(/^([a-z_]+):/, (_, name: string) => `--${name.replaceAll("_", "-")}:`);
      return Effect.fail(new UsageError({ message }));
    }
  });

const fmt = (v: number) => String(Number(v.toPrecision(6)));

/** A few lines for a human: classes, selection, and per binned feature its cuts and words. */
const shortSummary = (fit: AttributeFit): string => {
  const classes = fit.classes.map((c, k) => `${c} ${fit.class_counts[k]}`).join(", ");
  const lines = [
    `${fit.n_samples} labelled rows, ${fit.classes.length} classes (${classes})`,
    `selected: ${fit.selection.selected.join(", ") || "(none)"}`,
  ];
  for (const [feature, b] of Object.entries(fit.binning)) {
    const cuts = b.thresholds.length === 0 ? "no stable threshold" : `thresholds ${b.thresholds.map(fmt).join(", ")}`;
    lines.push(`${feature} (${b.family}, ${b.direction}): ${cuts} → ${b.words.join(" | ")}`);
  }
  return lines.join("\n");
};

/** `attributes fit`: Part B on a CSV of labelled rows. */
export const fit = Command.make("fit", {
  input: Flag.String("input").pipe(
    Flag.withDescription("CSV with a header row, a 'label' column and feature columns (empty cell = missing)"),
  ),
  features: Flag.String("features").pipe(
    Flag.withDescription("Comma-separated feature columns, in canonical order (default: the §A3 names present)"),
    Flag.optional,
  ),
  bin: Flag.String("bin").pipe(
    Flag.withDescription("Features to bin: selected (default), all, or a comma-separated list"),
    Flag.withDefault("selected"),
  ),
  method: Flag.Literals("method", ["entropy", "quantile"]).pipe(
    Flag.withDescription("Cut finder: entropy (default, §B3) or quantile (equal-count bins, the ablation)"),
    Flag.withDefault("entropy" as const),
  ),
  intervals: Flag.Int("intervals").pipe(
    Flag.withDescription("--method quantile: number of equal-count intervals, 1-5 (default 5)"),
    Flag.withDefault(5),
  ),
  criterion: Flag.Literals("criterion", ["mdlp", "gain"]).pipe(
    Flag.withDescription("Split acceptance: mdlp (default) or gain"),
    Flag.withDefault(DEFAULT_PARAMS.criterion),
  ),
  minLeaf: Flag.Int("min-leaf").pipe(
    Flag.withDescription("Minimum samples each side of a cut (default max(5, ceil(n/100)) per fit)"),
    Flag.optional,
  ),
  folds: Flag.Int("folds").pipe(Flag.withDescription("K of the stability check (default 5)"), Flag.withDefault(5)),
  seed: Flag.Int("seed").pipe(Flag.withDescription("Fold assignment seed (default 0)"), Flag.withDefault(0)),
  rhoMax: Flag.Finite("rho-max").pipe(
    Flag.withDescription("Redundant if |Spearman rho| > this (default 0.7)"),
    Flag.withDefault(DEFAULT_PARAMS.rho_max),
  ),
  maxSelected: Flag.Int("max-selected").pipe(
    Flag.withDescription("Number of attributes selected (default 4)"),
    Flag.withDefault(DEFAULT_PARAMS.max_selected),
  ),
  maxThresholds: Flag.Int("max-thresholds").pipe(
    Flag.withDescription("Thresholds per feature, 0-4 (default 4)"),
    Flag.withDefault(DEFAULT_PARAMS.max_thresholds),
  ),
  maxDepth: Flag.Int("max-depth").pipe(
    Flag.withDescription("Nodes at this depth are not split (default 4)"),
    Flag.withDefault(DEFAULT_PARAMS.max_depth),
  ),
  minSupport: Flag.Finite("min-support").pipe(
    Flag.withDescription("Keep a threshold found in >= ceil(min-support * K) folds (default 0.6)"),
    Flag.withDefault(DEFAULT_PARAMS.min_support),
  ),
  tol: Flag.Finite("tol").pipe(
    Flag.withDescription("Recurrence tolerance as a fraction of the IQR (default 0.2)"),
    Flag.withDefault(DEFAULT_PARAMS.tol),
  ),
  gainEps: Flag.Finite("gain-eps").pipe(
    Flag.withDescription("Tie and positivity tolerance (default 1e-12)"),
    Flag.withDefault(DEFAULT_PARAMS.gain_eps),
  ),
  summary: Flag.Boolean("summary").pipe(
    Flag.withDescription("Print only the selected features and each binned feature's thresholds and words"),
    Flag.withDefault(false),
  ),
  json: Flag.String("json").pipe(
    Flag.withDescription("Write the full JSON to this file (atomically) and print a short summary"),
    Flag.optional,
  ),
}, (f) =>
  Effect.gen(function* () {
    const features = Option.map(f.features, list);
    const { rows, features: columns } = yield* readRowsCsv(
      f.input,
      Option.isSome(features) ? { features: features.value } : {},
    );
    const result = yield* runFit(rows, {
      rho_max: f.rhoMax,
      max_selected: f.maxSelected,
      max_thresholds: f.maxThresholds,
      max_depth: f.maxDepth,
      criterion: f.criterion,
      min_leaf: Option.getOrNull(f.minLeaf),
      folds: f.folds,
      seed: f.seed,
      min_support: f.minSupport,
      tol: f.tol,
      gain_eps: f.gainEps,
    }, { features: columns, bin: binChoice(f.bin), method: f.method, intervals: f.intervals });
    if (Option.isSome(f.json)) {
      yield* writeAtomic(f.json.value, JSON.stringify(result, null, 2) + "\n");
      yield* Console.log(shortSummary(result));
      yield* Console.log(`wrote ${f.json.value}`);
    } else {
      yield* Console.log(JSON.stringify(f.summary ? fitSummary(result) : result, null, 2));
    }
  })).pipe(
    Command.withDescription(
      "Select attributes and bin them into words. Example: deno task attributes fit --input nuclei.csv --json attributes.json",
    ),
  );

/** The attribute chain of a dataset as a pipeline (every node cached). */
export const attributePipeline = (
  ref: Parameters<typeof datasetSource>[0],
  config: { readonly seed: number; readonly criterion: "mdlp" | "gain"; readonly method: "entropy" | "quantile" },
) =>
  Pipeline.empty
    .source("dataset", datasetSource(ref))
    .node("features", maskFeaturesStage, { inputs: { dataset: "dataset" } })
    .node("selection", attributeSelection, { inputs: { table: "features" } })
    .node("bins", attributeBins, {
      inputs: { table: "features", selection: "selection" },
      config: { seed: config.seed, criterion: config.criterion, method: config.method },
    })
    .node("words", attributeWords, { inputs: { fit: "bins" } })
    .node("prompts", prompts, { inputs: { table: "features", words: "words" } });

export const report = Command.make("report", {
  data: Flag.String("data").pipe(Flag.withDescription(`The dataset: ${SOURCE_HELP}`)),
  out: Flag.String("out").pipe(
    Flag.withDescription(
      "Folder for report.md, attributes.json, prompts.json and one PNG per attribute (default attribute-report)",
    ),
    Flag.withDefault("attribute-report"),
  ),
  seed: Flag.Int("seed").pipe(
    Flag.withDescription("Fold seed of the stability check (default 0)"),
    Flag.withDefault(0),
  ),
  criterion: Flag.Literals("criterion", ["mdlp", "gain"]).pipe(
    Flag.withDescription("Split acceptance (default mdlp)"),
    Flag.withDefault("mdlp" as const),
  ),
  method: Flag.Literals("method", ["entropy", "quantile"]).pipe(
    Flag.withDescription("Entropy (MDLP) bins, or equal-count bins for the ablation (default entropy)"),
    Flag.withDefault("entropy" as const),
  ),
  tiles: tilesFlag,
  merge: mergeFlag,
  cache: cacheFlag,
  remoteCache: remoteCacheFlag,
}, (f) =>
  Effect.gen(function* () {
    const parsed = parseSource(f.data, { tiles: f.tiles, merge: f.merge });
    if ("error" in parsed) return yield* new UsageError({ message: parsed.error });
    yield* checkSourcePath(parsed.ref);
    const pipeline = attributePipeline(parsed.ref, f);
    const started = performance.now();
    const { outputs } = yield* Runner.run(pipeline, ["features", "bins", "prompts"]).pipe(
      Effect.provide(Layer.mergeAll(storeLayer(f), Progress.auto)),
    );
    const { features: table, bins: result, prompts: text } = outputs;
    yield* Effect.tryPromise({
      try: async () => {
        await Deno.mkdir(f.out, { recursive: true });
        const images: Record<string, string> = {};
        for (const [feature, svg] of Object.entries(attributeHistograms(result, table, true))) {
          images[feature] = `${feature}.png`;
          await sharp(new TextEncoder().encode(svg)).png().toFile(`${f.out}/${feature}.png`);
        }
        const md = reportMarkdown({ source: f.data, fit: result, table, prompts: text, excludeBorder: true, images });
        const write = async (name: string, content: string) => {
          await Deno.writeTextFile(`${f.out}/${name}.tmp`, content);
          await Deno.rename(`${f.out}/${name}.tmp`, `${f.out}/${name}`);
        };
        await write("attributes.json", JSON.stringify(result, null, 1) + "\n");
        await write("prompts.json", JSON.stringify(text) + "\n");
        await write("report.md", md);
      },
      catch: (e) =>
        new UsageError({ message: `cannot write the report to ${f.out}: ${e instanceof Error ? e.message : e}` }),
    });
    yield* Console.log(`selected attributes: ${result.selection.selected.join(", ") || "none"}`);
    for (const [feature, b] of Object.entries(result.binning)) {
      yield* Console.log(`  ${feature}: ${b.words.join(" / ")}`);
    }
    yield* Console.log(
      `wrote ${f.out}/report.md, attributes.json, prompts.json and ${
        Object.keys(result.binning).length
      } histograms in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  })).pipe(
    Command.withDescription(
      "Measure every nucleus of a dataset, select and bin the attributes, and write a Markdown report with histograms and example prompts. Example: deno task attributes report --data synthetic:1 --out report/",
    ),
  );

if (import.meta.main) {
  runTask(
    root.pipe(
      Command.withSubcommands([fit, report]),
      Command.run({ version: "0.1.0" }),
      Effect.provide(NodeServices.layer),
    ),
  );
}
