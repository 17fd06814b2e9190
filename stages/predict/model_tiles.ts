/**
 * A trained checkpoint as a batched tile predictor for `predictTiled`: the model on B tiles at
 * once ([B, T, T, 3]), each decoded into instances (decoding.ts).
 */
import * as tf from "@tensorflow/tfjs";
import { decodeSafetensors, readSafetensorsMetadata } from "../../pipeline/codec/safetensors.ts";
import { Effect } from "effect";
import { DatasetError } from "../data/sample.ts";
import { namedTensors, restoreModel } from "../model/checkpoint.ts";
import {
  type DecodedInstances,
  type DecodeOptions,
  decodeValues,
  defaultDecodeOptions,
  type DenseMaps,
} from "../model/decoding.ts";
import {
  imagePrediction,
  lastPredictionValues,
  type ModelConfig,
  type ModelParams,
  type PredictionValues,
  tileSize,
} from "../model/model.ts";
import type { Tile, TilePrediction } from "./tiling.ts";
import {
  averageMaps,
  flipInstances,
  flipMapsBack,
  FLIPS,
  flipTile,
  type TtaOptions,
  variantsOf,
  voteInstances,
} from "./tta.ts";

/** A checkpoint ready to predict: parameters, config, class names and tile side. */
export interface LoadedModel {
  readonly params: ModelParams;
  readonly config: ModelConfig;
  readonly classes: ReadonlyArray<string>;
  /** the side of the tiles it was trained on (its ViT's img_size) */
  readonly tile: number;
  /** the checkpoint's metadata (config, history, validation…) */
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * The model config, classes and tile side in a checkpoint's metadata; `bad` makes the error (naming the file)
 * when they are missing or are not what `deno task train` writes.
 */
const checkpointModel = (
  metadata: Readonly<Record<string, string>>,
  bad: (why: string) => Error,
): { config: ModelConfig; classes: string[]; tile: number } => {
  if (metadata.model === undefined || metadata.classes === undefined) throw bad("no model config in its metadata");
  const parse = (key: "model" | "classes"): unknown => {
    try {
      return JSON.parse(String(metadata[key]));
    } catch {
      throw bad(`its metadata '${key}' is not JSON`);
    }
  };
  const config = parse("model"), classes = parse("classes");
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw bad("its metadata 'model' is not a model config object");
  }
  if (!Array.isArray(classes) || !classes.every((c) => typeof c === "string")) {
    throw bad("its metadata 'classes' is not a list of class names");
  }
  try {
    return { config: config as ModelConfig, classes, tile: tileSize(config as ModelConfig) };
  } catch (e) {
    throw bad(`its metadata 'model': ${e instanceof Error ? e.message : e}`);
  }
};

/**
 * The metadata of a checkpoint from its header alone (8-byte length + JSON), with its model
 * config and classes; throws a DatasetError naming the file when it is not a checkpoint of `deno task train`.
 */
export const readCheckpointInfo = async (
  path: string,
): Promise<{ config: ModelConfig; classes: string[]; tile: number; metadata: Record<string, string> }> => {
  const bad = (why: string) =>
    new DatasetError({ file: path, reason: `not a safetensors checkpoint of deno task train (${why})` });
  const metadata = await readSafetensorsMetadata(path).catch((e) => {
    throw bad(e instanceof Error ? e.message : String(e));
  });
  return { ...checkpointModel(metadata, bad), metadata };
};

/** Reads a checkpoint of `deno task train`; a file that is not one throws naming what is missing. */
export const loadModel = async (path: string): Promise<LoadedModel> => {
  // errors name the checkpoint alone (DatasetError passes through predict.image unprefixed)
  const bad = (reason: string) => new DatasetError({ file: path, reason });
  const bytes = await Deno.readFile(path).catch((e) => {
    throw bad(`cannot read the checkpoint (${e instanceof Error ? e.message : e})`);
  });
  const file = await Effect.runPromise(decodeSafetensors(bytes)).catch((e) => {
    throw bad(`not a safetensors checkpoint (${e instanceof Error ? e.message : e})`);
  });
  const metadata = file.metadata ?? {};
  const { config, classes, tile } = checkpointModel(
    metadata,
    (why) => bad(`not a checkpoint of deno task train (${why})`),
  );
  let params: ModelParams;
  try {
    params = restoreModel(config, classes.length, file);
  } catch (e) {
    throw bad(e instanceof Error ? e.message : String(e));
  }
  return { params, config, classes, tile, metadata };
};

/** Frees the model's tensors. */
export const disposeModel = (model: Pick<LoadedModel, "params">): void =>
  tf.dispose(namedTensors(model.params).map(([, t]) => t));

/** Image `i` of a batch's last predictions (values: model.ts's `lastPredictionValues`) decoded at tile × tile. */
export const decodeTile = (
  values: PredictionValues,
  i: number,
  tile: number,
  decode: DecodeOptions = defaultDecodeOptions,
): DecodedInstances => {
  const { logits, masks, maps } = imagePrediction(values, i);
  return decodeValues(logits, masks, values.shape, tile, tile, decode, maps);
};

/**
 * A timing hook (bench/slide_bench.ts): runs `work`, the step named `step`, and returns its result. `untimed`, the
 * default, only runs it.
 */
export type StepTimer = <A>(step: string, work: () => Promise<A>) => Promise<A>;
export const untimed: StepTimer = (_, work) => work();

/**
 * The model on a batch of tiles, each decoded into an instance map of its tile; with `tta`, each
 * tile is predicted under the four flips and its nuclei voted on, or its maps averaged before one
 * decoding (tta.ts; with `rot90`, under the eight symmetries of the square). `time` sees the steps
 * "forward" (the model, its outputs read back) and "decode".
 */
export const modelTilePredictor = (
  model: LoadedModel,
  decode: DecodeOptions = defaultDecodeOptions,
  tta?: TtaOptions,
  time: StepTimer = untimed,
) =>
async (tiles: ReadonlyArray<Tile>): Promise<TilePrediction[]> => {
  const t = model.tile, classes = model.classes.length;
  const flips = variantsOf(tta);
  const average = tta !== undefined && "average" in tta;
  const votes = tta !== undefined && "votes" in tta ? tta.votes : undefined;
  // per tile: its decoded variants (votes), or the plain variant's outputs and every variant's maps (average)
  const variants: TilePrediction[][] = tiles.map(() => []);
  const plain: Array<{ logits: Float32Array; masks: Float32Array }> = [];
  const maps: DenseMaps[][] = tiles.map(() => []);
  let shape: PredictionValues["shape"] | undefined; // the batch's, the same for every flip
  // one forward pass per flip, of the batch's tiles: memory as without TTA
  for (const flip of flips) {
    const images = new Float32Array(tiles.length * t * t * 3);
    tiles.forEach((tile, i) => images.set(flipTile(tile.rgb, t, 3, flip), i * t * t * 3));
    const x = tf.tensor4d(images, [tiles.length, t, t, 3]); // [B, T, T, 3]
    try {
      const values = await time("forward", () => lastPredictionValues(model.params, model.config, classes, x));
      if (average) {
        shape = values.shape;
        tiles.forEach((_, i) => {
          const one = imagePrediction(values, i);
          if (one.maps === undefined) {
            throw new RangeError("--tta-average needs a model with dense maps (a conv preset); this one has none");
          }
          if (flip === FLIPS[0]) plain[i] = { logits: one.logits, masks: one.masks };
          maps[i]?.push(flipMapsBack(one.maps, values.shape.h, values.shape.w, flip));
        });
        continue;
      }
      await time("decode", () => {
        tiles.forEach((_, i) => variants[i]?.push(flipInstances(decodeTile(values, i, t, decode), t, flip)));
        return Promise.resolve();
      });
    } finally {
      x.dispose();
    }
  }
  if (average) {
    return await time("decode", () =>
      Promise.resolve(tiles.map((_, i) => {
        const p = plain[i], m = maps[i];
        if (p === undefined || m === undefined || shape === undefined) {
          throw new RangeError("tta: a tile has no plain prediction");
        }
        return decodeValues(p.logits, p.masks, shape, t, t, decode, averageMaps(m));
      })));
  }
  return variants.map((v) => (votes === undefined ? v[0] as TilePrediction : voteInstances(v, votes)));
};
