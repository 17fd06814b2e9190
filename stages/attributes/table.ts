/**
 * The nucleus feature table of a dataset: one row per nucleus (sample index, instance id, class,
 * flags) and one float64 column per feature (NaN where the feature is null), stored as
 * safetensors so that 15,000-nucleus datasets cost a few MB and load without parsing JSON.
 */
import { Effect } from "effect";
import type { Codec } from "../../pipeline/codec/codec.ts";
import { type HostTensor, safetensors } from "../../pipeline/codec/safetensors.ts";
import { CodecError } from "../../pipeline/errors.ts";
import type { AttributeRow } from "./fit.ts";
import { FEATURE_NAMES, type FeatureFlag, type FeatureRecord } from "./mask_features.ts";

const FLAG_BITS: ReadonlyArray<FeatureFlag> = ["collinear", "rim_empty", "touches_border", "single_pixel"];

export interface FeatureTable {
  readonly classes: ReadonlyArray<string>;
  readonly sampleIds: ReadonlyArray<string>;
  readonly organs: ReadonlyArray<string>;
  /** per nucleus: index into sampleIds, instance id, class (−1 unknown), flag bits */
  readonly sample: Int32Array;
  readonly id: Int32Array;
  readonly cls: Int32Array;
  readonly flags: Uint8Array;
  /** per feature name (FEATURE_NAMES), one value per nucleus; NaN = null */
  readonly columns: Readonly<Record<string, Float64Array>>;
}

/** Accumulates feature records sample by sample into a table. */
export const tableBuilder = (classes: ReadonlyArray<string>) => {
  const sampleIds: string[] = [], organs: string[] = [];
  const sample: number[] = [], id: number[] = [], cls: number[] = [], flags: number[] = [];
  const columns: Record<string, number[]> = Object.fromEntries(FEATURE_NAMES.map((f) => [f, []]));
  return {
    add: (sampleId: string, organ: string, classOf: Int32Array, records: ReadonlyArray<FeatureRecord>) => {
      const s = sampleIds.length;
      sampleIds.push(sampleId);
      organs.push(organ);
      for (const r of records) {
        sample.push(s);
        id.push(r.id);
        cls.push(classOf[r.id] ?? -1);
        flags.push(r.flags.reduce((bits, f) => bits | (1 << FLAG_BITS.indexOf(f)), 0));
        for (const f of FEATURE_NAMES) (columns[f] as number[]).push(r[f] ?? NaN);
      }
    },
    build: (): FeatureTable => ({
      classes,
      sampleIds,
      organs,
      sample: Int32Array.from(sample),
      id: Int32Array.from(id),
      cls: Int32Array.from(cls),
      flags: Uint8Array.from(flags),
      columns: Object.fromEntries(Object.entries(columns).map(([f, v]) => [f, Float64Array.from(v)])),
    }),
  };
};

/** The table with only the nuclei of the samples `keep` holds (sample indices and names unchanged). */
export const nucleiOfSamples = (t: FeatureTable, keep: ReadonlySet<number>): FeatureTable => {
  const rows: number[] = [];
  for (let i = 0; i < t.sample.length; i++) if (keep.has(t.sample[i] as number)) rows.push(i);
  const pick = <A extends Int32Array | Uint8Array | Float64Array>(a: A): A =>
    a.constructor === Float64Array
      ? Float64Array.from(rows, (i) => a[i] as number) as A
      : a.constructor === Uint8Array
      ? Uint8Array.from(rows, (i) => a[i] as number) as A
      : Int32Array.from(rows, (i) => a[i] as number) as A;
  return {
    ...t,
    sample: pick(t.sample),
    id: pick(t.id),
    cls: pick(t.cls),
    flags: pick(t.flags),
    columns: Object.fromEntries(Object.entries(t.columns).map(([f, c]) => [f, pick(c)])),
  };
};

/** Whether nucleus `i` carries `flag`. */
export const hasFlag = (t: FeatureTable, i: number, flag: FeatureFlag): boolean =>
  ((t.flags[i] as number) & (1 << FLAG_BITS.indexOf(flag))) !== 0;

/** Rows for the attribute fit: label = class name (unknown classes unlabelled), NaN → null. */
export const fitRows = (t: FeatureTable, options: { readonly excludeBorder: boolean }): AttributeRow[] => {
  const rows: AttributeRow[] = [];
  for (let i = 0; i < t.id.length; i++) {
    if (options.excludeBorder && hasFlag(t, i, "touches_border")) continue;
    const c = t.cls[i] as number;
    const values: Record<string, number | null> = {};
    for (const [f, col] of Object.entries(t.columns)) values[f] = Number.isNaN(col[i]) ? null : col[i] as number;
    rows.push({ label: c >= 0 ? t.classes[c] ?? null : null, values });
  }
  return rows;
};

/** The table as safetensors: columns `feature/<name>`, `sample`, `id`, `class`, `flags`; names in metadata. */
export const featureTableCodec: Codec<FeatureTable> = {
  id: "safetensors:feature-table",
  encode: (t) => {
    const n = t.id.length;
    const tensors: Record<string, HostTensor> = {
      sample: { dtype: "I32", shape: [n], data: t.sample },
      id: { dtype: "I32", shape: [n], data: t.id },
      class: { dtype: "I32", shape: [n], data: t.cls },
      flags: { dtype: "U8", shape: [n], data: t.flags },
    };
    for (const [f, col] of Object.entries(t.columns)) tensors[`feature/${f}`] = { dtype: "F64", shape: [n], data: col };
    return safetensors.encode({
      tensors,
      metadata: {
        classes: JSON.stringify(t.classes),
        sampleIds: JSON.stringify(t.sampleIds),
        organs: JSON.stringify(t.organs),
      },
    });
  },
  decode: (payload) =>
    Effect.flatMap(safetensors.decode(payload), (file) => {
      const { sample, id, flags } = file.tensors, cls = file.tensors.class;
      if (
        sample?.dtype !== "I32" || id?.dtype !== "I32" || cls?.dtype !== "I32" || flags?.dtype !== "U8" ||
        file.metadata === undefined
      ) {
        return Effect.fail(new CodecError({ codec: "feature table", reason: "missing or mistyped columns" }));
      }
      const columns: Record<string, Float64Array> = {};
      for (const [name, t] of Object.entries(file.tensors)) {
        if (name.startsWith("feature/") && t.dtype === "F64") columns[name.slice(8)] = t.data;
      }
      const meta = file.metadata;
      return Effect.succeed({
        classes: JSON.parse(meta.classes ?? "[]") as string[],
        sampleIds: JSON.parse(meta.sampleIds ?? "[]") as string[],
        organs: JSON.parse(meta.organs ?? "[]") as string[],
        sample: sample.data,
        id: id.data,
        cls: cls.data,
        flags: flags.data,
        columns,
      });
    }),
};
