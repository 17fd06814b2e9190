/**
 * The attribute chain as cached stages (the paper's first contribution: pseudo-text per nucleus):
 *
 *   dataset ─► maskFeaturesStage ─► attributeSelection ─► attributeBins ─► attributeWords ─► prompts
 *                 (feature table)      (§B1–B2)          (§B3–B4 fit)       (§B5)         (text)
 *
 * Each stage is pure and keyed by its inputs' digests, so refitting the bins with another seed
 * reuses the feature table, and a rerun of the whole chain only loads the last output.
 */
import { Effect, Schema } from "effect";
import { json, jsonOf } from "../../pipeline/codec/json.ts";
import { track } from "../../pipeline/progress.ts";
import * as Stage from "../../pipeline/stage.ts";
import { DatasetError } from "../data/sample.ts";
import { datasetRefCodec, openDataset } from "../data/source.ts";
import { seededSplit } from "../data/splits.ts";
import { attributePrompt, classPrompt, imagePrompt } from "../text/prompts.ts";
import { AttributeError, type AttributeFit, fitAttributes, wordOf } from "./fit.ts";
import { maskFeatures } from "./mask_features.ts";
import type { Selection } from "./selection.ts";
import { featureTableCodec, fitRows, nucleiOfSamples, tableBuilder } from "./table.ts";
import { SCALES } from "./words.ts";

const asDatasetError = (e: unknown) =>
  e instanceof DatasetError
    ? e
    : new DatasetError({ file: "dataset", reason: e instanceof Error ? e.message : String(e) });

/** §A features of every nucleus of a dataset, one sample at a time (bounded memory), with progress. */
export const maskFeaturesStage = Stage.make({
  name: "attributes.maskFeatures",
  version: 1,
  inputs: { dataset: datasetRefCodec },
  output: featureTableCodec,
  run: ({ dataset }) =>
    Effect.acquireUseRelease(
      Effect.tryPromise({ try: () => openDataset(dataset), catch: asDatasetError }),
      (ds) =>
        track("measuring nuclei", ds.size, (progress) =>
          Effect.gen(function* () {
            const table = tableBuilder(ds.classes);
            for (let i = 0; i < ds.size; i++) {
              const s = yield* Effect.tryPromise({ try: () => ds.sample(i), catch: asDatasetError });
              table.add(s.id, s.organ, s.classOf, maskFeatures(s.image, s.instances, s.height, s.width));
              yield* progress.advance(1);
            }
            return table.build();
          })),
      (ds) => Effect.sync(() => ds.close()),
    ),
});

/**
 * The nuclei of the training split only — the split of `deno task train` for this seed and
 * validation fraction — so that neither the attribute selection nor the (supervised) entropy bins
 * see a held-out nucleus's class.
 */
export const trainingNuclei = Stage.make({
  name: "attributes.trainingNuclei",
  version: 1,
  config: Schema.Struct({
    seed: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0))),
    valFraction: Schema.Number.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0.2))),
  }),
  inputs: { table: featureTableCodec, dataset: datasetRefCodec },
  output: featureTableCodec,
  run: ({ table, dataset }, c) =>
    Effect.acquireUseRelease(
      Effect.tryPromise({ try: () => openDataset(dataset), catch: asDatasetError }),
      (ds) =>
        Effect.tryPromise({
          try: async () => {
            if (ds.size !== table.sampleIds.length) {
              throw new RangeError(`the feature table has ${table.sampleIds.length} samples, the dataset ${ds.size}`);
            }
            const split = await seededSplit(ds, c.valFraction, c.seed);
            return nucleiOfSamples(table, new Set(split.train));
          },
          catch: asDatasetError,
        }),
      (ds) => Effect.sync(() => ds.close()),
    ),
});

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u);
const isSelection = (u: unknown): u is Selection =>
  isRecord(u) && Array.isArray(u.selected) && Array.isArray(u.ranking) && Array.isArray(u.dropped);
const isFit = (u: unknown): u is AttributeFit =>
  isRecord(u) && u.spec_version === "1.0" && isSelection(u.selection) && isRecord(u.binning);

const FitConfig = {
  /** leave out nuclei cut by the tile border (their size and shape are truncated) */
  excludeBorder: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(true))),
};

const fitFailure = (e: unknown) => new AttributeError({ message: e instanceof Error ? e.message : String(e) });

/** §B1–B2: separation S per feature, Spearman de-duplication, the selected attributes. */
export const attributeSelection = Stage.make({
  name: "attributes.selection",
  version: 1,
  config: Schema.Struct({
    ...FitConfig,
    rhoMax: Schema.Number.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0.7))),
    maxSelected: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(4))),
  }),
  inputs: { table: featureTableCodec },
  output: jsonOf("attribute selection", isSelection),
  run: ({ table }, { excludeBorder, rhoMax, maxSelected }) =>
    Effect.try({
      try: () =>
        fitAttributes(fitRows(table, { excludeBorder }), { rho_max: rhoMax, max_selected: maxSelected }, { bin: [] })
          .selection,
      catch: fitFailure,
    }),
});

/** §B3–B4 on the selected (or all) features: entropy (MDLP) or quantile bins with the 5-fold vote. */
export const attributeBins = Stage.make({
  name: "attributes.bins",
  version: 1,
  config: Schema.Struct({
    ...FitConfig,
    method: Schema.Literals(["entropy", "quantile"]).pipe(
      Schema.withDecodingDefaultKey(Effect.succeed("entropy" as const)),
    ),
    criterion: Schema.Literals(["mdlp", "gain"]).pipe(Schema.withDecodingDefaultKey(Effect.succeed("mdlp" as const))),
    /** 0 = the spec's default max(5, ⌈n/100⌉) per fit */
    minLeaf: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0))),
    folds: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(5))),
    seed: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0))),
    /** bin every feature instead of the selected ones */
    all: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(false))),
  }),
  inputs: { table: featureTableCodec, selection: jsonOf("attribute selection", isSelection) },
  output: jsonOf("attribute fit", isFit),
  run: ({ table, selection }, c) =>
    Effect.try({
      try: () =>
        fitAttributes(
          fitRows(table, { excludeBorder: c.excludeBorder }),
          { criterion: c.criterion, folds: c.folds, seed: c.seed, ...(c.minLeaf > 0 ? { min_leaf: c.minLeaf } : {}) },
          { bin: c.all ? "all" : selection.selected, method: c.method },
        ),
      catch: fitFailure,
    }),
});

export const AttributeWords = Schema.Struct({
  attributes: Schema.Array(Schema.Struct({
    feature: Schema.String,
    family: Schema.String,
    direction: Schema.String,
    thresholds: Schema.Array(Schema.Number),
    words: Schema.Array(Schema.String),
    /** the family's full scale (low → high): the vocabulary of its prompts */
    scale: Schema.Array(Schema.String),
  })),
});
export type AttributeWords = typeof AttributeWords.Type;

/** §B5: per binned attribute, its thresholds, the words of its intervals and its family's scale. */
export const attributeWords = Stage.make({
  name: "attributes.words",
  version: 1,
  inputs: { fit: jsonOf("attribute fit", isFit) },
  output: json(AttributeWords),
  run: ({ fit }) =>
    Effect.succeed({
      attributes: Object.entries(fit.binning).map(([feature, b]) => ({
        feature,
        family: b.family,
        direction: b.direction,
        thresholds: b.thresholds,
        words: b.words,
        scale: [...SCALES[b.family]],
      })),
    }),
});

export const Prompts = Schema.Struct({
  /** every distinct class prompt */
  classPrompts: Schema.Array(Schema.String),
  /** per attribute, the prompts of its interval words (the negatives of L_attr are the others) */
  vocabulary: Schema.Record(Schema.String, Schema.Array(Schema.String)),
  /** per image, the text listing the classes present */
  images: Schema.Array(Schema.Struct({ sample: Schema.String, text: Schema.String })),
  /** per nucleus: its class prompt and one prompt per attribute (null where the value is missing) */
  nuclei: Schema.Array(Schema.Struct({
    sample: Schema.String,
    id: Schema.Number,
    classPrompt: Schema.NullOr(Schema.String),
    attributes: Schema.Record(Schema.String, Schema.NullOr(Schema.String)),
  })),
});
export type Prompts = typeof Prompts.Type;

/** Class, attribute and image-level prompts for every nucleus and image of the feature table. */
export const prompts = Stage.make({
  name: "text.prompts",
  version: 1,
  inputs: { table: featureTableCodec, words: json(AttributeWords) },
  output: json(Prompts),
  run: ({ table, words }) =>
    Effect.sync(() => {
      const className = (c: number) => (c >= 0 ? table.classes[c] ?? null : null);
      const nuclei: Array<Prompts["nuclei"][number]> = [];
      const present = table.sampleIds.map(() => new Set<number>());
      const classPrompts = new Set<string>();
      for (let i = 0; i < table.id.length; i++) {
        const s = table.sample[i] as number, name = className(table.cls[i] as number);
        if (name !== null) present[s]?.add(table.cls[i] as number);
        const cp = name === null ? null : classPrompt(name, table.organs[s] ?? "");
        if (cp !== null) classPrompts.add(cp);
        const attributes: Record<string, string | null> = {};
        for (const a of words.attributes) {
          const value = table.columns[a.feature]?.[i];
          const word = wordOf(a, value === undefined || Number.isNaN(value) ? null : value);
          attributes[a.feature] = word === null ? null : attributePrompt(word);
        }
        nuclei.push({ sample: table.sampleIds[s] as string, id: table.id[i] as number, classPrompt: cp, attributes });
      }
      return {
        classPrompts: [...classPrompts].sort(),
        vocabulary: Object.fromEntries(
          words.attributes.map((a) => [a.feature, [...new Set(a.words)].map(attributePrompt)]),
        ),
        images: table.sampleIds.map((sample, s) => ({
          sample,
          text: imagePrompt([...(present[s] ?? [])].sort((a, b) => a - b).map((c) => table.classes[c] as string)),
        })),
        nuclei,
      };
    }),
});
