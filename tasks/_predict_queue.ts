/**
 * `deno task predict … --queue URL`: the prediction's expensive work on `deno task worker` processes, through a
 * Redis queue and the shared remote cache (docs/distributed.md). Loaded by predict.ts only with `--queue` (it loads
 * BullMQ), and by the worker.
 *
 * Jobs, both rebuilt by the worker from the coordinator's arguments with `buildPrediction`:
 * - an image: node `predict.I` of the prediction's pipeline (the model on every tile of image I), its id the node's
 *   cache key; the worker computes it with `computeNode` into the shared cache.
 * - a slide: node `slide.NAME`, its id the key its run records once every tile batch is stored (tile_cache.ts
 *   `runDoneKey`: the slide's and checkpoint's content, the backend, tiling, decoding and tissue selection); the
 *   worker predicts the slide with its batches going to the shared cache, its outputs to a scratch folder it then
 *   removes (the coordinator writes its own).
 * Either way the coordinator then runs the prediction as without a queue: every image and every batch a cache hit,
 * every output written here by the same code, so they are those of a local run.
 */
import { Console, Effect } from "effect";
import type { Progress } from "../pipeline/progress.ts";
import { awaitJobs, computeNode, errorLine, keyMismatch, nodeJobs } from "../pipeline/queue/nodes.ts";
import { JobError, settingsFromEnv, type Submission } from "../pipeline/queue/queue.ts";
import { Store } from "../pipeline/store/store.ts";
import type { TfBackend } from "../stages/backend/tf.ts";
import { isRunDone } from "../stages/slide/tile_cache.ts";
import { predictSlides, slideDoneKey } from "./_predict_slides.ts";
import type { Prediction } from "./predict.ts";

/** The node name of a slide's job: `slide.NAME`, NAME its output name (unique in a run). */
const SLIDE_NODE = "slide.";

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** One job per slide whose run is not recorded done in the store, its id that record's key. */
const slideJobs = (built: Prediction, argv: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const store = yield* Store;
    const jobs: Submission[] = [];
    for (const [i, slide] of built.slides.entries()) {
      const id = yield* slideDoneKey(slide, built.info.tile, { ...built.slideRun, store });
      if (yield* Effect.promise(() => isRunDone(store, id))) continue;
      jobs.push({ id, job: { task: "predict", argv: [...argv], node: `${SLIDE_NODE}${built.slideNames[i]}` } });
    }
    return jobs;
  });

/**
 * The coordinator's part: one job per image and per slide not in the cache, enqueued on the queue at `url` and
 * waited for, with a progress line whenever the counts change. `argv` is the task's own (the workers parse it).
 */
export const distributePrediction = (url: string, built: Prediction, argv: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const images = yield* nodeJobs(built.pipeline, built.imageNodes, { task: "predict", argv });
    const slides = yield* slideJobs(built, argv);
    // slides first: the longest jobs, taken first, end last the soonest
    const total = built.imageNodes.length + built.slides.length, jobs = [...slides, ...images];
    yield* Console.error(
      `queue: ${jobs.length} of ${total} jobs to run on workers (${total - jobs.length} cached): ${images.length} of ${
        plural(built.imageNodes.length, "image")
      }, ${slides.length} of ${plural(built.slides.length, "slide")}`,
    );
    yield* awaitJobs(url, jobs, { settings: settingsFromEnv(), say: Console.error });
  });

/**
 * A worker's slide job: `slide.NAME` of `built`, whose done key must be `id`. A slide recorded done is done; a key
 * that differs, or a name the arguments lack, fails the job at once; a prediction that fails is retried.
 */
const computeSlide = (
  built: Prediction,
  node: string,
  id: string,
  say: (line: string) => Effect.Effect<void>,
): Effect.Effect<void, JobError, Store | Progress | TfBackend> =>
  Effect.gen(function* () {
    const fail = (retry: boolean) => (e: unknown) => new JobError({ message: errorLine(e), retry });
    const i = built.slideNames.indexOf(node.slice(SLIDE_NODE.length)), slide = built.slides[i];
    if (slide === undefined) {
      return yield* new JobError({ message: `the arguments name no slide '${node}'`, retry: false });
    }
    const store = yield* Store;
    const run = { ...built.slideRun, store };
    const own = yield* slideDoneKey(slide, built.info.tile, run).pipe(Effect.mapError(fail(true)));
    if (own !== id) return yield* keyMismatch(node, own, id);
    if (
      yield* Effect.promise(() => isRunDone(store, id))
    ) return yield* say(`worker: ${node} is cached already`);
    yield* say(`worker: computing ${node} (${id.slice(0, 12)})`);
    const started = performance.now();
    // the batches are what the coordinator needs; the outputs it writes itself, so these go to a scratch folder
    yield* Effect.acquireUseRelease(
      Effect.promise(() => Deno.makeTempDir({ prefix: "ivaan-worker-slide-" })),
      (scratch) => predictSlides([slide], [built.slideNames[i] as string], { ...run, out: scratch }),
      (scratch) => Effect.promise(() => Deno.remove(scratch, { recursive: true }).catch(() => {})),
    ).pipe(Effect.mapError(fail(true)));
    yield* say(`worker: ${node} computed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });

/** The worker's part: node `node` of the prediction `built` (an image's `predict.I` or a slide's `slide.NAME`). */
export const computePrediction = (
  built: Prediction,
  node: string,
  id: string,
  say: (line: string) => Effect.Effect<void>,
): Effect.Effect<void, JobError, Store | Progress | TfBackend> =>
  node.startsWith(SLIDE_NODE) ? computeSlide(built, node, id, say) : computeNode(built.pipeline, node, id, say);
