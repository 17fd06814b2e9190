/**
 * The instance metrics of one image pair — PQ/DQ/SQ with TP/FP/FN, AJI, AJI+, Dice — from one
 * overlap table, and the Schema of their JSON form (NaN ↔ null).
 */
import { Schema, SchemaGetter } from "effect";
import { aji, ajiPlus, dice } from "./aji.ts";
import { overlap } from "./overlap.ts";
import { panopticQuality } from "./pq.ts";

/** A number whose JSON form writes NaN as null (the metrics spec's "NaN where undefined"). */
export const Metric = Schema.NullOr(Schema.Number).pipe(Schema.decodeTo(Schema.Number, {
  decode: SchemaGetter.transform((v: number | null) => v ?? NaN),
  encode: SchemaGetter.transform((n: number) => (Number.isNaN(n) ? null : n)),
}));

export const InstanceMetrics = Schema.Struct({
  pq: Metric,
  dq: Metric,
  sq: Metric,
  tp: Schema.Number,
  fp: Schema.Number,
  fn: Schema.Number,
  aji: Metric,
  ajiPlus: Metric,
  dice: Metric,
});
export type InstanceMetrics = typeof InstanceMetrics.Type;

/** All instance metrics of `truth` against `pred` (row-major label maps of equal size). */
export const instanceMetrics = (truth: Int32Array, pred: Int32Array, iou = 0.5): InstanceMetrics => {
  const ov = overlap(truth, pred);
  return { ...panopticQuality(ov, iou), aji: aji(ov), ajiPlus: ajiPlus(ov), dice: dice(ov) };
};

/** JSON text with NaN written as null (for reports that are not Schema-encoded). */
export const toJson = (value: unknown): string =>
  JSON.stringify(value, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2);
