/**
 * `deno task report`: one report of a training or ablation run, as Markdown and HTML with plots.
 *
 *   deno task report RUN_DIR [--out DIR]
 *
 * RUN_DIR holds checkpoint.safetensors (a training run: only its JSON header is read; heldout/ adds
 * the confusion of matched nuclei) or ablation.json (an ablation). Writes DIR/report.md,
 * DIR/report.html and DIR/report-*.png (DIR defaults to RUN_DIR); the HTML links the PNGs.
 */
import * as NodeServices from "@effect/platform-node/NodeServices";
import { Console, Effect, Option, Schema } from "effect";
import { Argument, Command, Flag } from "effect/cli";
import { type NpyArray, type NpyData, openNpy } from "../pipeline/codec/npy.ts";
import { readSafetensorsMetadata } from "../pipeline/codec/safetensors.ts";
import { renderPng } from "../stages/report/charts.ts";
import { initBackend } from "../stages/backend/tf.ts";
import { openDataset, parseSource } from "../stages/data/source.ts";
import type { TrainConfig } from "../stages/model/stages.ts";
import { splitDataset, tilesOf } from "../stages/model/train.ts";
import { disposeModel, loadModel } from "../stages/predict/model_tiles.ts";
import { matchedEmbeddings, umapLayout } from "../stages/report/embeddings.ts";
import { addConfusion, type Confusion, emptyConfusion, tileConfusion, tileOf } from "../stages/report/confusion.ts";
import {
  AblationFile,
  ablationReport,
  markdownToHtml,
  type Report,
  TrainingMetadata,
  trainingReport,
} from "../stages/report/report.ts";
import { readRunRecord, runTask, UsageError, writeAtomic } from "./_main.ts";

const EXPECTED =
  "expected a training run folder (with checkpoint.safetensors) or an ablation folder (with ablation.json)";

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

const kindOf = async (path: string): Promise<"file" | "directory" | "missing"> => {
  try {
    const s = await Deno.stat(path);
    return s.isDirectory ? "directory" : "file";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "missing";
    throw e;
  }
};

const numeric = (a: NpyArray, path: string): NpyData => {
  if (ArrayBuffer.isView(a.data)) return a.data;
  throw new Error(`${path}: holds text (${a.dtype}); expected instance ids`);
};

/** The confusion of heldout/masks.npy and pred.npy, read one tile at a time; undefined without them. */
const heldoutConfusion = async (dir: string, classes: number): Promise<Confusion | undefined> => {
  const truthPath = `${dir}/heldout/masks.npy`, predPath = `${dir}/heldout/pred.npy`;
  if (classes < 1 || (await kindOf(truthPath)) !== "file" || (await kindOf(predPath)) !== "file") return undefined;
  const truth = await openNpy(truthPath);
  try {
    const pred = await openNpy(predPath);
    try {
      const [n = 0, h, w, ct = 0] = truth.header.shape, [np, hp, wp, cp = 0] = pred.header.shape;
      if (truth.header.shape.length !== 4 || pred.header.shape.length !== 4 || n !== np || h !== hp || w !== wp) {
        throw new Error(
          `${truthPath} (${truth.header.shape}) and ${predPath} (${pred.header.shape}): expected [N, H, W, 6] arrays of the same N, H and W`,
        );
      }
      if (Math.min(ct, cp) < classes) {
        throw new Error(`${predPath}: ${Math.min(ct, cp)} channels for ${classes} classes; expected one per class`);
      }
      let acc = emptyConfusion(classes);
      for (let i = 0; i < n; i++) {
        const t = await truth.read(i), p = await pred.read(i);
        const tile = tileConfusion(
          tileOf({ shape: t.shape, data: numeric(t, truthPath) }, 0),
          tileOf({ shape: p.shape, data: numeric(p, predPath) }, 0),
          classes,
          `held-out tile ${i}`,
        );
        acc = addConfusion(acc, tile);
      }
      return acc;
    } finally {
      pred.close();
    }
  } finally {
    truth.close();
  }
};

const readText = async (path: string): Promise<string | undefined> =>
  (await kindOf(path)) === "file" ? await Deno.readTextFile(path) : undefined;

const attempt = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (e) => new UsageError({ message: `${what}: ${messageOf(e)}` }) });

const decode = <S extends Schema.Top>(schema: S, value: unknown, what: string) =>
  Schema.decodeUnknownEffect(schema)(value).pipe(
    Effect.mapError((e) => new UsageError({ message: `${what}: ${e.message.replace(/\s+/g, " ")}` })),
  );

/** At most this many held-out tiles feed the embedding figure (≈ 0.3 s each on 2 cores). */
const EMBEDDING_TILES = 64;

/**
 * Vision–language runs: the matched query embeddings of the held-out tiles (the data named by the
 * run.json of deno task train, split as in training) and their UMAP layout; a string says why not.
 */
const heldoutEmbeddings = (dir: string, metadata: Record<string, string>) =>
  Effect.gen(function* () {
    const model = JSON.parse(metadata.model ?? "{}") as { vl?: unknown };
    if (model.vl === undefined) return undefined; // a baseline: no text anchors to show
    const run = yield* readRunRecord(dir);
    if (run === undefined) return "the run folder has no run.json (written by deno task train) naming its data.";
    const parsed = parseSource(run.data ?? "", {
      ...(run.tiles ? { tiles: run.tiles } : {}),
      merge: run.merge ?? false,
    });
    if ("error" in parsed) return `run.json: ${parsed.error}`;
    yield* initBackend("wasm").pipe(Effect.mapError((e) => new UsageError({ message: e.message })));
    return yield* attempt(`held-out embeddings of ${dir}`, async () => {
      const ds = await openDataset({ ...parsed.ref, content: "" });
      const loaded = await loadModel(`${dir}/checkpoint.safetensors`);
      try {
        const config = JSON.parse(metadata.config ?? "{}") as TrainConfig & { size: number };
        const split = await splitDataset(ds, config);
        const tiles = [];
        for (const i of split.val) {
          if (tiles.length >= EMBEDDING_TILES) break;
          tiles.push(...tilesOf(await ds.sample(i), loaded.tile));
        }
        const matched = matchedEmbeddings(loaded, tiles.slice(0, EMBEDDING_TILES));
        if (matched.vectors.length < 3) return "fewer than 3 held-out nuclei were found by the model.";
        return { matched, layout: umapLayout([...matched.vectors, ...matched.anchors]) };
      } finally {
        disposeModel(loaded);
        ds.close();
      }
    });
  });

/** Reads a training run folder and builds its report. */
const training = (dir: string, withEmbeddings: boolean) =>
  Effect.gen(function* () {
    const path = `${dir}/checkpoint.safetensors`;
    const raw = yield* attempt(path, () => readSafetensorsMetadata(path));
    const metadata = yield* decode(TrainingMetadata, raw, `${path}: unexpected metadata`);
    const summary = yield* attempt(`${dir}/summary.md`, () => readText(`${dir}/summary.md`));
    const confusion = yield* attempt(
      `${dir}/heldout`,
      () => heldoutConfusion(dir, Math.min(metadata.classes.length, 5)),
    );
    const embeddings = withEmbeddings ? yield* heldoutEmbeddings(dir, raw) : undefined;
    return trainingReport({
      dir,
      metadata,
      ...(summary === undefined ? {} : { summary }),
      ...(confusion === undefined ? {} : { confusion }),
      ...(embeddings === undefined
        ? {}
        : typeof embeddings === "string"
        ? { embeddingsSkipped: embeddings }
        : { embeddings }),
    });
  });

/** Reads an ablation folder and builds its report. */
const ablation = (dir: string) =>
  Effect.gen(function* () {
    const path = `${dir}/ablation.json`;
    const json = yield* attempt(path, async () => JSON.parse(await Deno.readTextFile(path)) as unknown);
    const file = yield* decode(AblationFile, json, `${path}: not an ablation of deno task ablate`);
    const markdown = yield* attempt(`${dir}/ablation.md`, () => readText(`${dir}/ablation.md`));
    return ablationReport({ dir, ablation: file, ...(markdown === undefined ? {} : { markdown }) });
  });

/** Renders the figures and writes the report's files into `out`; returns the paths written. */
const write = (report: Report, out: string) =>
  Effect.gen(function* () {
    yield* attempt(`cannot create ${out}`, () => Deno.mkdir(out, { recursive: true }));
    const written: string[] = [];
    for (const figure of report.figures) {
      const png = yield* attempt(`cannot render ${figure.file}`, () => renderPng(figure.spec));
      yield* writeAtomic(`${out}/${figure.file}`, png);
      written.push(`${out}/${figure.file}`);
    }
    yield* writeAtomic(`${out}/report.md`, report.markdown);
    yield* writeAtomic(`${out}/report.html`, markdownToHtml(report.markdown, report.title));
    return [`${out}/report.md`, `${out}/report.html`, ...written];
  });

const report = Command.make("report", {
  run: Argument.String("run-dir").pipe(
    Argument.withDescription(
      "A run folder: of deno task train (checkpoint.safetensors) or deno task ablate (ablation.json)",
    ),
  ),
  out: Flag.String("out").pipe(
    Flag.withDescription("Output folder for report.md, report.html and the PNGs (default: the run folder)"),
    Flag.optional,
  ),
  noEmbeddings: Flag.Boolean("no-embeddings").pipe(
    Flag.withDescription(
      "Vision–language runs: skip the UMAP of matched query embeddings (it runs the model on up to 64 held-out tiles of the data named in run.json)",
    ),
    Flag.withDefault(false),
  ),
}, ({ run, out, noEmbeddings }) =>
  Effect.gen(function* () {
    const dir = run.replace(/(?<=.)\/+$/, "");
    const kind = yield* attempt(dir, () => kindOf(dir));
    if (kind === "missing") return yield* new UsageError({ message: `${dir} does not exist; ${EXPECTED}` });
    if (kind === "file") return yield* new UsageError({ message: `${dir} is a file; ${EXPECTED}` });
    const hasCheckpoint = (yield* attempt(dir, () => kindOf(`${dir}/checkpoint.safetensors`))) === "file";
    const hasAblation = (yield* attempt(dir, () => kindOf(`${dir}/ablation.json`))) === "file";
    if (!hasCheckpoint && !hasAblation) {
      return yield* new UsageError({
        message: `${dir} holds neither checkpoint.safetensors (a training run) nor ablation.json (an ablation run)`,
      });
    }
    const built = hasCheckpoint ? yield* training(dir, !noEmbeddings) : yield* ablation(dir);
    const paths = yield* write(built, Option.getOrElse(out, () => dir));
    yield* Console.log(`${built.title}: wrote\n${paths.map((p) => `  ${p}`).join("\n")}`);
  })).pipe(
    Command.withDescription(
      "Write a Markdown + HTML report with plots (losses, per-class PQ, confusion; ablation bars) of a run folder. Example: deno task report runs/consep1200 --out /tmp/report",
    ),
  );

if (import.meta.main) {
  runTask(report.pipe(Command.run({ version: "0.1.0" }), Effect.provide(NodeServices.layer)));
}
