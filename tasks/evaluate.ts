/**
 * `deno task evaluate`: the field's metrics on files, cached like any stage.
 *
 *   deno task evaluate pannuke --true masks.npy --pred pred.npy --types types.npy [--json OUT.json]
 *   deno task evaluate instances --true t.npy --pred p.npy [--iou 0.5] [--json OUT.json]
 *   deno task evaluate folder --true DIR --pred DIR [--iou 0.5] [--json OUT.json]
 *   deno task evaluate breakdown --true DIR --pred DIR [--iou 0.5] [--json OUT.json] [--md OUT.md]
 *
 * A Markdown table goes to stdout; `--json` also writes the full result (NaN as null), `--md` the
 * Markdown (breakdown only).
 */
import * as NodeServices from "@effect/platform-node/NodeServices";
import { Console, Effect, Layer, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { Pipeline, Progress, Runner, Source } from "../mod.ts";
import {
  breakdownEvaluation,
  breakdownMarkdown,
  folderEvaluation,
  folderMarkdown,
  instanceEvaluation,
  instancesMarkdown,
  pannukeEvaluation,
  pannukeMarkdown,
  toJson,
} from "../stages/evaluation/mod.ts";
import { cacheFlag, noCacheFlag, remoteCacheFlag, runTask, storeLayer, UsageError, writeAtomic } from "./_main.ts";

const root = Command.make("evaluate").pipe(
  Command.withSharedFlags({
    cache: cacheFlag,
    remoteCache: remoteCacheFlag,
    noCache: noCacheFlag,
  }),
  Command.withDescription(
    "Evaluate predictions with the HoVer-Net / PanNuke metrics (PQ, AJI, Dice, detection and type F1, bPQ/mPQ).",
  ),
);

const jsonFlag = Flag.String("json").pipe(
  Flag.withDescription("Also write the full result as JSON to this file (NaN as null)"),
  Flag.optional,
);
const iouFlag = Flag.Finite("iou").pipe(
  Flag.withDescription("PQ IoU threshold, in [0, 1); pairs need IoU > iou (default 0.5)"),
  Flag.withDefault(0.5),
);

const exists = (path: string, flag: string, kind: "file" | "directory") =>
  Effect.tryPromise({
    try: () => Deno.stat(path),
    catch: () => new UsageError({ message: `${flag}: ${path} does not exist` }),
  }).pipe(
    Effect.flatMap((s) =>
      (kind === "file" ? s.isFile : s.isDirectory)
        ? Effect.void
        : Effect.fail(new UsageError({ message: `${flag}: ${path} is not a ${kind}` }))
    ),
  );

/** Runs a one-node evaluation pipeline against the chosen cache and prints/writes the result. */
const evaluate = <Nodes extends { readonly result: unknown }, E>(
  pipeline: Pipeline<Nodes, E, Progress>,
  markdown: (result: Nodes["result"]) => string,
  json: Option.Option<string>,
  md: Option.Option<string> = Option.none(),
) =>
  Effect.gen(function* () {
    const store = storeLayer(yield* root);
    const { outputs, report } = yield* Runner.run(pipeline, ["result"]).pipe(
      Effect.provide(Layer.mergeAll(store, Progress.auto)),
    );
    const text = markdown(outputs.result);
    yield* Console.log(text);
    if (report.find((s) => s.node === "result")?.status === "hit") {
      yield* Console.error("(from the cache: the inputs have not changed)");
    }
    if (Option.isSome(json)) {
      yield* writeAtomic(json.value, toJson(outputs.result) + "\n");
      yield* Console.error(`wrote ${json.value}`);
    }
    if (Option.isSome(md)) {
      yield* writeAtomic(md.value, text + "\n");
      yield* Console.error(`wrote ${md.value}`);
    }
  });

const pannuke = Command.make("pannuke", {
  truth: Flag.String("true").pipe(
    Flag.withDescription("True masks, PanNuke layout [N,H,W,6] .npy (e.g. Fold 3/masks/fold3/masks.npy)"),
  ),
  pred: Flag.String("pred").pipe(Flag.withDescription("Predicted masks [N,H,W,5 or 6] .npy, same N, H, W")),
  types: Flag.String("types").pipe(Flag.withDescription("Tissue names [N] .npy (PanNuke's types.npy)")),
  json: jsonFlag,
}, ({ truth, pred, types, json }) =>
  Effect.gen(function* () {
    yield* exists(truth, "--true", "file");
    yield* exists(pred, "--pred", "file");
    yield* exists(types, "--types", "file");
    const pipeline = Pipeline.empty
      .source("truth", Source.file(truth))
      .source("prediction", Source.file(pred))
      .source("types", Source.file(types))
      .node("result", pannukeEvaluation, { inputs: { truth: "truth", prediction: "prediction", types: "types" } });
    yield* evaluate(pipeline, pannukeMarkdown, json);
  })).pipe(Command.withDescription(
    "PanNuke bPQ, mPQ, class PQ, per-tissue averages and detection/type F1. Example: deno task evaluate pannuke --true masks.npy --pred pred.npy --types types.npy --json out.json",
  ));

const instances = Command.make("instances", {
  truth: Flag.String("true").pipe(Flag.withDescription("True instance map, 2-D .npy or 16-bit PNG (0 = background)")),
  pred: Flag.String("pred").pipe(Flag.withDescription("Predicted instance map, same size")),
  iou: iouFlag,
  json: jsonFlag,
}, ({ truth, pred, iou, json }) =>
  Effect.gen(function* () {
    yield* exists(truth, "--true", "file");
    yield* exists(pred, "--pred", "file");
    if (!(iou >= 0 && iou < 1)) {
      return yield* new UsageError({ message: `--iou: expected a number in [0, 1), found ${iou}` });
    }
    const pipeline = Pipeline.empty
      .source("truth", Source.file(truth))
      .source("prediction", Source.file(pred))
      .node("result", instanceEvaluation, { inputs: { truth: "truth", prediction: "prediction" }, config: { iou } });
    yield* evaluate(pipeline, instancesMarkdown, json);
  })).pipe(
    Command.withDescription(
      "PQ/DQ/SQ, TP/FP/FN, AJI, AJI+ and Dice of two instance maps. Example: deno task evaluate instances --true t.npy --pred p.npy",
    ),
  );

const folder = Command.make("folder", {
  truth: Flag.String("true").pipe(
    Flag.withDescription("Folder of true maps: instances/NAME.(png|npy), optional classes/NAME.(png|npy|json)"),
  ),
  pred: Flag.String("pred").pipe(Flag.withDescription("Folder of predicted maps, same layout and names")),
  iou: iouFlag,
  json: jsonFlag,
}, ({ truth, pred, iou, json }) =>
  Effect.gen(function* () {
    yield* exists(truth, "--true", "directory");
    yield* exists(pred, "--pred", "directory");
    if (!(iou >= 0 && iou < 1)) {
      return yield* new UsageError({ message: `--iou: expected a number in [0, 1), found ${iou}` });
    }
    const pipeline = Pipeline.empty
      .source("truth", Source.directory(truth))
      .source("prediction", Source.directory(pred))
      .node("result", folderEvaluation, { inputs: { truth: "truth", prediction: "prediction" }, config: { iou } });
    yield* evaluate(pipeline, folderMarkdown, json);
  })).pipe(Command.withDescription(
    "Instance metrics averaged over images, and pooled detection/type F1, for two folders of per-image maps. Example: deno task evaluate folder --true gt/ --pred out/",
  ));

const breakdown = Command.make("breakdown", {
  truth: Flag.String("true").pipe(
    Flag.withDescription(
      "Folder of true maps: instances/NAME.(png|npy), optional classes/NAME.(png|npy|json), optional dataset.json (class names)",
    ),
  ),
  pred: Flag.String("pred").pipe(Flag.withDescription("Folder of predicted maps, same layout and names")),
  iou: iouFlag,
  json: jsonFlag,
  md: Flag.String("md").pipe(Flag.withDescription("Also write the Markdown report to this file"), Flag.optional),
}, ({ truth, pred, iou, json, md }) =>
  Effect.gen(function* () {
    yield* exists(truth, "--true", "directory");
    yield* exists(pred, "--pred", "directory");
    if (!(iou >= 0 && iou < 1)) {
      return yield* new UsageError({ message: `--iou: expected a number in [0, 1), found ${iou}` });
    }
    const pipeline = Pipeline.empty
      .source("truth", Source.directory(truth))
      .source("prediction", Source.directory(pred))
      .node("result", breakdownEvaluation, { inputs: { truth: "truth", prediction: "prediction" }, config: { iou } });
    yield* evaluate(pipeline, breakdownMarkdown, json, md);
  })).pipe(Command.withDescription(
    "Where the PQ goes, pooled over two folders of per-image maps: TP/FP/FN, precision, recall, DQ, SQ; missed, merged, split, poorly segmented truths; spurious, fragment, merge predictions; counterfactual PQs; type confusion and per-class F1. Example: deno task evaluate breakdown --true gt/ --pred out/ --md breakdown.md",
  ));

if (import.meta.main) {
  runTask(
    root.pipe(
      Command.withSubcommands([pannuke, instances, folder, breakdown]),
      Command.run({ version: "0.1.0" }),
      Effect.provide(NodeServices.layer),
    ),
  );
}
