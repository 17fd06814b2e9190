/**
 * The confusion matrix of matched nuclei on a held-out split in PanNuke's layout: which class the
 * model gave the nuclei it found, and, per class, the nuclei it missed and the ones it made up.
 *
 * Inputs: truth and prediction [N, H, W, C ≥ K] (channel c < K holds the ids of the class-c
 * nuclei; channel 5 = background is never read), K classes. Per tile the class channels are merged
 * into one instance map per side (`binarize`, as bPQ does; an instance's class is its channel), and
 * true and predicted instances are paired when their IoU is above 0.5 — at that threshold a
 * pairing is unique (pq.ts, HoVer-Net's convention for τ ≥ 0.5), so no assignment is solved.
 *
 * Common task: `tileConfusion` per tile read from disk, folded with `addConfusion`; or
 * `arrayConfusion` for two whole arrays in memory (tile views, no copies).
 *
 * Gotchas: where channels overlap, the later channel wins the pixel (binarize's rule), so a nucleus
 * fully covered by another class's nucleus does not count; ids need not be unique across channels.
 */
import type { NpyData } from "../../pipeline/codec/npy.ts";
import { binarize, channelIds, type PannukeImage } from "../evaluation/pannuke.ts";
import { labelTable, overlapTables } from "../evaluation/overlap.ts";
import { pairIou } from "../evaluation/pq.ts";

/** Counts over a set of tiles; class k = channel k. */
export interface Confusion {
  /** K, the number of classes */
  readonly classes: number;
  /** matched[t][p]: true nuclei of class t paired with a predicted nucleus of class p ([K][K]) */
  readonly matched: ReadonlyArray<ReadonlyArray<number>>;
  /** true nuclei of each class with no prediction of IoU > 0.5 ([K]) */
  readonly missed: ReadonlyArray<number>;
  /** predicted nuclei of each class with no true nucleus of IoU > 0.5 ([K]) */
  readonly falsePredictions: ReadonlyArray<number>;
  readonly tiles: number;
}

/** No tiles yet. */
export const emptyConfusion = (classes: number): Confusion => ({
  classes,
  matched: Array.from({ length: classes }, () => new Array<number>(classes).fill(0)),
  missed: new Array<number>(classes).fill(0),
  falsePredictions: new Array<number>(classes).fill(0),
  tiles: 0,
});

/** The sum of two confusions of the same classes. */
export const addConfusion = (a: Confusion, b: Confusion): Confusion => {
  if (a.classes !== b.classes) {
    throw new RangeError(`addConfusion: ${a.classes} classes vs ${b.classes}; expected the same classes`);
  }
  const sum = (x: ReadonlyArray<number>, y: ReadonlyArray<number>) => x.map((v, i) => v + (y[i] as number));
  return {
    classes: a.classes,
    matched: a.matched.map((row, t) => sum(row, b.matched[t] as ReadonlyArray<number>)),
    missed: sum(a.missed, b.missed),
    falsePredictions: sum(a.falsePredictions, b.falsePredictions),
    tiles: a.tiles + b.tiles,
  };
};

/** One side of a tile: its merged instance table and the class of each merged instance index. */
const merged = (image: PannukeImage, classes: number, what: string) => {
  const channels = Array.from({ length: classes }, (_, c) => labelTable(channelIds(image, c, what), image.width));
  // binarize labels channel c's instances offset_c + 1 … offset_c + n_c, in channel order
  const table = labelTable(binarize(channels), image.width);
  const bounds: number[] = [];
  let offset = 0;
  for (const ch of channels) bounds.push(offset += ch.ids.length);
  const classOf = Int32Array.from(table.ids, (id) => bounds.findIndex((end) => id <= end));
  return { table, classOf };
};

/** The confusion of one tile (truth and prediction [H, W, C], C > K − 1, same H and W). */
export const tileConfusion = (truth: PannukeImage, pred: PannukeImage, classes: number, label = "tile"): Confusion => {
  if (classes < 1 || classes > Math.min(truth.channels, pred.channels)) {
    throw new RangeError(
      `tileConfusion: ${label}: ${classes} classes need as many channels; truth has ${truth.channels}, prediction ${pred.channels}`,
    );
  }
  if (truth.height !== pred.height || truth.width !== pred.width) {
    throw new RangeError(
      `tileConfusion: ${label}: truth is ${truth.height}×${truth.width}, prediction ${pred.height}×${pred.width}; expected the same size`,
    );
  }
  const t = merged(truth, classes, `${label} (truth)`), p = merged(pred, classes, `${label} (prediction)`);
  const ov = overlapTables(t.table, p.table);
  const out = emptyConfusion(classes);
  const matched = out.matched as number[][],
    missed = out.missed as number[],
    spurious = out.falsePredictions as number[];
  const tPaired = new Uint8Array(t.classOf.length), pPaired = new Uint8Array(p.classOf.length);
  for (let k = 0; k < ov.pairs.inter.length; k++) {
    if (pairIou(ov, k) <= 0.5) continue;
    const i = ov.pairs.t[k] as number, j = ov.pairs.p[k] as number;
    tPaired[i] = 1;
    pPaired[j] = 1;
    const row = matched[t.classOf[i] as number] as number[], c = p.classOf[j] as number;
    row[c] = (row[c] as number) + 1;
  }
  t.classOf.forEach((c, i) => {
    if (!tPaired[i]) missed[c] = (missed[c] as number) + 1;
  });
  p.classOf.forEach((c, j) => {
    if (!pPaired[j]) spurious[c] = (spurious[c] as number) + 1;
  });
  return { ...out, tiles: 1 };
};

/** A whole PanNuke-layout array [N, H, W, C] in memory. */
export interface PannukeArray {
  readonly shape: ReadonlyArray<number>;
  readonly data: NpyData;
}

/** Tile `n` of an array as a view (no copy). */
export const tileOf = (array: PannukeArray, n: number): PannukeImage => {
  const [, height = 0, width = 0, channels = 0] = array.shape;
  const size = height * width * channels;
  return { height, width, channels, data: array.data.subarray(n * size, (n + 1) * size) };
};

/** The confusion of two whole arrays [N, H, W, C] (same N, H and W), tile by tile. */
export const arrayConfusion = (truth: PannukeArray, pred: PannukeArray, classes: number): Confusion => {
  if (truth.shape.length !== 4 || pred.shape.length !== 4) {
    throw new RangeError(
      `arrayConfusion: expected [N, H, W, C] arrays, found truth (${truth.shape}) and prediction (${pred.shape})`,
    );
  }
  const n = truth.shape[0] as number;
  if (pred.shape[0] !== n) {
    throw new RangeError(`arrayConfusion: truth has ${n} tiles, prediction ${pred.shape[0]}; expected the same`);
  }
  let acc = emptyConfusion(classes);
  for (let i = 0; i < n; i++) {
    acc = addConfusion(acc, tileConfusion(tileOf(truth, i), tileOf(pred, i), classes, `tile ${i}`));
  }
  return acc;
};
