/**
 * The in-memory form of annotated H&E data (ARCHITECTURE.md §6), shared by every reader, the
 * synthetic generator, splits, augmentation and training.
 *
 * A sample is one tile: an RGB image, an instance map and the class of each instance. Instance ids
 * are contiguous 1..n within a sample (readers relabel), so `classOf` is indexed by id directly.
 * Class numbers index the dataset's `classes` names; −1 means unknown (MoNuSeg has one class, "nucleus").
 */
import { Data } from "effect";

/** One annotated tile. */
export interface Sample {
  /** unique within the dataset, e.g. `fold1/0042`, `train_3` */
  readonly id: string;
  /** organ / tissue name, "" when unknown */
  readonly organ: string;
  readonly height: number;
  readonly width: number;
  /** [H, W, 3] RGB, row-major interleaved */
  readonly image: Uint8Array;
  /** [H, W] instance ids, 0 = background, 1..n contiguous */
  readonly instances: Int32Array;
  /** class of instance id k at index k (index 0 unused, −1); length n + 1 */
  readonly classOf: Int32Array;
}

/** What a dataset knows about itself besides its samples. */
export interface DatasetInfo {
  /** e.g. `pannuke`, `consep`, `monuseg`, `folder`, `synthetic` */
  readonly kind: string;
  /** class names; class number k is `classes[k]` */
  readonly classes: ReadonlyArray<string>;
}

/** A readable dataset: its info, its size, and its samples one at a time (bounded memory). */
export interface Dataset extends DatasetInfo {
  readonly size: number;
  /** sample i, 0 ≤ i < size */
  readonly sample: (i: number) => Promise<Sample>;
  /** releases open files */
  readonly close: () => void;
  /** problems worth a warning found while reading so far (e.g. pixels claimed by two classes) */
  readonly warnings?: () => ReadonlyArray<string>;
}

/** The distinct organs of a dataset's samples, sorted ("" for samples without one). */
export const datasetOrgans = async (ds: Dataset): Promise<string[]> => {
  const organs = new Set<string>();
  for (let i = 0; i < ds.size; i++) organs.add((await ds.sample(i)).organ);
  return [...organs].sort();
};

/** A file or folder that cannot be read as the dataset it claims to be. */
export class DatasetError extends Data.TaggedError("DatasetError")<{ readonly file: string; readonly reason: string }> {
  override get message(): string {
    return `${this.file}: ${this.reason}`;
  }
}

/**
 * Relabels an instance map to contiguous ids 1..n (in order of first appearance in raster order)
 * and returns the old id of each new id (`oldIds[k - 1]` for new id k).
 */
export const relabelContiguous = (map: Int32Array): { instances: Int32Array; oldIds: number[] } => {
  const next = new Map<number, number>();
  const oldIds: number[] = [];
  const instances = new Int32Array(map.length);
  for (let i = 0; i < map.length; i++) {
    const v = map[i] as number;
    if (v === 0) continue;
    let id = next.get(v);
    if (id === undefined) {
      oldIds.push(v);
      next.set(v, id = oldIds.length);
    }
    instances[i] = id;
  }
  return { instances, oldIds };
};

/** Checks the invariants of a sample; returns the first problem, or undefined. */
export const sampleProblem = (s: Sample): string | undefined => {
  const n = s.height * s.width;
  if (s.image.length !== n * 3) return `image has ${s.image.length} values, expected ${n * 3} ([H, W, 3])`;
  if (s.instances.length !== n) return `instance map has ${s.instances.length} values, expected ${n}`;
  let max = 0;
  for (let i = 0; i < n; i++) {
    const v = s.instances[i] as number;
    if (v < 0) return `negative instance id ${v}`;
    if (v > max) max = v;
  }
  if (s.classOf.length !== max + 1) {
    return `classOf has ${s.classOf.length} entries, expected ${max + 1} (ids 0..${max})`;
  }
  return undefined;
};
