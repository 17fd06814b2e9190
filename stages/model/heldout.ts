/**
 * The held-out split of a training run, predicted by its checkpoint and written in PanNuke's layout,
 * so that `deno task evaluate pannuke` (the official metrics' conventions) can score a run, and so
 * that other tools can read its predictions.
 *
 * The tiles are decoded as `deno task predict` decodes by default (recipe.ts: the centres' decoding for conv models).
 *
 * `heldoutPredictions` is a cached stage (dataset + checkpoint → instance maps of truth and
 * prediction, I32 [N, H, W], with per-tile classes and organs in the metadata); `panNukeLayout`
 * expands instance maps to [N, H, W, 6]: channel c holds the ids of the class-c nuclei, channel 5
 * is 1 on background (PanNuke's masks.npy).
 */
import { Effect } from "effect";
import * as tf from "@tensorflow/tfjs";
import { safetensors, type TensorFile } from "../../pipeline/codec/safetensors.ts";
import * as Stage from "../../pipeline/stage.ts";
import { backendEnvironment } from "../backend/tf.ts";
import { DatasetError, type Sample } from "../data/sample.ts";
import { PANNUKE_TISSUES } from "../evaluation/pannuke.ts";
import { type DatasetRef, datasetRefCodec, openDataset } from "../data/source.ts";
import { namedTensors, restoreModel } from "./checkpoint.ts";
import type { ModelConfig } from "./model.ts";
import { recipeDecodeOptions } from "./recipe.ts";
import { TrainConfig } from "./stages.ts";
import { predictTile, splitDataset, tilesOf } from "./train.ts";

/** PanNuke's five class channels (and the background channel after them). */
export const PANNUKE_CHANNELS = 5;

/**
 * Instance maps [N, H·W] with per-tile classes (classOf[id], −1 = unlabelled, left out) → PanNuke
 * layout [N, H, W, 6] as float32. Classes must be < 5.
 */
export const panNukeLayout = (
  maps: ReadonlyArray<{ readonly instances: ArrayLike<number>; readonly classOf: ArrayLike<number> }>,
  height: number,
  width: number,
): Float32Array => {
  const n = height * width, out = new Float32Array(maps.length * n * (PANNUKE_CHANNELS + 1));
  maps.forEach((m, t) => {
    for (let p = 0; p < n; p++) {
      const id = m.instances[p] as number, base = (t * n + p) * (PANNUKE_CHANNELS + 1);
      const c = id > 0 ? (m.classOf[id] ?? -1) as number : -1;
      if (c >= PANNUKE_CHANNELS) throw new RangeError(`panNukeLayout: class ${c} has no PanNuke channel (0–4)`);
      if (c >= 0) out[base + c] = id;
      else out[base + PANNUKE_CHANNELS] = 1;
    }
  });
  return out;
};

/**
 * PanNuke's spelling of a tissue (`kidney` → `Kidney`), since its bPQ and mPQ average over its 19
 * tissues by name; other names pass through ("unknown" when empty) and count in no tissue average.
 */
export const panNukeTissue = (organ: string): string =>
  PANNUKE_TISSUES.find((t) => t.toLowerCase() === organ.toLowerCase()) ?? (organ || "unknown");

const failure = (e: unknown) =>
  e instanceof DatasetError
    ? e
    : new DatasetError({ file: "held-out predictions", reason: e instanceof Error ? e.message : String(e) });

/** Predicts the held-out tiles of `config`'s split with a checkpoint of `model.train`. */
const predictHeldout = async (
  dataset: DatasetRef,
  checkpoint: TensorFile,
  config: TrainConfig,
): Promise<TensorFile> => {
  const ds = await openDataset(dataset);
  try {
    const meta = checkpoint.metadata ?? {};
    const model = JSON.parse(meta.model ?? "null") as ModelConfig | null;
    const full = JSON.parse(meta.config ?? "null") as { size?: number; valFraction?: number } | null;
    if (model === null || full?.size === undefined) throw new RangeError("the checkpoint has no model config");
    const params = restoreModel(model, ds.classes.length, checkpoint);
    const split = await splitDataset(ds, { seed: config.seed, valFraction: full.valFraction ?? 0.2 });
    const tiles: Sample[] = [];
    for (const i of split.val) tiles.push(...tilesOf(await ds.sample(i), full.size));
    const size = full.size * full.size;
    const truth = new Int32Array(tiles.length * size), pred = new Int32Array(tiles.length * size);
    const truthClasses: number[][] = [], predClasses: number[][] = [];
    for (const [t, s] of tiles.entries()) {
      const d = await predictTile(params, model, ds.classes.length, s, recipeDecodeOptions);
      truth.set(s.instances, t * size);
      pred.set(d.instances, t * size);
      truthClasses.push([...s.classOf]);
      predClasses.push([...d.classOf]);
    }
    tf.dispose(namedTensors(params).map(([, t]) => t));
    const shape = [tiles.length, full.size, full.size];
    return {
      tensors: { truth: { dtype: "I32", shape, data: truth }, prediction: { dtype: "I32", shape, data: pred } },
      metadata: {
        truthClasses: JSON.stringify(truthClasses),
        predictionClasses: JSON.stringify(predClasses),
        organs: JSON.stringify(tiles.map((s) => panNukeTissue(s.organ))),
        tiles: JSON.stringify(tiles.map((s) => s.id)),
        classes: JSON.stringify(ds.classes),
      },
    };
  } finally {
    ds.close();
  }
};

/** The held-out split of a training config, predicted by its checkpoint (cached like training). */
export const heldoutPredictions = Stage.make({
  name: "model.heldout",
  // 2: decoded as `deno task predict` does by default (recipeDecodeOptions), no longer by the queries alone;
  // 3: that decoding's boundary weight 0.3, and nuclei no kept query owns classed by their centroid's query
  version: 3,
  config: TrainConfig,
  inputs: { dataset: datasetRefCodec, checkpoint: safetensors },
  output: safetensors,
  environment: backendEnvironment(),
  run: ({ dataset, checkpoint }, config) =>
    Effect.tryPromise({ try: () => predictHeldout(dataset, checkpoint, config), catch: failure }),
});
