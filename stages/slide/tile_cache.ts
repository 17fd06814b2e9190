/**
 * Resumable whole-slide prediction: every batch of tiles the model predicts is stored under a key of what it depends
 * on — the slide's content digest, the checkpoint's, the decoding, the tiling and the batch's tile positions — so a
 * run killed at any point (`kill -9` included) and started again predicts only the batches it had not stored, and,
 * since stitching and writing are deterministic functions of the tile predictions, writes byte-identical outputs.
 *
 *   predictBatch(tiles) ─► key = sha256(run key, positions of the tiles) ─► hit: the stored predictions
 *                                                                        └► miss: the model, then stored
 *
 * Why batches and not finished bands: the model's forward is ≥ 90 % of a slide's time (docs/benchmarks.md), and a
 * batch is the unit it is spent in; the stitcher's state (the ring of rows, the pending cut nuclei) is cheap to
 * rebuild from the tile predictions, and the outputs are streamed files that a resumed run simply writes again.
 * The same batches come back in the same order on a rerun because the tiling, the tissue tiles and the batch size
 * are all in the run key.
 *
 * Entries live in the pipeline's Store (stage `slide.tiles`), so `deno task cache verify`, `gc` and `clear` see them,
 * a write is atomic (complete or absent), and a remote cache behind the store shares them between machines. Once a
 * run has stored every batch, a small entry (stage `slide.run`, key `runDoneKey`) says so: what
 * `deno task predict --queue` looks for before handing a slide to a worker. The payload is the tiles' instance maps, gzip-compressed (mostly
 * zeros: ≈ 2–10 kB instead of 256 kB a 256² tile of CoNSeP predictions), with their class and score tables.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import { Effect, Option } from "effect";
import { canonicalBytes, type CanonicalValue } from "../../pipeline/key.ts";
import { type Digest, sha256 } from "../../pipeline/hash.ts";
import type { Payload } from "../../pipeline/codec/codec.ts";
import { holds, makeManifest, type StoreShape } from "../../pipeline/store/store.ts";
import type { Tile, TilePrediction } from "../predict/tiling.ts";

/** Where a run's batches are kept: stored predictions by key. */
export interface TileCache {
  readonly get: (key: Digest) => Promise<ReadonlyArray<TilePrediction> | undefined>;
  readonly put: (key: Digest, predictions: ReadonlyArray<TilePrediction>, durationMs: number) => Promise<void>;
}

/**
 * The stage name and version of the stored batches (bump the version when the payload's layout or the decoding
 * changes; 2: nuclei no kept query owns classed by their centroid's query).
 */
export const TILE_STAGE = "slide.tiles", TILE_STAGE_VERSION = "2";

/** The key of a whole run: every input of the tile predictions except the tiles' positions. */
export const runKey = (parts: { readonly [key: string]: CanonicalValue | undefined }): Digest =>
  sha256(canonicalBytes({ stage: TILE_STAGE, version: TILE_STAGE_VERSION, ...parts }));

/** The key of one batch: the run's key and its tiles' top-left corners, in order. */
export const batchKey = (run: Digest, tiles: ReadonlyArray<Pick<Tile, "y0" | "x0">>): Digest =>
  sha256(canonicalBytes({ run, tiles: tiles.map((t) => [t.y0, t.x0]) }));

const gzip = (bytes: Uint8Array): Uint8Array => new Uint8Array(gzipSync(bytes, { level: 1 }));
const gunzip = (bytes: Uint8Array): Uint8Array => new Uint8Array(gunzipSync(bytes));

/**
 * A batch's predictions as payload files: `tiles.json` (per tile: its side² and n, the nuclei), `instances.gz`
 * (the Int32 maps, concatenated, little-endian, gzip), `tables.f32` (per tile classOf then scores, n + 1 each).
 */
export const encodeBatch = (predictions: ReadonlyArray<TilePrediction>): Record<string, Uint8Array> => {
  const shapes = predictions.map((p) => ({ pixels: p.instances.length, n: p.classOf.length - 1 }));
  const pixels = shapes.reduce((s, t) => s + t.pixels, 0), rows = shapes.reduce((s, t) => s + 2 * (t.n + 1), 0);
  const instances = new Int32Array(pixels), tables = new Float32Array(rows);
  let at = 0, row = 0;
  for (const p of predictions) {
    instances.set(p.instances, at), at += p.instances.length;
    tables.set(Float32Array.from(p.classOf), row), row += p.classOf.length;
    tables.set(Float32Array.from(p.scores), row), row += p.scores.length;
  }
  return {
    "tiles.json": new TextEncoder().encode(JSON.stringify(shapes)),
    "instances.gz": gzip(new Uint8Array(instances.buffer)),
    "tables.f32": new Uint8Array(tables.buffer),
  };
};

/** `encodeBatch` undone; a payload that does not add up throws a RangeError naming what is wrong. */
export const decodeBatch = (payload: Readonly<Record<string, Uint8Array>>): TilePrediction[] => {
  const file = (name: string) => {
    const bytes = payload[name];
    if (bytes === undefined) throw new RangeError(`${TILE_STAGE}: payload file ${name} missing`);
    return bytes;
  };
  const shapes = JSON.parse(new TextDecoder().decode(file("tiles.json"))) as Array<{ pixels: number; n: number }>;
  const raw = gunzip(file("instances.gz")), tableBytes = file("tables.f32");
  const pixels = shapes.reduce((s, t) => s + t.pixels, 0), rows = shapes.reduce((s, t) => s + 2 * (t.n + 1), 0);
  if (raw.length !== pixels * 4 || tableBytes.length !== rows * 4) {
    throw new RangeError(
      `${TILE_STAGE}: ${raw.length} + ${tableBytes.length} bytes for ${pixels} pixels, ${rows} rows`,
    );
  }
  const instances = new Int32Array(raw.slice().buffer, 0, pixels); // a copy: the Buffer may be unaligned
  const tables = new Float32Array(tableBytes.slice().buffer);
  let at = 0, row = 0;
  return shapes.map(({ pixels: size, n }) => {
    const map = instances.slice(at, at + size);
    at += size;
    const classOf = Int32Array.from(tables.subarray(row, row + n + 1));
    row += n + 1;
    const scores = tables.slice(row, row + n + 1);
    row += n + 1;
    return { instances: map, classOf, scores };
  });
};

/**
 * A TileCache in a pipeline Store. A corrupt entry (a digest that does not match) is quarantined by the store's
 * `read` and predicted again, like any cache miss.
 */
export const storeTileCache = (store: StoreShape, run: Digest): TileCache => ({
  get: async (key) => {
    const found = await Effect.runPromise(Effect.option(store.lookup(key)));
    if (Option.isNone(found) || Option.isNone(found.value)) return undefined;
    const payload = await Effect.runPromise(Effect.option(store.read(found.value.value)));
    if (Option.isNone(payload)) return undefined;
    await Effect.runPromise(Effect.ignore(store.touch(key)));
    return decodeBatch(payload.value);
  },
  put: (key, predictions, durationMs) =>
    writeEntry(store, key, {
      node: `${TILE_STAGE}.${run.slice(0, 16)}`,
      stage: TILE_STAGE,
      version: TILE_STAGE_VERSION,
      run,
      codec: "slide-tiles/1",
      durationMs,
    }, encodeBatch(predictions)),
});

/** Writes `payload` under `key` as an entry of a slide `run` (no inputs, no environment: the run key holds them). */
const writeEntry = async (
  store: StoreShape,
  key: Digest,
  entry: {
    readonly node: string;
    readonly stage: string;
    readonly version: string;
    readonly run: Digest;
    readonly codec: string;
    readonly durationMs: number;
  },
  payload: Payload,
): Promise<void> => {
  const { run, ...rest } = entry;
  const manifest = makeManifest({ key, ...rest, config: { run }, environment: "", inputs: {} }, payload, new Date());
  await Effect.runPromise(store.write(manifest, payload));
};

/** The stage of the entry that says a slide's run stored all its batches (`markRunDone`). */
export const RUN_DONE_STAGE = "slide.run", RUN_DONE_VERSION = "1";

/**
 * The key of a finished slide run: its run key and the tiles it selects (the tissue threshold, or every tile), so
 * that it names exactly the batches one run stores. `deno task predict --queue` uses it as the slide's job id.
 */
export const runDoneKey = (
  run: Digest,
  selection: { readonly tissueThreshold?: number; readonly allTiles: boolean },
): Digest =>
  sha256(canonicalBytes({
    stage: RUN_DONE_STAGE,
    version: RUN_DONE_VERSION,
    run,
    tissueThreshold: selection.tissueThreshold ?? null,
    allTiles: selection.allTiles,
  }));

/** Whether `store` holds the entry `markRunDone` writes under `key` (a lookup that fails is a no). */
export const isRunDone = (store: StoreShape, key: Digest): Promise<boolean> => Effect.runPromise(holds(store, key));

/**
 * Records under `key` (`runDoneKey`) that a slide's run stored every batch: a small entry (`done.json`: tiles
 * predicted and nuclei found), written once all batches are, so that whoever finds it may count the slide as done
 * without predicting it (a batch gone since is predicted again by the run that misses it, as any cache miss).
 */
export const markRunDone = async (
  store: StoreShape,
  key: Digest,
  run: Digest,
  done: { readonly predicted: number; readonly nuclei: number },
  durationMs: number,
): Promise<void> => {
  await writeEntry(store, key, {
    node: `${RUN_DONE_STAGE}.${key.slice(0, 16)}`,
    stage: RUN_DONE_STAGE,
    version: RUN_DONE_VERSION,
    run,
    codec: "slide-run/1",
    durationMs,
  }, { "done.json": new TextEncoder().encode(JSON.stringify(done)) });
};

/** What a cached predictor did: batches and tiles found in the cache, and predicted. */
export interface CacheCounts {
  hitBatches: number;
  hitTiles: number;
  predictedTiles: number;
}

/** `predictBatch` behind `cache`: a stored batch is returned as it was stored, a new one stored once predicted. */
export const cachedTilePredictor = (
  predictBatch: (tiles: ReadonlyArray<Tile>) => Promise<ReadonlyArray<TilePrediction>>,
  cache: TileCache,
  run: Digest,
  counts: CacheCounts = { hitBatches: 0, hitTiles: 0, predictedTiles: 0 },
) =>
async (tiles: ReadonlyArray<Tile>): Promise<ReadonlyArray<TilePrediction>> => {
  const key = batchKey(run, tiles);
  const stored = await cache.get(key);
  if (stored !== undefined && stored.length === tiles.length) {
    counts.hitBatches++, counts.hitTiles += tiles.length;
    return stored;
  }
  const started = performance.now();
  const predictions = await predictBatch(tiles);
  await cache.put(key, predictions, performance.now() - started);
  counts.predictedTiles += tiles.length;
  return predictions;
};
