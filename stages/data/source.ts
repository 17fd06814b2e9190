/**
 * Dataset sources: the `SOURCE` strings users type (`synthetic[:SEED]`, `pannuke:DIR`,
 * `consep:DIR`, `monuseg:DIR`, `folder:DIR`), their content-keyed pipeline sources, and opening
 * the reader behind one.
 *
 * A `DatasetRef` is what a stage receives: the kind, the path and options, and the content digest
 * of every file under the path (so a changed file changes every downstream key, and a moved
 * folder does not).
 */
import { Effect, Schema } from "effect";
import type { Codec } from "../../pipeline/codec/codec.ts";
import { json } from "../../pipeline/codec/json.ts";
import { SourceError } from "../../pipeline/errors.ts";
import { digestFiles } from "../../pipeline/hash.ts";
import { directory, type Source } from "../../pipeline/source.ts";
import { openConsep } from "./consep.ts";
import { openFolder } from "./folder.ts";
import { openMonuseg } from "./monuseg.ts";
import { openPannuke } from "./pannuke.ts";
import type { Dataset } from "./sample.ts";
import { openSynthetic } from "./synthetic.ts";

export const DATASET_KINDS = ["synthetic", "pannuke", "consep", "monuseg", "folder"] as const;
export type DatasetKind = (typeof DATASET_KINDS)[number];

export const DatasetRef = Schema.Struct({
  kind: Schema.Literals(DATASET_KINDS),
  /** folder of the data ("" for synthetic) */
  path: Schema.String,
  /** synthetic: seed and tile count */
  seed: Schema.Number,
  tiles: Schema.Number,
  /** CoNSeP: merge the 7 classes into the standard 4 */
  merge: Schema.Boolean,
  /** digest of the files under `path` ("" for synthetic) */
  content: Schema.String,
});
export type DatasetRef = typeof DatasetRef.Type;
export const datasetRefCodec: Codec<DatasetRef> = json(DatasetRef);

export const SOURCE_HELP = "synthetic[:SEED], pannuke:DIR, consep:DIR, monuseg:DIR or folder:DIR";

/** Parses a SOURCE string; `undefined` and a reason when it is not one. */
export const parseSource = (
  text: string,
  options: { readonly tiles?: number; readonly merge?: boolean } = {},
): { ref: Omit<DatasetRef, "content"> } | { error: string } => {
  const base = { path: "", seed: 0, tiles: options.tiles ?? 256, merge: options.merge ?? false };
  const m = /^([a-z]+)(?::(.*))?$/s.exec(text);
  const kind = m?.[1] as DatasetKind | undefined;
  if (m === null || kind === undefined || !DATASET_KINDS.includes(kind)) {
    return { error: `unknown data source '${text}'; expected ${SOURCE_HELP}` };
  }
  const arg = m[2];
  if (kind === "synthetic") {
    const seed = arg === undefined || arg === "" ? 0 : Number(arg);
    if (!Number.isSafeInteger(seed) || seed < 0) {
      return { error: `synthetic:SEED needs a non-negative integer seed, found '${arg}'` };
    }
    return { ref: { ...base, kind, seed } };
  }
  if (arg === undefined || arg === "") return { error: `${kind}:DIR needs a folder, e.g. ${kind}:/data/${kind}` };
  return { ref: { ...base, kind, path: arg.replace(/\/+$/, "") } };
};

/** The pipeline source of a dataset: content-keyed for folders, spec-keyed for synthetic data. */
export const datasetSource = (spec: Omit<DatasetRef, "content">): Source<DatasetRef> => ({
  describe: spec.kind === "synthetic"
    ? `synthetic seed ${spec.seed}, ${spec.tiles} tiles`
    : `${spec.kind} ${spec.path}`,
  resolve: Effect.gen(function* () {
    const content = spec.kind === "synthetic" ? "" : (yield* directory(spec.path).resolve).digest;
    const value: DatasetRef = { ...spec, content };
    const payload = yield* datasetRefCodec.encode(value);
    return { digest: digestFiles(payload), value };
  }),
});

/** Opens the reader of a dataset reference. */
export const openDataset = (ref: DatasetRef): Promise<Dataset> => {
  switch (ref.kind) {
    case "synthetic":
      return Promise.resolve(openSynthetic({ seed: ref.seed, tiles: ref.tiles }));
    case "pannuke":
      return openPannuke(ref.path);
    case "consep":
      return openConsep(ref.path, { merge: ref.merge });
    case "monuseg":
      return openMonuseg(ref.path);
    case "folder":
      return openFolder(ref.path);
  }
};

/** A missing data folder as a source error (before any hashing starts). */
export const checkSourcePath = (ref: Omit<DatasetRef, "content">) =>
  ref.kind === "synthetic" ? Effect.void : Effect.tryPromise({
    try: async () => {
      if (!(await Deno.stat(ref.path)).isDirectory) throw new Error("not a directory");
    },
    catch: (e) =>
      new SourceError({ path: ref.path, reason: `${ref.kind} data folder ${e instanceof Error ? e.message : e}` }),
  });
