/**
 * Reading the folder layout of `evaluate folder` and `evaluate breakdown` (what `deno task data
 * export` writes):
 *
 *   DIR/instances/NAME.png|npy    instance ids (16-bit PNG or 2-D .npy), 0 = background
 *                                 (or DIR/NAME.png|npy when there is no instances/ folder)
 *   DIR/classes/NAME.png|npy      optional: class + 1 per pixel, 0 = background
 *   DIR/classes/NAME.json         optional instead: {"<instance id>": <integer type>, …}
 *   DIR/dataset.json              optional: {"classes": ["tumour", …]}, names of classes 0.. (type k ≥ 1 = class k − 1)
 *
 * A nucleus's type is the majority of its pixels' non-zero values in the class map (lowest value on
 * ties; 0 when it has none), or its entry in the JSON table (0 when absent).
 */
import { Effect } from "effect";
import { causeText } from "../../pipeline/cause_text.ts";
import type { DirRef } from "../../pipeline/source.ts";
import { centroids, pairImage, type Pairing } from "./detection.ts";
import { InvalidInput } from "./errors.ts";
import { type LabelMap, readLabelMap, sameSize } from "./maps.ts";

const LABEL_FILE = /\.(png|npy)$/i;

/** name → relative path of the instance maps of a folder (`instances/` if present, else the top level). */
const instanceFiles = (files: DirRef["files"]): Map<string, string> => {
  const nested = files.some((f) => f.name.startsWith("instances/"));
  const out = new Map<string, string>();
  for (const { name } of files) {
    const inside = nested ? name.startsWith("instances/") && !name.slice(10).includes("/") : !name.includes("/");
    if (inside && LABEL_FILE.test(name)) out.set(name.slice(nested ? 10 : 0).replace(LABEL_FILE, ""), name);
  }
  return out;
};

/** One image of a folder pair: its name and the paths of its instance maps. */
export interface PairFiles {
  readonly name: string;
  readonly truth: string;
  readonly pred: string;
}

/** The images of a truth folder, sorted by name, with their prediction; InvalidInput when one side lacks maps. */
export const folderPairs = (truth: DirRef, prediction: DirRef): Effect.Effect<ReadonlyArray<PairFiles>, InvalidInput> =>
  Effect.gen(function* () {
    const tFiles = instanceFiles(truth.files), pFiles = instanceFiles(prediction.files);
    if (tFiles.size === 0) {
      return yield* new InvalidInput({
        file: truth.path,
        reason: "no instance maps (instances/NAME.png|npy or NAME.png|npy)",
      });
    }
    const missing = [...tFiles.keys()].filter((n) => !pFiles.has(n));
    if (missing.length > 0) {
      return yield* new InvalidInput({
        file: prediction.path,
        reason: `no prediction for ${missing.length} image(s): ${missing.slice(0, 5).join(", ")}${
          missing.length > 5 ? ", …" : ""
        }`,
      });
    }
    return [...tFiles.keys()].sort().map((name) => ({
      name,
      truth: `${truth.path}/${tFiles.get(name)}`,
      pred: `${prediction.path}/${pFiles.get(name)}`,
    }));
  });

/** The type of each instance: from `classes/NAME.json` ({id: class}) or the majority of a per-pixel class map. */
const typesOf = (dir: DirRef, name: string, instances: LabelMap) =>
  Effect.gen(function* () {
    const root = dir.path;
    const names = new Set(dir.files.map((f) => f.name));
    const jsonName = `classes/${name}.json`;
    if (names.has(jsonName)) {
      const file = `${root}/${jsonName}`;
      const table = yield* Effect.tryPromise({
        try: async () => JSON.parse(await Deno.readTextFile(file)) as unknown,
        catch: (e) => new InvalidInput({ file, reason: `not valid JSON (${causeText(e)})` }),
      });
      if (
        typeof table !== "object" || table === null || Array.isArray(table) ||
        !Object.values(table).every(Number.isInteger)
      ) {
        return yield* new InvalidInput({ file, reason: 'expected an object {"<instance id>": <integer class>, …}' });
      }
      const map = table as Record<string, number>;
      return (id: number) => map[String(id)] ?? 0;
    }
    const pixelName = [`classes/${name}.png`, `classes/${name}.npy`].find((n) => names.has(n));
    if (pixelName === undefined) return undefined;
    const classMap = yield* readLabelMap(`${root}/${pixelName}`);
    yield* sameSize(instances, classMap, `${root}/instances/${name}`, `${root}/${pixelName}`);
    const votes = new Map<number, Map<number, number>>();
    for (let i = 0; i < instances.labels.length; i++) {
      const id = instances.labels[i] as number, c = classMap.labels[i] as number;
      if (id === 0 || c === 0) continue;
      let v = votes.get(id);
      if (v === undefined) votes.set(id, v = new Map());
      v.set(c, (v.get(c) ?? 0) + 1);
    }
    return (id: number) => {
      let best = 0, bestCount = 0;
      for (const [c, count] of [...(votes.get(id) ?? new Map<number, number>())].sort((a, b) => a[0] - b[0])) {
        if (count > bestCount) [best, bestCount] = [c, count];
      }
      return best;
    };
  });

/** One image pair read from disk: both instance maps (same size) and each side's type lookup, if any. */
export interface FolderPair {
  readonly name: string;
  readonly truth: LabelMap;
  readonly pred: LabelMap;
  /** instance id → type (undefined when the folder has no class map for the image) */
  readonly truthType: ((id: number) => number) | undefined;
  readonly predType: ((id: number) => number) | undefined;
}

/** Reads one image pair of two folders. */
export const readFolderPair = (
  truth: DirRef,
  prediction: DirRef,
  files: PairFiles,
): Effect.Effect<FolderPair, InvalidInput> =>
  Effect.gen(function* () {
    const t = yield* readLabelMap(files.truth), p = yield* readLabelMap(files.pred);
    yield* sameSize(t, p, files.truth, files.pred);
    const truthType = yield* typesOf(truth, files.name, t);
    const predType = yield* typesOf(prediction, files.name, p);
    return { name: files.name, truth: t, pred: p, truthType, predType };
  });

/** The class names of `dataset.json` in the first folder that has one (undefined when none does). */
export const classNames = (
  ...dirs: ReadonlyArray<DirRef>
): Effect.Effect<ReadonlyArray<string> | undefined, InvalidInput> =>
  Effect.gen(function* () {
    const dir = dirs.find((d) => d.files.some((f) => f.name === "dataset.json"));
    if (dir === undefined) return undefined;
    const file = `${dir.path}/dataset.json`;
    const json = yield* Effect.tryPromise({
      try: async () => JSON.parse(await Deno.readTextFile(file)) as unknown,
      catch: (e) => new InvalidInput({ file, reason: `not valid JSON (${causeText(e)})` }),
    });
    const classes = typeof json === "object" && json !== null ? (json as { classes?: unknown }).classes : undefined;
    if (!Array.isArray(classes) || !classes.every((c) => typeof c === "string")) {
      return yield* new InvalidInput({
        file,
        reason: `field "classes": expected a list of class names, found ${JSON.stringify(classes)}`,
      });
    }
    return classes as ReadonlyArray<string>;
  });

/** Adds one image pair's nuclei to a centroid pairing (HoVer-Net's detection and type F1); untyped maps count as type 0. */
export const pairCentroids = (pair: FolderPair, pairing: Pairing): void =>
  pairImage(
    centroids(pair.truth.labels, pair.truth.width, pair.truthType ?? (() => 0)),
    centroids(pair.pred.labels, pair.pred.width, pair.predType ?? (() => 0)),
    pairing,
  );
