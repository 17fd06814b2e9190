/**
 * `deno task predict`: a trained checkpoint on PNG/JPEG/TIFF images of any size, and on whole slides.
 *
 *   deno task predict --model runs/train/checkpoint.safetensors --input slide.png [--input more/] [--out DIR]
 *                     [--mpp 0.5 | --magnification 20] [--overlap 64] [--batch 4] [--data SOURCE]
 *                     [--tissue-threshold 0.1] [--all-tiles] [--cache DIR] [--remote-cache URL] [--queue redis://…]
 *
 * Each image is cut into overlapping tiles of the model's size, predicted in batches and stitched
 * (stages/predict/tiling.ts); the prediction is cached under the contents of image and model.
 * Per image, OUT gets instances/NAME.png (16-bit ids), classes/NAME.png (class + 1), npy/,
 * overlays/NAME.png, nuclei/NAME.json, geojson/NAME.geojson (QuPath) and pannuke/NAME.npy; with
 * instances/ and classes/ side by side, `deno task evaluate folder --pred OUT` scores the run.
 *
 * Whole slides — what OpenSlide reads: .svs .ndpi .mrxs .scn …, or a TIFF it recognises, such as a tiled pyramid —
 * take another path (tasks/_predict_slides.ts, stages/slide/predict_slide.ts): read at the model's resolution from
 * the right pyramid level, tissue tiles only, nuclei streamed to OUT/NAME.geojson and OUT/NAME.csv, with
 * OUT/NAME.tissue.png and OUT/NAME.overlay.png on a thumbnail; never held whole, their tile batches cached (a killed
 * run resumes).
 *
 * With `--queue redis://HOST:PORT --remote-cache URL` (tasks/_predict_queue.ts, docs/distributed.md) the images'
 * predictions and the slides' tile batches are computed by `deno task worker` processes, one job per image and per
 * slide, which rebuild this run with `buildPrediction` from the same arguments; the outputs are then written here
 * by the same code as without a queue, every prediction a cache hit.
 */
import { recipeDecodeOptions } from "../stages/model/recipe.ts";
import { defaultDenseDecodeOptions } from "../stages/model/dense_decoding.ts";
import * as NodeServices from "@effect/platform-node/NodeServices";
import { Console, Effect, Layer, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { Pipeline, Progress, Runner, Source } from "../mod.ts";
import { Store } from "../pipeline/store/store.ts";
import type { TensorFile } from "../pipeline/codec/safetensors.ts";
import type { StageError, StageRequirements } from "../pipeline/stage.ts";
import {
  attributeBins,
  attributeSelection,
  attributeWords,
  maskFeaturesStage,
  trainingNuclei,
} from "../stages/attributes/stages.ts";
import type { AttributeWords } from "../stages/attributes/stages.ts";
import { BACKENDS, layer as backendLayer } from "../stages/backend/tf.ts";
import { IMAGE_FILE, readRgb } from "../stages/data/image.ts";
import { opensAsSlide, SLIDE_FILE } from "../stages/slide/open.ts";
import { checkSourcePath, datasetSource, parseSource, SOURCE_HELP } from "../stages/data/source.ts";
import { imageOutputs } from "../stages/predict/outputs.ts";
import { PANNUKE_CHANNELS } from "../stages/model/heldout.ts";
import { DEFAULT_MODEL_MPP, mppOfMagnification, scaleImage } from "../stages/predict/scale.ts";
import { decodeOptionsOf, predictImage, storedPrediction, ttaOf } from "../stages/predict/stages.ts";
import { readCheckpointInfo } from "../stages/predict/model_tiles.ts";
import {
  cacheFlag,
  mergeFlag,
  noCacheFlag,
  noteMissingBlas,
  queueFlag,
  queueUrl,
  readRunRecord,
  remoteCacheFlag,
  runTask,
  storeLayer,
  tilesFlag,
  UsageError,
  writeAtomic,
} from "./_main.ts";
import { predictSlides, type SlideRun } from "./_predict_slides.ts";

type Stages =
  | typeof maskFeaturesStage
  | typeof trainingNuclei
  | typeof attributeSelection
  | typeof attributeBins
  | typeof attributeWords
  | typeof predictImage;
/** Node names are generated (one per image): nodes are a widened record, outputs read by name. */
type PredictPipeline = Pipeline<Record<string, never>, StageError<Stages>, StageRequirements<Stages>>;
const name = (n: string): string => n;

/** The images named by `--input`: files as given, folders walked (sorted), anything else an error. */
const inputImages = (inputs: ReadonlyArray<string>) =>
  Effect.tryPromise({
    try: async () => {
      const found: string[] = [];
      const walk = async (dir: string) => {
        const entries = [];
        for await (const e of Deno.readDir(dir)) entries.push(e);
        entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        for (const e of entries) {
          if (e.isDirectory) await walk(`${dir}/${e.name}`);
          else if (e.isFile && (IMAGE_FILE.test(e.name) || SLIDE_FILE.test(e.name))) found.push(`${dir}/${e.name}`);
        }
      };
      for (const input of inputs) {
        const stat = await Deno.stat(input).catch(() => undefined);
        if (stat === undefined) throw new Error(`--input: ${input} does not exist`);
        if (stat.isDirectory) {
          const before = found.length;
          await walk(input.replace(/\/+$/, ""));
          if (found.length === before) throw new Error(`--input: no .png, .jpg, .tif image or slide under ${input}`);
        } else if (IMAGE_FILE.test(input) || SLIDE_FILE.test(input)) found.push(input);
        else {
          throw new Error(
            `--input: ${input} is not a PNG, JPEG or TIFF image nor a whole slide (.svs, .ndpi, .mrxs, …) by its extension`,
          );
        }
      }
      return found;
    },
    catch: (e) => new UsageError({ message: e instanceof Error ? e.message : String(e) }),
  });

/** Output names: the file name without extension; two inputs with one name are an error. */
const outputNames = (files: ReadonlyArray<string>) => {
  const names = files.map((f) => (f.split("/").at(-1) ?? f).replace(IMAGE_FILE, "").replace(SLIDE_FILE, ""));
  const clash = names.findIndex((n, i) => names.indexOf(n) !== i);
  return clash < 0 ? { names } : {
    error: `--input: ${files[names.indexOf(names[clash] as string)]} and ${files[clash]} would both be written as '${
      names[clash]
    }'; predict them in two runs with different --out`,
  };
};

/** The flags of `deno task predict`; a worker parses a job's arguments with them too (tasks/worker.ts). */
export const predictFlags = {
  model: Flag.String("model").pipe(
    Flag.withDescription("Checkpoint of deno task train (e.g. runs/train/checkpoint.safetensors)"),
  ),
  input: Flag.String("input").pipe(
    Flag.withDescription(
      "Image file (PNG, JPEG, TIFF) or folder of them, any size, or a whole slide (.svs .ndpi .mrxs .scn .bif, pyramidal TIFF; through OpenSlide); repeatable. A slide writes OUT/NAME.geojson (QuPath), OUT/NAME.csv (a row per nucleus), OUT/NAME.tissue.png (the tissue found) and OUT/NAME.overlay.png (nuclei on a thumbnail)",
    ),
    Flag.atLeast(1),
  ),
  out: Flag.String("out").pipe(
    Flag.withDescription("Output folder (default predictions)"),
    Flag.withDefault("predictions"),
  ),
  mpp: Flag.Finite("mpp").pipe(
    Flag.withDescription(
      "Microns per pixel of the input images (default: a slide's own, else the model's); images are rescaled to the model's",
    ),
    Flag.optional,
  ),
  magnification: Flag.Finite("magnification").pipe(
    Flag.withDescription("Objective magnification of the inputs instead of --mpp (40 ≈ 0.25 µm/px, 20 ≈ 0.5)"),
    Flag.optional,
  ),
  modelMpp: Flag.Finite("model-mpp").pipe(
    Flag.withDescription(
      `Microns per pixel of the training data (default ${DEFAULT_MODEL_MPP}: PanNuke, CoNSeP, MoNuSeg and the synthetic data are 40×)`,
    ),
    Flag.withDefault(DEFAULT_MODEL_MPP),
  ),
  overlap: Flag.Int("overlap").pipe(
    Flag.withDescription(
      "Pixels (at the model's resolution) shared by neighbouring tiles, below half the tile; a nucleus narrower than half of it is never cut (default: a quarter of the tile, 64 for 256² tiles)",
    ),
    Flag.optional,
  ),
  batch: Flag.Int("batch").pipe(Flag.withDescription("Tiles per forward pass (default 4)"), Flag.withDefault(4)),
  threshold: Flag.Finite("threshold").pipe(
    Flag.withDescription(
      `Keep a query whose objectness exceeds this, in (0, 1) (default ${recipeDecodeOptions.scoreThreshold})`,
    ),
    Flag.withDefault(recipeDecodeOptions.scoreThreshold),
  ),
  foreground: Flag.Finite("foreground").pipe(
    Flag.withDescription(
      `Models with dense supervision (preset conv): pixels whose foreground probability is below this are background, and a nucleus losing over half its pixels so is dropped, in [0, 1) (default ${recipeDecodeOptions.foregroundThreshold}; 0 = the map is unused)`,
    ),
    Flag.withDefault(recipeDecodeOptions.foregroundThreshold),
  ),
  instances: Flag.Literals("instances", ["queries", "dense", "hybrid", "centers"] as const).pipe(
    Flag.withDescription(
      "Where nuclei come from, for models with dense supervision (preset conv): centers (default: the centre head's peaks grown over the dense foreground), hybrid (the queries' nuclei grown over it, plus foreground no query reaches), dense (HoVer-Net-style watershed of the foreground and distance maps) or queries (the Mask2Former decoding, what models without dense maps always use); classes always from the queries",
    ),
    Flag.withDefault(recipeDecodeOptions.instances),
  ),
  energy: Flag.Finite("energy").pipe(
    Flag.withDescription(
      `--instances dense: the distance maps' gradient above which a pixel is a boundary between nuclei (default ${defaultDenseDecodeOptions.energyThreshold})`,
    ),
    Flag.withDefault(defaultDenseDecodeOptions.energyThreshold),
  ),
  centerThreshold: Flag.Finite("center-threshold").pipe(
    Flag.withDescription(
      `--instances centers: the centre probability from which a peak is a nucleus (default ${defaultDenseDecodeOptions.centerThreshold})`,
    ),
    Flag.optional,
  ),
  boundaryWeight: Flag.Finite("boundary-weight").pipe(
    Flag.withDescription(
      `--instances centers: the weight α of the distance maps' boundary energy in the watershed's flooding order, 1 − σ(centre) + α·energy, so that touching nuclei part where their distance maps jump, α ≥ 0; 0 = the centre heat alone (default ${defaultDenseDecodeOptions.boundaryWeight})`,
    ),
    Flag.withDefault(defaultDenseDecodeOptions.boundaryWeight ?? 0),
  ),
  classBias: Flag.String("class-bias").pipe(
    Flag.withDescription(
      "Comma-separated offsets, one per class of the model, added to the queries' log class probabilities before each nucleus takes its most likely class, e.g. 0,0.5,-0.5,0 for CoNSeP's merged classes: moves the classes' decision boundaries (which nuclei are found does not change) (default: none)",
    ),
    Flag.optional,
  ),
  tta: Flag.Int("tta").pipe(
    Flag.withDescription(
      "Test-time augmentation: predict each tile also flipped (left–right, top–bottom, both) and keep a nucleus when at least this many of the 4 variants find it (IoU > 0.5), with their majority class; costs 4× the forward passes (default: off)",
    ),
    Flag.optional,
  ),
  ttaAverage: Flag.Boolean("tta-average").pipe(
    Flag.withDescription(
      "Test-time augmentation for conv models: predict each tile also flipped (left–right, top–bottom, both), flip the dense, centre and type maps back, average them and decode once; costs 4× the forward passes; not with --tta (default: off)",
    ),
    Flag.withDefault(false),
  ),
  ttaRot90: Flag.Boolean("tta-rot90").pipe(
    Flag.withDescription(
      "With --tta-average: average over the eight symmetries of the square (the four flips of the tile and of its transpose: the 90° rotations and the diagonal reflections) instead of the four flips; costs 8× the forward passes (default: off)",
    ),
    Flag.withDefault(false),
  ),
  data: Flag.String("data").pipe(
    Flag.withDescription(
      `The training data (${SOURCE_HELP}), whose fitted attribute bins describe each nucleus (default: the run.json next to --model; without either, no attribute words)`,
    ),
    Flag.optional,
  ),
  tissueThreshold: Flag.Finite("tissue-threshold").pipe(
    Flag.withDescription(
      "Whole slides: the saturation, in [0, 1], above which a thumbnail pixel is tissue (default: Otsu's threshold of the slide, clamped to [0.05, 0.25]); only tiles with tissue are predicted",
    ),
    Flag.optional,
  ),
  allTiles: Flag.Boolean("all-tiles").pipe(
    Flag.withDescription("Whole slides: predict every tile, background included (no tissue selection)"),
    Flag.withDefault(false),
  ),
  tiles: tilesFlag,
  merge: mergeFlag,
  binning: Flag.Literals("binning", ["entropy", "quantile"] as const).pipe(
    Flag.withDescription("Attribute bins: entropy (supervised, default) or quantile"),
    Flag.optional,
  ),
  backend: Flag.Literals("backend", BACKENDS).pipe(
    Flag.withDescription("tfjs backend (default wasm)"),
    Flag.withDefault("wasm" as const),
  ),
  threads: Flag.Int("threads").pipe(Flag.withDescription("Threads of the native BLAS on wasm"), Flag.optional),
  cache: cacheFlag,
  remoteCache: remoteCacheFlag,
  noCache: noCacheFlag,
  queue: queueFlag.pipe(
    Flag.withDescription(
      "Predict on `deno task worker` processes through this Redis, e.g. redis://10.0.0.5:6379: one job per image and " +
        "one per slide (its tile batches), waited for, then every output written here from the shared cache, as a " +
        "local run writes it; needs --remote-cache (the results travel through it) and Deno's --allow-net for both " +
        "hosts: see docs/distributed.md",
    ),
  ),
} as const;
export type PredictFlags = Command.Command.Config.Infer<typeof predictFlags>;

/**
 * The prediction's DAG and everything else a run needs, from the flags (checked; a mistake is a UsageError): the
 * pipeline (the checkpoint, the training data's attribute chain when known, one `predict.I` node per image), the
 * image nodes (what `--queue` hands to workers), the slides and what their runs share, and the backend's layer.
 * The task and the worker (tasks/worker.ts) both build it from the same arguments, so their keys agree.
 */
export const buildPrediction = (f: PredictFlags) =>
  Effect.gen(function* () {
    const fail = (message: string) => Effect.fail(new UsageError({ message }));
    const modelStat = yield* Effect.promise(() => Deno.stat(f.model).catch(() => undefined));
    if (modelStat?.isFile !== true) {
      return yield* fail(`--model: ${f.model} is not a file (expected OUT/checkpoint.safetensors of deno task train)`);
    }
    if (Option.isSome(f.mpp) && Option.isSome(f.magnification)) {
      return yield* fail("give --mpp or --magnification, not both");
    }
    const mpp = Option.isSome(f.magnification)
      ? mppOfMagnification(f.magnification.value)
      : Option.getOrElse(f.mpp, () => f.modelMpp);
    if (!(mpp > 0) || !(f.modelMpp > 0)) return yield* fail("--mpp, --magnification and --model-mpp must be positive");
    const scale = mpp / f.modelMpp;
    if (scale < 0.1 || scale > 10) return yield* fail(`--mpp: a rescaling by ${scale.toFixed(3)} is outside [0.1, 10]`);
    const threads = Option.getOrUndefined(f.threads);
    if (threads !== undefined && threads < 1) return yield* fail(`--threads must be at least 1, found ${threads}`);
    const inputs = yield* inputImages(f.input);
    const named = outputNames(inputs);
    if ("error" in named) return yield* fail(named.error as string);
    // whole slides (what OpenSlide reads) go to predictSlides, everything else through the image pipeline
    const isSlide = yield* Effect.promise(() => Promise.all(inputs.map(opensAsSlide)));
    const files = inputs.filter((_, i) => !isSlide[i]), names = named.names.filter((_, i) => !isSlide[i]);
    const slides = inputs.filter((_, i) => isSlide[i]), slideNames = named.names.filter((_, i) => isSlide[i]);
    const tissueThreshold = Option.getOrUndefined(f.tissueThreshold);
    if (tissueThreshold !== undefined && !(tissueThreshold >= 0 && tissueThreshold <= 1)) {
      return yield* fail(`--tissue-threshold must be a saturation in [0, 1], found ${tissueThreshold}`);
    }
    const classBias = Option.isSome(f.classBias)
      ? f.classBias.value.split(",").map((v) => Number(v.trim()))
      : undefined;
    if (classBias !== undefined && classBias.some((v) => !Number.isFinite(v))) {
      return yield* fail(`--class-bias must be comma-separated numbers, found '${Option.getOrThrow(f.classBias)}'`);
    }
    const info = yield* Effect.tryPromise({
      try: () => readCheckpointInfo(f.model),
      catch: (e) => new UsageError({ message: `--model: ${e instanceof Error ? e.message : e}` }),
    });
    if (classBias !== undefined && classBias.length !== info.classes.length) {
      return yield* fail(
        `--class-bias needs one value per class of the model (${info.classes.join(", ")}), found ${classBias.length}`,
      );
    }
    const overlap = Option.getOrElse(f.overlap, () => Math.floor(info.tile / 4));
    if (!(overlap >= 0 && overlap < info.tile / 2)) {
      return yield* fail(
        `--overlap must be in [0, ${info.tile / 2}) for this model's ${info.tile}² tiles, found ${overlap}`,
      );
    }
    if (f.batch < 1) return yield* fail(`--batch must be positive, found ${f.batch}`);
    if (!(f.threshold > 0 && f.threshold < 1)) {
      return yield* fail(`--threshold must be in (0, 1), found ${f.threshold}`);
    }

    // the attribute bins of the training data (the cached chain of deno task attributes)
    const record = yield* readRunRecord(f.model.includes("/") ? f.model.slice(0, f.model.lastIndexOf("/")) : ".");
    const dataSpec = Option.getOrElse(f.data, () => record?.data);
    let p: PredictPipeline = Pipeline.dynamic<never>().source(name("checkpoint"), Source.file(f.model));
    if (dataSpec !== undefined) {
      const parsed = parseSource(dataSpec, {
        tiles: Option.isSome(f.data) ? f.tiles : record?.tiles ?? f.tiles,
        merge: Option.isSome(f.data) ? f.merge : record?.merge ?? f.merge,
      });
      if ("error" in parsed) return yield* fail(`--data: ${parsed.error}`);
      yield* checkSourcePath(parsed.ref);
      const method = Option.getOrElse(f.binning, () => record?.binning ?? "entropy");
      const trained = JSON.parse(info.metadata.config ?? "{}") as { seed?: number; valFraction?: number };
      p = p.source(name("dataset"), datasetSource(parsed.ref))
        .node(name("features"), maskFeaturesStage, { inputs: { dataset: "dataset" } })
        // the bins of the run's own training split, as its training used (its seed and fraction)
        .node(name("training"), trainingNuclei, {
          inputs: { table: "features", dataset: "dataset" },
          config: { seed: trained.seed ?? 0, valFraction: trained.valFraction ?? 0.2 },
        })
        .node(name("selection"), attributeSelection, { inputs: { table: "training" } })
        .node(name("bins"), attributeBins, {
          inputs: { table: "training", selection: "selection" },
          config: { method },
        })
        .node(name("words"), attributeWords, { inputs: { fit: "bins" } });
    }
    if (!(f.foreground >= 0 && f.foreground < 1)) {
      return yield* fail(`--foreground must be in [0, 1), found ${f.foreground}`);
    }
    if (!(f.boundaryWeight >= 0)) return yield* fail(`--boundary-weight must be at least 0, found ${f.boundaryWeight}`);
    const tta = Option.getOrUndefined(f.tta);
    if (tta !== undefined && !(tta >= 1 && tta <= 4)) {
      return yield* fail(`--tta must be a number of votes from 1 to 4, found ${tta}`);
    }
    if (tta !== undefined && f.ttaAverage) {
      return yield* fail("--tta and --tta-average are two ways to combine the flips: give one of them");
    }
    if (f.ttaRot90 && !f.ttaAverage) return yield* fail("--tta-rot90 adds variants to --tta-average: give both");
    const config = {
      scale,
      overlap,
      batch: f.batch,
      scoreThreshold: f.threshold,
      ...(f.foreground > 0 ? { foregroundThreshold: f.foreground } : {}),
      ...(classBias === undefined ? {} : { classBias }),
      ...(tta === undefined ? {} : { ttaVotes: tta }),
      ...(f.ttaAverage ? { ttaAverage: true as const } : {}),
      ...(f.ttaRot90 ? { ttaRot90: true as const } : {}),
      ...(f.instances === "queries" ? {} : {
        denseInstances: {
          rule: f.instances,
          energyThreshold: f.energy,
          minArea: defaultDenseDecodeOptions.minArea,
          ...(Option.isSome(f.centerThreshold) ? { centerThreshold: f.centerThreshold.value } : {}),
          ...(f.boundaryWeight > 0 ? { boundaryWeight: f.boundaryWeight } : {}),
        },
      }),
    };
    files.forEach((file, i) => {
      p = p.source(`image.${i}`, Source.file(file))
        .node(`predict.${i}`, predictImage, { inputs: { image: `image.${i}`, checkpoint: "checkpoint" }, config });
    });
    const ttaOptions = ttaOf(config);
    // what every slide's run shares (its store and attribute words are the run's own: see runPrediction)
    const slideRun: SlideRun = {
      model: f.model,
      out: f.out,
      modelMpp: f.modelMpp,
      ...(Option.isSome(f.mpp) || Option.isSome(f.magnification) ? { mpp } : {}),
      overlap,
      batch: f.batch,
      decode: decodeOptionsOf(config),
      ...(ttaOptions === undefined ? {} : { tta: ttaOptions }),
      ...(tissueThreshold === undefined ? {} : { tissueThreshold }),
      allTiles: f.allTiles,
    };
    return {
      pipeline: p,
      files,
      names,
      imageNodes: files.map((_, i) => `predict.${i}`),
      slides,
      slideNames,
      slideRun,
      dataSpec,
      info,
      mpp,
      scale,
      overlap,
      services: backendLayer(f.backend, threads === undefined ? {} : { threads }),
    };
  });
export type Prediction = Effect.Success<ReturnType<typeof buildPrediction>>;

/**
 * The run itself, with the store, progress and backend provided: with `queue`, the images' predictions and the
 * slides' tile batches on the workers first (tasks/_predict_queue.ts); then, as without a queue, the slides and
 * the images here (the queued work then cache hits), and every output written.
 */
const runPrediction = (f: PredictFlags, built: Prediction, queue: string | undefined) =>
  Effect.gen(function* () {
    const { pipeline: p, files, names, slides, slideNames, dataSpec, info, mpp, scale, overlap } = built;
    const started = performance.now();
    if (queue !== undefined) {
      const { distributePrediction } = yield* Effect.promise(() => import("./_predict_queue.ts"));
      yield* distributePrediction(queue, built, Deno.args);
    }
    // slides describe their nuclei with the training data's attribute bins too: computed first (cached as a node)
    const slideWords = slides.length === 0 || dataSpec === undefined
      ? undefined
      : (yield* Runner.run(p, ["words"], { concurrency: 1 })).outputs.words as AttributeWords;
    // slides keep their tile batches in the task's store (a killed run resumes; a remote cache shares them)
    const slideStore = slides.length === 0 || f.noCache ? undefined : yield* Store;
    const slideSummaries = slides.length === 0 ? [] : yield* predictSlides(slides, slideNames, {
      ...built.slideRun,
      ...(slideStore === undefined ? {} : { store: slideStore }),
      ...(slideWords === undefined ? {} : { words: slideWords }),
    });
    const summaryJson = (images: ReadonlyArray<unknown>) =>
      writeAtomic(
        `${f.out}/summary.json`,
        JSON.stringify(
          {
            model: f.model,
            mpp,
            modelMpp: f.modelMpp,
            scale,
            overlap,
            images,
            ...(slides.length === 0 ? {} : { slides: slideSummaries }),
          },
          null,
          1,
        ) + "\n",
      );
    if (files.length === 0) {
      yield* summaryJson([]);
      return yield* Console.log(
        `wrote ${f.out}/: NAME.geojson, NAME.csv, NAME.tissue.png, NAME.overlay.png and summary.json for ${slides.length} slide${
          slides.length === 1 ? "" : "s"
        } in ${((performance.now() - started) / 1000).toFixed(0)} s`,
      );
    }
    const targets = [...(dataSpec === undefined ? [] : ["words"]), ...built.imageNodes];
    const { outputs, report } = yield* Runner.run(p, targets, { concurrency: 1 });
    const all = outputs as Record<string, unknown>;
    const words = all.words as AttributeWords | undefined;
    if (words === undefined) {
      yield* Console.error(
        "note: no attribute words (pass --data SOURCE, the training data, to describe nuclei by its fitted bins)",
      );
    }

    yield* Effect.tryPromise({
      try: () => Deno.mkdir(f.out, { recursive: true }),
      catch: (e) => new UsageError({ message: `cannot create ${f.out}: ${e instanceof Error ? e.message : e}` }),
    });
    const summary: Array<Record<string, unknown>> = [];
    for (const [i, file] of files.entries()) {
      const name = names[i] as string, stored = storedPrediction(all[`predict.${i}`] as TensorFile);
      const written = yield* Effect.tryPromise({
        try: async () => {
          // decoded once: the overlay and geometry read the original, the attributes the scaled image
          const original = await readRgb(file);
          const scaled = await scaleImage(original, scale, file);
          return await imageOutputs(name, original, scaled, stored, words);
        },
        catch: (e) => new UsageError({ message: `${file}: ${e instanceof Error ? e.message : e}` }),
      });
      for (const [path, content] of written.files) {
        const target = `${f.out}/${path}`;
        yield* Effect.promise(() => Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true }));
        yield* writeAtomic(target, content);
      }
      for (const note of written.notes) yield* Console.error(`note: ${file}: ${note}`);
      const cached = report.find((s) => s.node === `predict.${i}`)?.status === "hit";
      summary.push({
        image: file,
        name,
        nuclei: written.nuclei.length,
        counts: written.counts,
        cached,
        notes: written.notes,
      });
      yield* Console.log(
        `${file}: ${written.nuclei.length} nuclei (${
          Object.entries(written.counts).map(([c, n]) => `${c} ${n}`).join(", ")
        })${cached ? " (prediction from the cache)" : ""}`,
      );
    }
    yield* summaryJson(summary);
    yield* Console.log(
      `wrote ${f.out}/: instances/, classes/, npy/, overlays/, nuclei/, geojson/${
        info.classes.length <= PANNUKE_CHANNELS ? ", pannuke/" : ""
      }${
        slides.length === 0 ? "" : ", the slides' NAME.geojson, .csv, .tissue.png, .overlay.png"
      } and summary.json for ${files.length} image${files.length === 1 ? "" : "s"}${
        slides.length === 0 ? "" : ` and ${slides.length} slide${slides.length === 1 ? "" : "s"}`
      } in ${
        ((performance.now() - started) / 1000).toFixed(0)
      } s\nscore against truth maps in the same layout: deno task evaluate folder --true TRUTH_DIR --pred ${f.out}`,
    );
  });

const predict = Command.make("predict", predictFlags, (f) =>
  Effect.gen(function* () {
    const queue = yield* queueUrl(f);
    if (queue !== undefined && f.noCache) {
      return yield* new UsageError({
        message: "--queue needs the cache (the workers' results arrive through it): drop --no-cache",
      });
    }
    const built = yield* buildPrediction(f);
    yield* noteMissingBlas(f.backend, "prediction");
    yield* runPrediction(f, built, queue).pipe(
      Effect.provide(Layer.mergeAll(storeLayer(f), Progress.auto, built.services)),
    );
  })).pipe(Command.withDescription(
    "Predict nuclei on images of any size with a trained checkpoint: instance and class maps, overlays, per-nucleus JSON with attribute descriptions, QuPath GeoJSON. Whole slides (SVS, NDPI, MRXS, pyramidal TIFF, … through OpenSlide) are read at the model's resolution, tissue tiles only, and streamed to OUT/NAME.geojson, OUT/NAME.csv, OUT/NAME.tissue.png and OUT/NAME.overlay.png. With --queue, the images' predictions and the slides' tiles are computed by `deno task worker` processes on other machines (docs/distributed.md). Example: deno task predict --model runs/train/checkpoint.safetensors --input slide.png --out predictions",
  ));

if (import.meta.main) {
  runTask(predict.pipe(Command.run({ version: "0.1.0" }), Effect.provide(NodeServices.layer)));
}
