/**
 * `deno task data`: make, inspect and look at datasets.
 *
 *   deno task data synth --out DIR --tiles N --seed S [--size 256] [--dtype f8|u1]
 *   deno task data inspect SOURCE [--json] [--tiles N] [--merge]
 *   deno task data show SOURCE --index I --out tile.png [--merge]
 *   deno task data split SOURCE [--val 0.2] [--test 0] [--seed 0] [--rotation 1] [--json OUT]
 *   deno task data split SOURCE [--val 0.2] [--test 0] [--seed 0] [--rotation 1] [--json OUT]
 *
 * SOURCE: synthetic[:SEED], pannuke:DIR, consep:DIR, monuseg:DIR or folder:DIR.
 */
import * as NodeServices from "@effect/platform-node/NodeServices";
import { Console, Effect, Layer, Option } from "effect";
import { Argument, Command, Flag } from "effect/cli";
import sharp from "sharp";
import { Pipeline, Progress, Runner, track } from "../mod.ts";
import { encodePng } from "../pipeline/codec/png.ts";
import { contourOverlay } from "../stages/data/overlay.ts";
import { writePannukeFold } from "../stages/data/pannuke.ts";
import { DatasetError } from "../stages/data/sample.ts";
import { checkSourcePath, datasetSource, openDataset, parseSource, SOURCE_HELP } from "../stages/data/source.ts";
import { datasetSplit, datasetSummary } from "../stages/data/stages.ts";
import { syntheticSample } from "../stages/data/synthetic.ts";
import {
  cacheFlag,
  mergeFlag,
  noCacheFlag,
  remoteCacheFlag,
  runTask,
  storeLayer,
  tilesFlag,
  UsageError,
  writeAtomic,
} from "./_main.ts";

const root = Command.make("data").pipe(
  Command.withSharedFlags({
    cache: cacheFlag,
    remoteCache: remoteCacheFlag,
    noCache: noCacheFlag,
  }),
  Command.withDescription(`Make, inspect and look at datasets. SOURCE is ${SOURCE_HELP}.`),
);

const sourceArgument = Argument.String("source").pipe(Argument.withDescription(`The dataset: ${SOURCE_HELP}`));

const parse = (text: string, tiles: number, merge: boolean) => {
  const parsed = parseSource(text, { tiles, merge });
  return "error" in parsed ? Effect.fail(new UsageError({ message: parsed.error })) : Effect.succeed(parsed.ref);
};

const synth = Command.make("synth", {
  out: Flag.String("out").pipe(
    Flag.withDescription("Output folder; the fold is written to OUT/Fold 1/ in PanNuke layout"),
  ),
  tiles: Flag.Int("tiles").pipe(Flag.withDescription("Number of tiles"), Flag.withDefault(256)),
  seed: Flag.Int("seed").pipe(Flag.withDescription("Seed (the same seed gives the same tiles)"), Flag.withDefault(0)),
  size: Flag.Int("size").pipe(
    Flag.withDescription("Tile side in pixels (default 256, as PanNuke)"),
    Flag.withDefault(256),
  ),
  dtype: Flag.Literals("dtype", ["f8", "u1"]).pipe(
    Flag.withDescription("Array dtype: f8 (float64, as PanNuke; default) or u1 (8× smaller)"),
    Flag.withDefault("f8" as const),
  ),
}, ({ out, tiles, seed, size, dtype }) =>
  Effect.gen(function* () {
    if (tiles < 1) return yield* new UsageError({ message: `--tiles: expected a positive integer, found ${tiles}` });
    if (size < 32) return yield* new UsageError({ message: `--size: expected at least 32, found ${size}` });
    const started = performance.now();
    yield* track("generating tiles", tiles, (progress) =>
      Effect.tryPromise({
        try: () =>
          writePannukeFold(out, 1, tiles, (i) => syntheticSample(seed, i, { size }), {
            dtype,
            onTile: () => Effect.runSync(progress.advance(1)),
          }),
        catch: (e) => new UsageError({ message: `cannot write ${out}: ${e instanceof Error ? e.message : e}` }),
      })).pipe(Effect.provide(Progress.auto));
    yield* Console.log(
      `wrote ${tiles} synthetic tiles (seed ${seed}, ${size}×${size}, ${dtype}) to ${out}/Fold 1 in ${
        ((performance.now() - started) / 1000).toFixed(1)
      } s`,
    );
    yield* Console.log(`read it back with: deno task data inspect pannuke:${out}`);
  })).pipe(
    Command.withDescription(
      "Write synthetic H&E tiles in PanNuke layout. Example: deno task data synth --out /tmp/synth --tiles 100 --seed 1",
    ),
  );

const inspect = Command.make("inspect", {
  source: sourceArgument,
  json: Flag.Boolean("json").pipe(Flag.withDescription("Print JSON instead of text"), Flag.withDefault(false)),
  tiles: tilesFlag,
  merge: mergeFlag,
}, ({ source, json, tiles, merge }) =>
  Effect.gen(function* () {
    const ref = yield* parse(source, tiles, merge);
    yield* checkSourcePath(ref);
    const flags = yield* root;
    const pipeline = Pipeline.empty.source("dataset", datasetSource(ref)).node("summary", datasetSummary, {
      inputs: { dataset: "dataset" },
    });
    const { outputs } = yield* Runner.run(pipeline, ["summary"]).pipe(
      Effect.provide(
        Layer.mergeAll(storeLayer(flags), Progress.auto),
      ),
    );
    const s = outputs.summary;
    if (json) {
      return yield* Console.log(
        JSON.stringify(
          {
            images: s.images,
            nuclei: s.nuclei,
            classCounts: s.classCounts,
            organCounts: s.organCounts,
            sizes: s.sizes,
            warnings: s.warnings,
          },
          null,
          2,
        ),
      );
    }
    const table = (title: string, counts: Record<string, number>) =>
      [`${title}:`, ...Object.entries(counts).map(([k, v]) => `  ${k.padEnd(24)} ${String(v).padStart(8)}`)].join("\n");
    yield* Console.log(
      [
        `${s.kind}: ${s.images} images, ${s.nuclei} nuclei`,
        table("nuclei per class", s.classCounts),
        table("images per organ", s.organCounts),
        table("image sizes", s.sizes),
      ].join("\n"),
    );
    for (const w of s.warnings) yield* Console.error(`warning: ${w}`);
  })).pipe(
    Command.withDescription(
      "Count images, nuclei per class, images per organ and sizes. Example: deno task data inspect consep:../shared/data/consep/Train",
    ),
  );

const show = Command.make("show", {
  source: sourceArgument,
  index: Flag.Int("index").pipe(Flag.withDescription("Which tile (0-based)"), Flag.withDefault(0)),
  out: Flag.String("out").pipe(Flag.withDescription("PNG to write")),
  tiles: tilesFlag,
  merge: mergeFlag,
}, ({ source, index, out, tiles, merge }) =>
  Effect.gen(function* () {
    const ref = yield* parse(source, tiles, merge);
    yield* checkSourcePath(ref);
    const fail = (e: unknown) => (e instanceof DatasetError ? e : new UsageError({ message: String(e) }));
    yield* Effect.acquireUseRelease(
      Effect.tryPromise({ try: () => openDataset({ ...ref, content: "" }), catch: fail }),
      (ds) =>
        Effect.gen(function* () {
          if (!(index >= 0 && index < ds.size)) {
            return yield* new UsageError({ message: `--index: ${source} has tiles 0..${ds.size - 1}, found ${index}` });
          }
          const s = yield* Effect.tryPromise({ try: () => ds.sample(index), catch: fail });
          yield* Effect.tryPromise({
            try: () =>
              sharp(contourOverlay(s), { raw: { width: s.width, height: s.height, channels: 3 } }).png().toFile(out),
            catch: (e) => new UsageError({ message: `cannot write ${out}: ${e instanceof Error ? e.message : e}` }),
          });
          const counts = new Map<string, number>();
          for (let k = 1; k < s.classOf.length; k++) {
            const name = ds.classes[s.classOf[k] as number] ?? "unknown";
            counts.set(name, (counts.get(name) ?? 0) + 1);
          }
          const described = [...counts].map(([k, v]) => `${k} ${v}`).join(", ");
          yield* Console.log(
            `${s.id} (${s.organ || "organ unknown"}, ${s.height}×${s.width}): ${
              s.classOf.length - 1
            } nuclei — ${described}`,
          );
          yield* Console.log(`wrote ${out}`);
        }),
      (ds) => Effect.sync(() => ds.close()),
    );
  })).pipe(
    Command.withDescription(
      "Draw one tile with its instance contours coloured by class. Example: deno task data show synthetic:1 --index 3 --out tile.png",
    ),
  );

const exportCommand = Command.make("export", {
  source: sourceArgument,
  out: Flag.String("out").pipe(
    Flag.withDescription("Output folder: images/, instances/ (16-bit PNG), classes/ (class + 1)"),
  ),
  only: Flag.String("only").pipe(
    Flag.withDescription("Comma-separated sample ids to export (default: all), e.g. train_4,train_10"),
    Flag.optional,
  ),
  tiles: tilesFlag,
  merge: mergeFlag,
}, ({ source, out, only, tiles, merge }) =>
  Effect.gen(function* () {
    const ref = yield* parse(source, tiles, merge);
    yield* checkSourcePath(ref);
    const fail = (e: unknown) => (e instanceof DatasetError ? e : new UsageError({ message: String(e) }));
    const wanted = Option.map(only, (o) => new Set(o.split(",").map((s) => s.trim()).filter((s) => s !== "")));
    yield* Effect.acquireUseRelease(
      Effect.tryPromise({ try: () => openDataset({ ...ref, content: "" }), catch: fail }),
      (ds) =>
        Effect.gen(function* () {
          const found = new Set<string>();
          for (const dir of ["images", "instances", "classes"]) {
            yield* Effect.tryPromise({
              try: () => Deno.mkdir(`${out}/${dir}`, { recursive: true }),
              catch: (e) =>
                new UsageError({ message: `cannot create ${out}/${dir}: ${e instanceof Error ? e.message : e}` }),
            });
          }
          for (let i = 0; i < ds.size; i++) {
            const s = yield* Effect.tryPromise({ try: () => ds.sample(i), catch: fail });
            if (Option.isSome(wanted) && !wanted.value.has(s.id)) continue;
            found.add(s.id);
            const name = s.id.replaceAll("/", "_"), { width, height } = s;
            const png = (data: Uint8Array | Uint16Array, channels: 1 | 3) =>
              encodePng({ width, height, channels, data });
            yield* writeAtomic(`${out}/images/${name}.png`, yield* png(s.image, 3));
            yield* writeAtomic(`${out}/instances/${name}.png`, yield* png(Uint16Array.from(s.instances), 1));
            const classes = Uint8Array.from(
              s.instances,
              (id) => (id === 0 ? 0 : Math.max(0, (s.classOf[id] as number) + 1)),
            );
            yield* writeAtomic(`${out}/classes/${name}.png`, yield* png(classes, 1));
          }
          const missing = Option.isSome(wanted) ? [...wanted.value].filter((id) => !found.has(id)) : [];
          if (missing.length > 0) {
            return yield* new UsageError({ message: `--only: no sample ${missing.join(", ")} in ${source}` });
          }
          yield* Console.log(
            `wrote ${found.size} samples to ${out}/images, instances (16-bit ids) and classes (class + 1: ${
              ds.classes.map((c, k) => `${k + 1} ${c}`).join(", ")
            })`,
          );
        }),
      (ds) => Effect.sync(() => ds.close()),
    );
  })).pipe(
    Command.withDescription(
      "Write samples as image, instance-map and class-map PNGs (the folder layout of deno task evaluate folder and deno task predict). Example: deno task data export consep:../shared/data/consep/Train --merge --only train_4 --out truth",
    ),
  );

const split = Command.make("split", {
  source: sourceArgument,
  val: Flag.Finite("val").pipe(
    Flag.withDescription("Fraction of each stratum for validation (default 0.2)"),
    Flag.withDefault(0.2),
  ),
  test: Flag.Finite("test").pipe(
    Flag.withDescription("Fraction of each stratum for test (default 0)"),
    Flag.withDefault(0),
  ),
  seed: Flag.Int("seed").pipe(Flag.withDescription("Seed of the split (default 0)"), Flag.withDefault(0)),
  rotation: Flag.Literals("rotation", ["1", "2", "3"]).pipe(
    Flag.withDescription("PanNuke: fold rotation 1 (1-2-3), 2 (2-1-3) or 3 (3-2-1); default 1"),
    Flag.withDefault("1" as const),
  ),
  json: Flag.String("json").pipe(
    Flag.withDescription("Write the split (sample ids per part) to this JSON file"),
    Flag.optional,
  ),
  tiles: tilesFlag,
  merge: mergeFlag,
}, ({ source, val, test, seed, rotation, json, tiles, merge }) =>
  Effect.gen(function* () {
    const ref = yield* parse(source, tiles, merge);
    yield* checkSourcePath(ref);
    if (!(val >= 0 && test >= 0 && val + test < 1)) {
      return yield* new UsageError({ message: `--val ${val} and --test ${test} must be ≥ 0 and sum below 1` });
    }
    const flags = yield* root;
    const pipeline = Pipeline.empty.source("dataset", datasetSource(ref)).node("split", datasetSplit, {
      inputs: { dataset: "dataset" },
      config: { val, test, seed, rotation: Number(rotation) as 1 | 2 | 3 },
    });
    const { outputs } = yield* Runner.run(pipeline, ["split"]).pipe(
      Effect.provide(
        Layer.mergeAll(storeLayer(flags), Progress.auto),
      ),
    );
    const s = outputs.split;
    yield* Console.log(`${s.method}: train ${s.train.length}, val ${s.val.length}, test ${s.test.length}`);
    if (json._tag === "Some") {
      const path = json.value;
      yield* writeAtomic(path, JSON.stringify(s, null, 2) + "\n");
      yield* Console.log(`wrote ${path}`);
    }
  })).pipe(
    Command.withDescription(
      "Train/val/test sample ids: PanNuke fold rotations, or a seeded split stratified by dominant class. Example: deno task data split consep:../shared/data/consep/Train --val 0.2 --seed 1",
    ),
  );

if (import.meta.main) {
  runTask(
    root.pipe(
      Command.withSubcommands([synth, inspect, show, split, exportCommand]),
      Command.run({ version: "0.1.0" }),
      Effect.provide(NodeServices.layer),
      Effect.asVoid,
    ),
  );
}
