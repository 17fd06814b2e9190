/**
 * The whole-slide half of `deno task predict`: each input that OpenSlide reads (`opensAsSlide`) is opened, predicted
 * by `predictSlide` (stages/slide/predict_slide.ts) with one progress line, and reported on stdout; the rest of the
 * task (flags, the image path, summary.json) stays in predict.ts.
 *
 * Slides skip the pipeline's nodes: their outputs are streamed to OUT as they are predicted, never held whole, so
 * there is no one value to store. What is stored, in the same cache, is every batch of tile predictions
 * (stages/slide/tile_cache.ts), keyed by the slide's and the checkpoint's content digests: a killed run resumes where
 * it stopped, and writes the same bytes as one that was never stopped. That cache is the task's Store: with
 * `--remote-cache` the batches are shared, which is how `--queue` hands a slide to a worker (tasks/_predict_queue.ts):
 * the worker stores every batch, and the coordinator's own run of the slide finds them all.
 */
import { Console, Effect } from "effect";
import { sha256Text } from "../pipeline/hash.ts";
import * as Source from "../pipeline/source.ts";
import { Store, type StoreShape } from "../pipeline/store/store.ts";
import type { AttributeWords } from "../stages/attributes/stages.ts";
import { isRunDone, markRunDone, runDoneKey, storeTileCache } from "../stages/slide/tile_cache.ts";
import { Progress, type Tracker } from "../pipeline/progress.ts";
import { TfBackend } from "../stages/backend/tf.ts";
import type { DecodeOptions } from "../stages/model/decoding.ts";
import { disposeModel, loadModel } from "../stages/predict/model_tiles.ts";
import type { TtaOptions } from "../stages/predict/tta.ts";
import { openImageSource } from "../stages/slide/open.ts";
import { predictSlide, slideRunKey, type SlideSummary } from "../stages/slide/predict_slide.ts";
import type { ImageSource } from "../stages/slide/source.ts";
import { UsageError } from "./_main.ts";

/** What every slide of a run shares. */
export interface SlideRun {
  readonly model: string;
  readonly out: string;
  readonly modelMpp: number;
  /** `--mpp` or `--magnification`, overriding each slide's own resolution */
  readonly mpp?: number;
  readonly overlap: number;
  readonly batch: number;
  readonly decode: DecodeOptions;
  readonly tta?: TtaOptions;
  readonly tissueThreshold?: number;
  readonly allTiles: boolean;
  /** the cache that keeps tile predictions (absent: `--no-cache`, nothing kept) */
  readonly store?: StoreShape;
  /** the training data's attribute bins (`--data`, or the run.json beside the model): nuclei described in words */
  readonly words?: AttributeWords;
}

/**
 * The content digest of a file as the pipeline's sources key it (`Source.file`: remembered by size and mtime in the
 * store, so a resumed run does not hash a gigabyte again).
 */
const fileDigest = (store: StoreShape, path: string): Promise<string> =>
  Effect.runPromise(Source.file(path).resolve.pipe(Effect.map((r) => r.digest), Effect.provideService(Store, store)));

/**
 * The content digest of a slide: its file's, and for a folder-backed format (MIRAX's `.mrxs` beside a folder of the
 * same stem) that folder's files' too (`Source.directory`).
 */
const slideDigest = async (store: StoreShape, path: string): Promise<string> => {
  const digest = await fileDigest(store, path), folder = path.replace(/\.[^./]+$/, "");
  const isFolder = folder !== path && (await Deno.stat(folder).then((s) => s.isDirectory, () => false));
  if (!isFolder) return digest;
  const files = await Effect.runPromise(
    Source.directory(folder).resolve.pipe(Effect.map((r) => r.digest), Effect.provideService(Store, store)),
  );
  return sha256Text(`${digest}\0${files}`);
};

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** The content digests of a slide's run key: the slide's and the checkpoint's. */
interface SlideDigests {
  readonly slide: string;
  readonly model: string;
}

/** Where `slide`'s batches are kept in `store`: the tile cache and the content digests of its run key. */
const slideCache = async (store: StoreShape, slide: string, model: string) => ({
  open: (key: string) => storeTileCache(store, key),
  slide: await slideDigest(store, slide),
  model: await fileDigest(store, model),
});

/** The tiles a run selects, as `runDoneKey` names them. */
const selection = (run: SlideRun) => ({
  allTiles: run.allTiles,
  ...(run.tissueThreshold === undefined ? {} : { tissueThreshold: run.tissueThreshold }),
});

/** `source`'s run key and the key of its finished run (tile_cache.ts `runDoneKey`), for a model of `tile`² tiles. */
const doneKey = (source: ImageSource, tile: number, run: SlideRun, digests: SlideDigests) => {
  const runKey = slideRunKey(source, tile, run, digests);
  return { runKey, key: runDoneKey(runKey, selection(run)) };
};

/**
 * Records that `source`'s run stored every batch (unless recorded already), so that `--queue` counts the slide as
 * done rather than hand it to a worker again.
 */
const recordDone = async (
  store: StoreShape,
  source: ImageSource,
  tile: number,
  run: SlideRun,
  digests: SlideDigests,
  summary: SlideSummary,
  durationMs: number,
) => {
  const { runKey, key } = doneKey(source, tile, run, digests);
  if (await isRunDone(store, key)) return;
  await markRunDone(store, key, runKey, { predicted: summary.predicted, nuclei: summary.nuclei }, durationMs);
};

/**
 * The key a run of `slide` records once every batch is stored (tile_cache.ts `markRunDone`), computed without
 * predicting: the slide opened for its levels and resolution only, the model's `tile` from its checkpoint. It is
 * the id of the slide's job with `--queue`. Needs the backend started (it is part of the key).
 */
export const slideDoneKey = (
  slide: string,
  tile: number,
  run: SlideRun & { readonly store: StoreShape },
): Effect.Effect<string, UsageError, TfBackend> =>
  Effect.flatMap(TfBackend, () =>
    Effect.tryPromise({
      try: async () => {
        const source = await openImageSource(slide);
        try {
          return doneKey(source, tile, run, await slideCache(run.store, slide, run.model)).key;
        } finally {
          source.close();
        }
      },
      catch: (e) => new UsageError({ message: message(e).startsWith(slide) ? message(e) : `${slide}: ${message(e)}` }),
    }));

/**
 * Predicts `slides` (written as OUT/NAME.* with `names`), one after the other; each prints
 * `FILE: N nuclei (class counts) on T of U tiles with tissue (F % tissue)`. A slide that cannot be opened or read
 * fails with one line naming it (ImageSourceError's `FILE: reason`; OpenSlide missing: how to install it).
 */
export const predictSlides = (
  slides: ReadonlyArray<string>,
  names: ReadonlyArray<string>,
  run: SlideRun,
): Effect.Effect<Array<{ slide: string; name: string } & SlideSummary>, UsageError, Progress | TfBackend> =>
  Effect.gen(function* () {
    yield* TfBackend; // the backend is started before the first tile
    const progress = yield* Progress;
    yield* Effect.tryPromise({
      try: () => Deno.mkdir(run.out, { recursive: true }),
      catch: (e) => new UsageError({ message: `cannot create ${run.out}: ${message(e)}` }),
    });
    const load = Effect.tryPromise({
      try: () => loadModel(run.model),
      catch: (e) => new UsageError({ message: message(e) }),
    });
    return yield* Effect.acquireUseRelease(load, (model) =>
      Effect.gen(function* () {
        const out: Array<{ slide: string; name: string } & SlideSummary> = [];
        for (const [i, slide] of slides.entries()) {
          const name = names[i] as string;
          const source = yield* Effect.tryPromise({
            try: () => openImageSource(slide),
            catch: (e) => new UsageError({ message: message(e) }),
          });
          let tracker: Tracker | undefined, reported = 0;
          const store = run.store;
          const summary = yield* Effect.tryPromise({
            try: async () => {
              const started = performance.now();
              const cache = store === undefined ? undefined : await slideCache(store, slide, run.model);
              const summary = await predictSlide(source, model, {
                ...(cache === undefined ? {} : { cache }),
                out: run.out,
                name,
                modelMpp: run.modelMpp,
                ...(run.mpp === undefined ? {} : { mpp: run.mpp }),
                overlap: run.overlap,
                batch: run.batch,
                decode: run.decode,
                ...(run.tta === undefined ? {} : { tta: run.tta }),
                ...(run.tissueThreshold === undefined ? {} : { tissueThreshold: run.tissueThreshold }),
                allTiles: run.allTiles,
                ...(run.words === undefined ? {} : { words: run.words }),
                onProgress: (done, total) => {
                  tracker ??= Effect.runSync(progress.start(`predict ${name}`, total));
                  Effect.runSync(tracker.advance(done - reported));
                  reported = done;
                },
              });
              if (store !== undefined && cache !== undefined) {
                await recordDone(store, source, model.tile, run, cache, summary, performance.now() - started);
              }
              return summary;
            },
            // an error of the reader names the file already; anything else is prefixed with it
            catch: (e) => {
              const text = message(e);
              return new UsageError({ message: text.startsWith(slide) ? text : `${slide}: ${text}` });
            },
          }).pipe(Effect.ensuring(Effect.sync(() => {
            source.close();
            if (tracker !== undefined) Effect.runSync(tracker.finish);
          })));
          out.push({ slide, name, ...summary });
          const counts = Object.entries(summary.counts).map(([c, n]) => `${c} ${n}`).join(", ");
          yield* Console.log(
            `${slide}: ${summary.nuclei} nuclei (${counts}) on ${summary.predicted} of ${summary.tiles} tiles${
              run.allTiles ? "" : " with tissue"
            } (${(100 * summary.tissueFraction).toFixed(1)} % tissue; ${
              summary.mpp.toFixed(3)
            } µm/px from the ${summary.mppFrom}, level ${summary.level}${summary.resampled ? ", resampled" : ""}${
              summary.cachedTiles ? `; ${summary.cachedTiles} tiles from the cache` : ""
            })`,
          );
        }
        return out;
      }), (model) => Effect.sync(() => disposeModel(model)));
  });
