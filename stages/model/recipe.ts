/**
 * The training recipe a task picks when the user names no preset or schedule: on the synthetic
 * default, the `tiny` ViT with Mask2Former's step schedule (the README's synthetic runs); on real
 * data, the `conv` preset (a residual conv encoder with dense supervision) with a warm-up and
 * cosine decay, and its dense and centre losses weighted 20 against the queries' — the recipe measured
 * best on CoNSeP (docs/results.md).
 */
import { type DecodeOptions, DEFAULT_FOREGROUND, defaultDecodeOptions } from "./decoding.ts";
import { defaultDenseDecodeOptions } from "./dense_decoding.ts";
import { MODEL_PRESETS, type ModelPreset } from "./model.ts";
import type { TrainConfig } from "./train.ts";

/** The preset of a run: the user's, else `conv` on real data and `tiny` on synthetic data. */
export const defaultPreset = (realData: boolean, preset?: ModelPreset): ModelPreset =>
  preset ?? (realData ? "conv" : "tiny");

/** The schedule of a run: the user's, else cosine for conv encoders and Mask2Former's steps for the ViTs. */
export const defaultSchedule = (preset: ModelPreset, schedule?: TrainConfig["schedule"]): TrainConfig["schedule"] =>
  schedule ?? (MODEL_PRESETS[preset].conv !== undefined ? "cosine" : "step");

/**
 * The weights of the dense and centre losses beside the queries' (whose weights are Mask2Former's): 20 and 20 for the
 * conv presets, whose default decoding reads those two heads — at 1 the queries' losses were 87 % of the total and
 * the model underfitted the maps; on CoNSeP, 4 raised held-out PQ 0.402 → 0.436, 10 to 0.456 and 20 to 0.468
 * (docs/results.md, rounds 5–7) —, 1 and 1 for the ViTs.
 */
export const defaultLossWeights = (preset: ModelPreset): { readonly dense: number; readonly center: number } =>
  MODEL_PRESETS[preset].conv !== undefined ? { dense: 20, center: 20 } : { dense: 1, center: 1 };

/**
 * The decoding `deno task predict` applies by default (its flags' defaults read it), and the held-out scoring of
 * `train` and `ablate` with it (so that a run's held-out numbers are the ones its users get): for models with dense maps and a centre head, nuclei
 * from the centre peaks grown over the foreground, pixels below foreground probability 0.5 dropped, classes from the
 * queries; models without them fall back to the queries' decoding (decodeValues).
 */
export const recipeDecodeOptions: DecodeOptions & {
  readonly instances: "centers";
  readonly foregroundThreshold: number;
} = {
  ...defaultDecodeOptions,
  foregroundThreshold: DEFAULT_FOREGROUND,
  instances: "centers",
  dense: defaultDenseDecodeOptions,
};
