/**
 * Evaluation: the field's instance-segmentation and classification metrics, exactly as the public
 * HoVer-Net and PanNuke scripts compute them (../shared/design/specs/metrics.md).
 *
 * Inputs: instance maps ([H, W] integer labels, 0 = background), PanNuke arrays ([N, H, W, 6]),
 * point sets for detection. Outputs: plain numbers, NaN where a metric is undefined (JSON null).
 *
 * Common task: `instanceMetrics(truth, pred)` for one image pair; the stages in `stages.ts` for
 * cached, file-based evaluation (`deno task evaluate`); `imageBreakdown` + `pooledBreakdown`
 * (breakdown.ts) for where the PQ goes (missed, spurious, merged, split, poorly segmented, types).
 *
 * Gotchas: PQ at τ ≥ 0.5 needs IoU strictly above τ; both-empty images give NaN, and one NaN image
 * makes a plain mean NaN (use the PanNuke aggregation for nan-means); detection adds dummy points.
 */
export { linearSumAssignment } from "./hungarian.ts";
export { type Overlap, overlap } from "./overlap.ts";
export { panopticQuality, pqMatching, pqOfCounts, type PqResult } from "./pq.ts";
export { aji, ajiPlus, dice } from "./aji.ts";
export { centroids, detectionScores, emptyPairing, pairImage, type Pairing, type Point } from "./detection.ts";
export { binarize, nanMean, PANNUKE_CLASSES, PANNUKE_TISSUES, PannukeAccumulator, pannukeImage } from "./pannuke.ts";
export { InstanceMetrics, instanceMetrics, Metric, toJson } from "./instance_metrics.ts";
export {
  Breakdown,
  type FnCategories,
  type FpCategories,
  type ImageBreakdown,
  imageBreakdown,
  pooledBreakdown,
} from "./breakdown.ts";
export {
  breakdownEvaluation,
  folderEvaluation,
  FolderMetrics,
  instanceEvaluation,
  pannukeEvaluation,
  PannukeMetrics,
} from "./stages.ts";
export { breakdownMarkdown, folderMarkdown, instancesMarkdown, pannukeMarkdown } from "./report.ts";
export { InvalidInput } from "./errors.ts";
export { type LabelMap, readLabelMap } from "./maps.ts";
