/**
 * The training recipe a task picks when the user names no preset or schedule: on the synthetic
 * default, the `tiny` ViT with Mask2Former's step schedule (the README's synthetic runs); on real
 * data, the `conv` preset (a residual conv encoder with dense supervision) with a warm-up and
 * cosine decay — the recipe measured best on CoNSeP (docs/results.md).
 */
import { MODEL_PRESETS, type ModelPreset } from "./model.ts";
import type { TrainConfig } from "./train.ts";

/** The preset of a run: the user's, else `conv` on real data and `tiny` on synthetic data. */
export const defaultPreset = (realData: boolean, preset?: ModelPreset): ModelPreset =>
  preset ?? (realData ? "conv" : "tiny");

/** The schedule of a run: the user's, else cosine for conv encoders and Mask2Former's steps for the ViTs. */
export const defaultSchedule = (preset: ModelPreset, schedule?: TrainConfig["schedule"]): TrainConfig["schedule"] =>
  schedule ?? (MODEL_PRESETS[preset].conv !== undefined ? "cosine" : "step");
