/**
 * `deno task train`: train the Mask2Former-style baseline (IVAAN's ablation row 1) and evaluate it
 * on a held-out split.
 *
 *   deno task train [--data SOURCE] [--preset tiny|conv|…] [--steps N | --minutes M] [--val-fraction F]
 *                   [--schedule step|cosine|constant] [--batch B] [--seed S] [--lr X]
 *                   [--no-stem] [--queries learned|centers] [--row ROW]
 *                   [--backend wasm|cpu|webgpu|node] [--threads N]
 *                   [--out DIR] [--checkpoint-every N]
 *                   [--resume CHECKPOINT] [--explain] [--cache DIR] [--remote-cache URL]
 *
 * With no arguments: the `tiny` preset on the synthetic default (`synthetic:0`, 256 tiles). With real
 * data (`--data consep:DIR` …) and no preset: the real-data recipe, `conv` with the cosine schedule.
 * Writes OUT/checkpoint.safetensors, OUT/metrics.json, OUT/summary.md and the held-out split in PanNuke's
 * layout (OUT/heldout/masks.npy, pred.npy, types.npy, for `deno task evaluate pannuke`). The run is a cached
 * stage: the same data, config, seed and backend reuse the stored checkpoint.
 */
import * as NodeServices from "@effect/platform-node/NodeServices";
import { Console, Effect, Layer, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { encodeSafetensors, type TensorFile } from "../pipeline/codec/safetensors.ts";
import { Pipeline, Progress, Runner, Source, type Store } from "../mod.ts";
import { BACKENDS, layer as backendLayer, TfBackend } from "../stages/backend/tf.ts";
import { checkSourcePath, datasetSource, parseSource, SOURCE_HELP } from "../stages/data/source.ts";
import {
  continueTraining,
  continueTrainingWithAttributes,
  trainBaseline,
  trainFrozenText,
  trainFrozenTextWithAttributes,
  TrainingCheckpoints,
  trainWithAttributes,
} from "../stages/model/stages.ts";
import { frozenTextStage } from "../stages/text/frozen.ts";
import { ABLATION_ROWS, attributeBinning, defaultLearningRate, modelOf } from "../stages/model/train.ts";
import { MODEL_PRESETS, PRESET_NAMES } from "../stages/model/model.ts";
import { defaultPreset, defaultSchedule } from "../stages/model/recipe.ts";
import {
  attributeBins,
  attributeSelection,
  attributeWords,
  maskFeaturesStage,
  trainingNuclei,
} from "../stages/attributes/stages.ts";
import { heldoutPredictions, PANNUKE_CHANNELS, panNukeLayout } from "../stages/model/heldout.ts";
import { heldoutTiles } from "../stages/model/scores.ts";
import { splitLine, validationTables } from "../stages/model/summary.ts";
import { encodeNpy, encodeStringsNpy } from "../pipeline/codec/npy.ts";
import {
  cacheFlag,
  centerWeightFlag,
  denseWeightFlag,
  lossWeightsOf,
  mergeFlag,
  noteMissingBlas,
  organPromptsFlag,
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

/** The summary's note of the dense and centre loss weights, where either is not 1. */
const lossWeights = (dense: number, center: number): string =>
  dense === 1 && center === 1 ? "" : `; loss weights dense ${dense}, centre ${center}`;

const train = Command.make("train", {
  data: Flag.String("data").pipe(
    Flag.withDescription(`Training data: ${SOURCE_HELP} (default synthetic:0)`),
    Flag.withDefault("synthetic:0"),
  ),
  tiles: tilesFlag,
  merge: mergeFlag,
  preset: Flag.Literals("preset", PRESET_NAMES).pipe(
    Flag.withDescription(
      "Model: tiny (ViT, CPU; the default on synthetic data), conv (a residual conv encoder with dense supervision: the default on real data), micro / conv_micro (tests), vit_b / vit_l / vit_h (SAM sizes)",
    ),
    Flag.optional,
  ),
  steps: Flag.Int("steps").pipe(
    Flag.withDescription(
      "Optimisation steps (default 200; with --minutes the most the run may take, default 1,000,000)",
    ),
    Flag.optional,
  ),
  minutes: Flag.Finite("minutes").pipe(
    Flag.withDescription(
      "A wall-clock budget: the steps are planned from the measured step time, the schedule's decay placed to end at the budget, and the run stops there with its checkpoint (validation included)",
    ),
    Flag.optional,
  ),
  valFraction: Flag.Finite("val-fraction").pipe(
    Flag.withDescription(
      "Share of the images held out for validation (default 0.2; 0 = train on every image, no held-out scores)",
    ),
    Flag.withDefault(0.2),
  ),
  focusCrops: Flag.Finite("focus-crops").pipe(
    Flag.withDescription(
      "Share of training crops placed on a nucleus, drawn class-balanced (weight 1/√ of its class's count), so crowded areas and rare classes are seen more (default 0: uniform crops)",
    ),
    Flag.withDefault(0),
  ),
  denseWeight: denseWeightFlag,
  centerWeight: centerWeightFlag,
  batch: Flag.Int("batch").pipe(
    Flag.withDescription("Tiles per step (default 2; 4 needs > 3 GB of WASM heap with tiny)"),
    Flag.withDefault(2),
  ),
  seed: Flag.Int("seed").pipe(
    Flag.withDescription("Seed of initialisation, split, order and augmentation (default 0)"),
    Flag.withDefault(0),
  ),
  lr: Flag.Finite("lr").pipe(
    Flag.withDescription(
      "AdamW learning rate (default: 1e-3 for tiny and micro, trained from scratch; 1e-4 for the SAM presets, as the paper)",
    ),
    Flag.optional,
  ),
  backend: Flag.Literals("backend", BACKENDS).pipe(
    Flag.withDescription("tfjs backend (default wasm); a backend that cannot start is an error"),
    Flag.withDefault("wasm" as const),
  ),
  schedule: Flag.Literals("schedule", ["step", "constant", "cosine"] as const).pipe(
    Flag.withDescription(
      "Learning-rate schedule: step (Mask2Former's ×0.1 at 89 % and 96 % of the steps; the default with a ViT preset), cosine (100 warm-up steps, then a cosine decay to 0; the default with conv), constant",
    ),
    Flag.optional,
  ),
  noStem: Flag.Boolean("no-stem").pipe(
    Flag.withDescription(
      "Ablation: no convolutional stem at stride 4 (the pyramid's s4 level comes from the ViT alone)",
    ),
    Flag.withDefault(false),
  ),
  queries: Flag.Literals("queries", ["learned", "centers"] as const).pipe(
    Flag.withDescription(
      "Where the decoder's queries start: Mask2Former's learned ones, or predicted nucleus centres (default: the preset's; tiny and micro use centers)",
    ),
    Flag.optional,
  ),
  row: Flag.Literals("row", ABLATION_ROWS).pipe(
    Flag.withDescription(
      "The paper's ablation row, each adding to the one before: baseline (default); vl_fixed (+ a jointly trained text tower, L_fix on the class prompts); vl_attr_quantile / vl_attr_entropy (+ L_attr on attribute words from quantile / entropy bins fitted on the data); sim (+ category tokens and SIM, L_cent); full (+ feature fusion of the image-level text)",
    ),
    Flag.withDefault("baseline" as const),
  ),
  fusionRule: Flag.Literals("fusion-rule", ["predicted", "all"] as const).pipe(
    Flag.withDescription(
      "Row full: which classes' image-level text the features attend to at inference — predicted (default: a presence head trained jointly) or all",
    ),
    Flag.optional,
  ),
  organPrompts: organPromptsFlag,
  textEncoder: textEncoderFlag,
  threads: threadsFlag,
  out: Flag.String("out").pipe(
    Flag.withDescription("Output folder (default runs/train)"),
    Flag.withDefault("runs/train"),
  ),
  resume: Flag.String("resume").pipe(
    Flag.withDescription(
      "Continue from a checkpoint of the same config (e.g. OUT/checkpoint-step100.safetensors) up to --steps",
    ),
    Flag.optional,
  ),
  checkpointEvery: Flag.Int("checkpoint-every").pipe(
    Flag.withDescription("Write OUT/checkpoint-step<N>.safetensors every N steps (default 100; 0 = never)"),
    Flag.withDefault(100),
  ),
  explain: Flag.Boolean("explain").pipe(
    Flag.withDescription("Print the plan (cached or not, and why) and stop"),
    Flag.withDefault(false),
  ),
  cache: cacheFlag,
  remoteCache: remoteCacheFlag,
}, (f) =>
  withPlanningThreads(Option.getOrUndefined(f.threads))(Effect.gen(function* () {
    const parsed = parseSource(f.data, { tiles: f.tiles, merge: f.merge });
    if ("error" in parsed) return yield* new UsageError({ message: parsed.error });
    const minutes = Option.getOrUndefined(f.minutes);
    const steps = Option.getOrElse(f.steps, () => minutes === undefined ? 200 : 1_000_000);
    if (steps < 1 || f.batch < 1) {
      return yield* new UsageError({
        message: `--steps and --batch must be positive, found ${steps} and ${f.batch}`,
      });
    }
    if (minutes !== undefined && !(minutes > 0)) {
      return yield* new UsageError({ message: `--minutes must be positive, found ${minutes}` });
    }
    if (!(f.focusCrops >= 0 && f.focusCrops <= 1)) {
      return yield* new UsageError({ message: `--focus-crops must be in [0, 1], found ${f.focusCrops}` });
    }
    if (!(f.valFraction >= 0 && f.valFraction < 1)) {
      return yield* new UsageError({ message: `--val-fraction must be in [0, 1), found ${f.valFraction}` });
    }
    const preset = defaultPreset(parsed.ref.kind !== "synthetic", Option.getOrUndefined(f.preset));
    const schedule = defaultSchedule(preset, Option.getOrUndefined(f.schedule));
    const threads = Option.getOrUndefined(f.threads);
    if (threads !== undefined && threads < 1) {
      return yield* new UsageError({ message: `--threads must be at least 1, found ${threads}` });
    }
    yield* checkSourcePath(parsed.ref);
    const queries = Option.getOrUndefined(f.queries);
    const lr = Option.getOrElse(f.lr, () => defaultLearningRate(preset));
    const weights = lossWeightsOf(preset, f.denseWeight, f.centerWeight);
    if ("error" in weights) return yield* new UsageError({ message: weights.error });
    const denseWeight = weights.dense, centerWeight = weights.center;
    if (f.noStem && MODEL_PRESETS[preset].conv !== undefined) {
      return yield* new UsageError({ message: `--no-stem: preset ${preset} has a conv encoder, not a separate stem` });
    }
    const config = {
      preset,
      steps,
      batch: f.batch,
      seed: f.seed,
      learningRate: lr,
      stem: !f.noStem,
      schedule,
      ...(minutes === undefined ? {} : { minutes }),
      ...(f.valFraction === 0.2 ? {} : { valFraction: f.valFraction }),
      ...(f.focusCrops === 0 ? {} : { focusCrops: f.focusCrops }),
      ...(denseWeight === 1 ? {} : { weightDense: denseWeight }),
      ...(centerWeight === 1 ? {} : { weightCenter: centerWeight }),
      ...(queries === undefined ? {} : { queries }),
      ...(f.row === "baseline" ? {} : { row: f.row }),
      ...(Option.isSome(f.fusionRule) ? { fusionRule: f.fusionRule.value } : {}),
      ...(f.organPrompts ? { organPrompts: true } : {}),
    };
    if (f.organPrompts && f.row === "baseline") {
      return yield* new UsageError({
        message: "--organ-prompts: the baseline has no text; pick a --row (vl_fixed … full)",
      });
    }
    if (config.fusionRule !== undefined && config.row !== "full") {
      return yield* new UsageError({ message: "--fusion-rule: only row full has feature fusion" });
    }
    const resume = Option.getOrUndefined(f.resume);
    if (resume !== undefined && !(yield* Effect.promise(() => Deno.stat(resume).then((s) => s.isFile, () => false)))) {
      return yield* new UsageError({ message: `--resume: ${resume} is not a checkpoint file` });
    }
    const data = Pipeline.empty.source("dataset", datasetSource(parsed.ref));
    const layers = Layer.mergeAll(
      storeLayer(f),
      Progress.auto,
      backendLayer(f.backend, threads === undefined ? {} : { threads }),
      f.checkpointEvery > 0 ? TrainingCheckpoints.toDirectory(f.out, f.checkpointEvery) : TrainingCheckpoints.none,
    );
    /** Explains or runs a pipeline whose `checkpoint` node is the trained model, then writes OUT. */
    const execute = <
      Nodes extends { readonly checkpoint: TensorFile; readonly heldout: TensorFile },
      E,
      R extends Store | Progress | TfBackend | TrainingCheckpoints,
    >(
      pipeline: Pipeline<Nodes, E, R>,
    ) =>
      Effect.gen(function* () {
        if (f.explain) {
          return yield* Console.log(
            Runner.formatPlan(yield* Runner.explain(pipeline, ["checkpoint", "heldout"]).pipe(Effect.provide(layers))),
          );
        }
        yield* noteMissingBlas(f.backend, "training");
        const started = performance.now();
        const { outputs, report, backend } = yield* Effect.gen(function* () {
          const run = yield* Runner.run(pipeline, ["checkpoint", "heldout"]);
          return { ...run, backend: yield* TfBackend };
        }).pipe(Effect.provide(layers));
        const meta = outputs.checkpoint.metadata ?? {};
        const validation = JSON.parse(meta.validation ?? "{}") as Record<string, unknown>;
        const history = JSON.parse(meta.history ?? "[]") as Array<{ step: number; total: number; ms: number }>;
        const msPerStep = history.length === 0 ? NaN : history.reduce((s, h) => s + h.ms, 0) / history.length;
        const summary = [
          `# Training summary`,
          "",
          `- data: ${f.data}; preset ${preset} (${modelOf(config).queries} queries, ${
            config.stem ? "with" : "without"
          } the stem; row ${f.row}${f.organPrompts ? ", organ prompts" : ""}${
            Option.isSome(f.textEncoder) ? `, frozen text encoder ${f.textEncoder.value}` : ""
          }); ${history.at(-1)?.step ?? steps} steps of batch ${f.batch}${
            minutes === undefined ? "" : ` (a budget of ${minutes} min)`
          }; ${schedule} schedule${
            f.focusCrops > 0 ? `; ${f.focusCrops} of the crops on a nucleus, class-balanced` : ""
          }${
            lossWeights(denseWeight, centerWeight)
          }; seed ${f.seed}; lr ${lr}; backend ${f.backend} (matrix products: ${backend.matmul})`,
          `- loss: ${history[0]?.total.toFixed(3)} at step 1 → ${history.at(-1)?.total.toFixed(3)} at step ${
            history.at(-1)?.step
          }; ${msPerStep.toFixed(0)} ms per step`,
          `- split: ${splitLine(meta.split)}`,
          "",
          validationTables(validation),
          "",
          "",
        ].join("\n");
        yield* Effect.tryPromise({
          try: () => Deno.mkdir(f.out, { recursive: true }),
          catch: (e) => new UsageError({ message: `cannot create ${f.out}: ${e instanceof Error ? e.message : e}` }),
        });
        yield* writeAtomic(`${f.out}/checkpoint.safetensors`, encodeSafetensors(outputs.checkpoint));
        yield* writeAtomic(`${f.out}/metrics.json`, JSON.stringify({ validation, history }, null, 1) + "\n");
        // what `deno task predict` needs to describe nuclei with this run's attribute bins
        const binning = attributeBinning(config.row);
        yield* writeAtomic(
          `${f.out}/run.json`,
          JSON.stringify(
            {
              command: `deno task train ${Deno.args.join(" ")}`.trim(),
              data: f.data,
              tiles: f.tiles,
              merge: f.merge,
              preset,
              row: f.row,
              ...(binning === undefined ? {} : { binning }),
            },
            null,
            1,
          ) + "\n",
        );
        const heldout = yield* writeHeldout(`${f.out}/heldout`, outputs.heldout);
        yield* writeAtomic(`${f.out}/summary.md`, `${summary}${heldout}\n`);
        const cached = report.find((s) => s.node === "checkpoint")?.status === "hit";
        yield* Console.log(`${summary}${heldout}`);
        yield* Console.log(
          `${
            cached ? "(from the cache) " : ""
          }wrote ${f.out}/checkpoint.safetensors, metrics.json, run.json and summary.md in ${
            ((performance.now() - started) / 1000).toFixed(0)
          } s`,
        );
      });
    const heldout = { inputs: { dataset: "dataset", checkpoint: "checkpoint" }, config } as const;
    const binning = attributeBinning(config.row);
    // the attribute chain of `deno task attributes`, shared through the cache
    const words = (method: "entropy" | "quantile") =>
      data.node("features", maskFeaturesStage, { inputs: { dataset: "dataset" } })
        // selection and bins see only this run's training split (never a held-out nucleus's class)
        .node("training", trainingNuclei, {
          inputs: { table: "features", dataset: "dataset" },
          config: { seed: f.seed },
        })
        .node("selection", attributeSelection, { inputs: { table: "training" } })
        .node("bins", attributeBins, { inputs: { table: "training", selection: "selection" }, config: { method } })
        .node("words", attributeWords, { inputs: { fit: "bins" } });
    const textEncoder = Option.getOrUndefined(f.textEncoder);
    if (textEncoder !== undefined) {
      if (binning === undefined && config.row === undefined) {
        return yield* new UsageError({
          message: "--text-encoder: the baseline has no text; pick a --row (vl_fixed … full)",
        });
      }
      if (resume !== undefined) {
        return yield* new UsageError({ message: "--resume: not yet available with --text-encoder" });
      }
      yield* textEncoderFolder(textEncoder);
    }
    const clip = Source.directory(textEncoder ?? ".");
    const text = { inputs: { dataset: "dataset", clip: "clip" } } as const;
    yield* textEncoder !== undefined && binning !== undefined
      ? execute(
        words(binning).source("clip", clip).node("text", frozenTextStage, text).node(
          "checkpoint",
          trainFrozenTextWithAttributes,
          {
            inputs: { dataset: "dataset", words: "words", text: "text" },
            config,
          },
        ).node("heldout", heldoutPredictions, heldout),
      )
      : textEncoder !== undefined
      ? execute(
        data.source("clip", clip).node("text", frozenTextStage, text)
          .node("checkpoint", trainFrozenText, { inputs: { dataset: "dataset", text: "text" }, config })
          .node("heldout", heldoutPredictions, heldout),
      )
      : binning !== undefined && resume !== undefined
      ? execute(
        words(binning).source("resume", Source.file(resume)).node("checkpoint", continueTrainingWithAttributes, {
          inputs: { dataset: "dataset", checkpoint: "resume", words: "words" },
          config,
        }).node("heldout", heldoutPredictions, heldout),
      )
      : binning !== undefined
      ? execute(
        words(binning).node("checkpoint", trainWithAttributes, {
          inputs: { dataset: "dataset", words: "words" },
          config,
        })
          .node("heldout", heldoutPredictions, heldout),
      )
      : resume === undefined
      ? execute(
        data.node("checkpoint", trainBaseline, { inputs: { dataset: "dataset" }, config })
          .node("heldout", heldoutPredictions, heldout),
      )
      : execute(
        data.source("resume", Source.file(resume)).node("checkpoint", continueTraining, {
          inputs: { dataset: "dataset", checkpoint: "resume" },
          config,
        }).node("heldout", heldoutPredictions, heldout),
      );
  }))).pipe(
    Command.withDescription(
      "Train the Mask2Former-style baseline and evaluate it on a held-out split. Example: deno task train --data synthetic:0 --steps 300 --out runs/synth",
    ),
  );

/**
 * Writes the held-out predictions in PanNuke's layout (masks.npy = truth, pred.npy, types.npy) under
 * `dir`, and returns the summary line saying how to score them; a dataset with more than 5 classes
 * has no PanNuke layout (the line says so).
 */
const writeHeldout = (dir: string, file: TensorFile) =>
  Effect.gen(function* () {
    const { classes, tiles } = yield* Effect.try({
      try: () => heldoutTiles(file),
      catch: () => new UsageError({ message: "held-out predictions: the cache entry lacks its instance maps" }),
    });
    if (classes.length > PANNUKE_CHANNELS) {
      return `- held-out predictions: not written in PanNuke's layout (${classes.length} classes > ${PANNUKE_CHANNELS})`;
    }
    const n = tiles.length, w = tiles[0]?.width ?? 0, h = w === 0 ? 0 : (tiles[0]?.truth.length ?? 0) / w;
    yield* Effect.tryPromise({
      try: () => Deno.mkdir(dir, { recursive: true }),
      catch: (e) => new UsageError({ message: `cannot create ${dir}: ${e instanceof Error ? e.message : e}` }),
    });
    const layout = (maps: Array<{ instances: Int32Array; classOf: ArrayLike<number> }>) =>
      encodeNpy(panNukeLayout(maps, h, w), [n, h, w, PANNUKE_CHANNELS + 1]);
    yield* writeAtomic(`${dir}/masks.npy`, layout(tiles.map((t) => ({ instances: t.truth, classOf: t.truthClassOf }))));
    yield* writeAtomic(
      `${dir}/pred.npy`,
      layout(tiles.map((t) => ({ instances: t.prediction, classOf: t.predictionClassOf }))),
    );
    yield* writeAtomic(`${dir}/types.npy`, encodeStringsNpy(JSON.parse(file.metadata?.organs ?? "[]") as string[]));
    return `- held-out predictions (${n} tiles, PanNuke layout): deno task evaluate pannuke --true ${dir}/masks.npy --pred ${dir}/pred.npy --types ${dir}/types.npy`;
  });

if (import.meta.main) {
  runTask(train.pipe(Command.run({ version: "0.1.0" }), Effect.provide(NodeServices.layer)));
}
