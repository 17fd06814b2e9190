import assert from "node:assert/strict";
import { Effect, Option } from "effect";
import { makeMemoryStore } from "../../pipeline/store/memory.ts";
import type { Tile, TilePrediction } from "../predict/tiling.ts";
import {
  batchKey,
  cachedTilePredictor,
  decodeBatch,
  encodeBatch,
  isRunDone,
  markRunDone,
  RUN_DONE_STAGE,
  runDoneKey,
  runKey,
  storeTileCache,
} from "./tile_cache.ts";

/** A fake model: tile i of a batch gets i + 1 nuclei, scores from its position. */
const fakePredictions = (tiles: ReadonlyArray<Tile>): TilePrediction[] =>
  tiles.map((t, i) => {
    const instances = new Int32Array(16 * 16);
    for (let id = 1; id <= i + 1; id++) instances.fill(id, id * 20, id * 20 + 10);
    return {
      instances,
      classOf: Int32Array.from({ length: i + 2 }, (_, k) => (k === 0 ? -1 : k % 3)),
      scores: Float32Array.from({ length: i + 2 }, (_, k) => (k === 0 ? 0 : (t.x0 + t.y0 + k) / 1000)),
    };
  });
const tiles = (n: number, y0 = 0): Tile[] =>
  Array.from({ length: n }, (_, i) => ({ rgb: new Uint8Array(16 * 16 * 3), y0, x0: 16 * i }));

Deno.test("tile batches: encodeBatch/decodeBatch round-trip the instance maps, classes and scores exactly", () => {
  const predictions = fakePredictions(tiles(3));
  const back = decodeBatch(encodeBatch(predictions));
  assert.equal(back.length, 3);
  back.forEach((b, i) => {
    const p = predictions[i] as TilePrediction;
    assert.deepEqual(Array.from(b.instances), Array.from(p.instances));
    assert.deepEqual(Array.from(b.classOf), Array.from(p.classOf));
    assert.deepEqual(Array.from(b.scores), Array.from(p.scores));
  });
  const payload = encodeBatch(predictions);
  assert.throws(() => decodeBatch({ ...payload, "tables.f32": new Uint8Array(4) }), /bytes for/);
});

Deno.test("cachedTilePredictor: a second run predicts nothing; another run key or other tiles miss; corrupt entries are predicted again", async () => {
  const { store } = await Effect.runPromise(makeMemoryStore);
  let calls = 0;
  const model = (t: ReadonlyArray<Tile>) => (calls += t.length, Promise.resolve(fakePredictions(t)));
  const run = runKey({ slide: "a", model: "b" });
  const counts = { hitBatches: 0, hitTiles: 0, predictedTiles: 0 };
  const first = await cachedTilePredictor(model, storeTileCache(store, run), run)(tiles(2));
  const again = await cachedTilePredictor(model, storeTileCache(store, run), run, counts)(tiles(2));
  assert.equal(calls, 2, "the second run read the batch from the store");
  assert.deepEqual(counts, { hitBatches: 1, hitTiles: 2, predictedTiles: 0 });
  assert.deepEqual(Array.from((again[1] as TilePrediction).scores), Array.from((first[1] as TilePrediction).scores));
  await cachedTilePredictor(model, storeTileCache(store, run), run)(tiles(2, 16));
  const other = runKey({ slide: "a", model: "c" });
  await cachedTilePredictor(model, storeTileCache(store, other), other)(tiles(2));
  assert.equal(calls, 6, "other positions and another model are misses");
  assert.notEqual(batchKey(run, tiles(2)), batchKey(run, tiles(2, 16)));

  // a stored payload altered after the fact fails the store's digest check: predicted again, not handed out
  const key = batchKey(run, tiles(2));
  const found = await Effect.runPromise(store.lookup(key));
  assert.ok(Option.isSome(found));
  const manifest = found.value;
  const payload = await Effect.runPromise(store.read(manifest));
  const tables = payload["tables.f32"] as Uint8Array;
  tables[4] = (tables[4] as number) ^ 0xff;
  await Effect.runPromise(store.remove(key));
  await Effect.runPromise(store.write(manifest, payload)); // the old manifest over new bytes: a corrupt entry
  const fresh = await cachedTilePredictor(model, storeTileCache(store, run), run)(tiles(2));
  assert.equal(calls, 8, "the corrupt entry was predicted again");
  assert.deepEqual(Array.from((fresh[1] as TilePrediction).scores), Array.from((first[1] as TilePrediction).scores));
});

Deno.test("runDoneKey names one run and one tile selection; markRunDone makes isRunDone true, once written", async () => {
  const { store } = await Effect.runPromise(makeMemoryStore);
  const run = runKey({ slide: "a", model: "b" });
  const key = runDoneKey(run, { allTiles: false });
  assert.equal(runDoneKey(run, { allTiles: false }), key, "deterministic");
  assert.notEqual(runDoneKey(run, { allTiles: true }), key, "every tile is another selection");
  assert.notEqual(runDoneKey(run, { allTiles: false, tissueThreshold: 0.1 }), key, "so is a fixed threshold");
  assert.notEqual(runDoneKey(runKey({ slide: "a", model: "c" }), { allTiles: false }), key, "another run");
  assert.notEqual(key, run, "not the run key itself (a run key names no entry)");
  assert.equal(await isRunDone(store, key), false);
  await markRunDone(store, key, run, { predicted: 3, nuclei: 7 }, 12);
  assert.equal(await isRunDone(store, key), true);
  const manifest = await Effect.runPromise(store.lookup(key));
  assert.ok(Option.isSome(manifest));
  assert.equal(manifest.value.stage, RUN_DONE_STAGE);
  const payload = await Effect.runPromise(store.read(manifest.value));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(payload["done.json"])), { predicted: 3, nuclei: 7 });
});
