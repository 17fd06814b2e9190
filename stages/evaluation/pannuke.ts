/**
 * PanNuke bPQ, mPQ, per-class PQ, per-tissue averages and detection/type F1
 * (../shared/design/specs/metrics.md, "PanNuke"). Images are evaluated one at a time
 * (`pannukeImage`) and folded into an accumulator, so a whole fold streams in bounded memory.
 *
 * Layout: [H, W, C] per image, channels 0 neoplastic, 1 inflammatory, 2 connective, 3 dead,
 * 4 epithelial, 5 background (never read); values are instance ids, truncated to integers.
 */
import { detectionScores, emptyPairing, pairImage, type Pairing, type Point } from "./detection.ts";
import { distinctCount, type LabelTable, labelTable, overlapTables } from "./overlap.ts";
import { panopticQuality } from "./pq.ts";

export const PANNUKE_CLASSES = ["neoplastic", "inflammatory", "connective", "dead", "epithelial"] as const;
export type PannukeClass = (typeof PANNUKE_CLASSES)[number];

export const PANNUKE_TISSUES = [
  "Adrenal_gland",
  "Bile-duct",
  "Bladder",
  "Breast",
  "Cervix",
  "Colon",
  "Esophagus",
  "HeadNeck",
  "Kidney",
  "Liver",
  "Lung",
  "Ovarian",
  "Pancreatic",
  "Prostate",
  "Skin",
  "Stomach",
  "Testis",
  "Thyroid",
  "Uterus",
] as const;

/** One image as interleaved [H, W, C] values (any numeric typed array). */
export interface PannukeImage {
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  readonly data: ArrayLike<number>;
}

/** Channel `c` as integer ids; a negative or non-finite value throws a RangeError naming the pixel. */
export const channelIds = (image: PannukeImage, c: number, what: string): Int32Array => {
  const n = image.height * image.width, out = new Int32Array(n), C = image.channels;
  for (let i = 0; i < n; i++) {
    const v = Math.trunc(image.data[i * C + c] as number);
    if (!(v >= 0 && v <= 2147483647)) {
      throw new RangeError(
        `${what}: channel ${c} at row ${Math.floor(i / image.width)}, column ${i % image.width} holds ${
          image.data[i * C + c]
        }; expected a non-negative instance id`,
      );
    }
    out[i] = v;
  }
  return out;
};

/** binarize: every (channel, id) of channels 0..4 becomes one instance; later channels overwrite. */
export const binarize = (channels: ReadonlyArray<LabelTable>): Int32Array => {
  const out = new Int32Array((channels[0] as LabelTable).map.length);
  let offset = 0;
  for (const ch of channels) {
    // slot[id] is the rank of id among the channel's ids (1-based): the label is offset + rank
    const { map, slot } = ch;
    for (let i = 0; i < map.length; i++) {
      const s = slot[map[i] as number] as number;
      if (s !== 0) out[i] = offset + s;
    }
    offset += ch.ids.length;
  }
  return out;
};

/** Per-image results. */
export interface PannukeImageResult {
  readonly bPQ: number;
  readonly mPQ: number;
  readonly classPQ: ReadonlyArray<number>; // one per class, NaN where the class is absent from the truth
  readonly truthPoints: Point[];
  readonly predPoints: Point[];
}

/** Mean of the non-NaN values; NaN when there are none. */
export const nanMean = (xs: ReadonlyArray<number>): number => {
  const kept = xs.filter((x) => !Number.isNaN(x));
  return kept.length === 0 ? NaN : kept.reduce((a, b) => a + b, 0) / kept.length;
};

/** Nuclei of channels 0..4 as points: type = channel + 1, centroid = centre of mass. */
const points = (channels: ReadonlyArray<LabelTable>): Point[] =>
  channels.flatMap((ch, c) =>
    Array.from(ch.ids, (_, k) => {
      const area = ch.areas[k] as number;
      return { x: (ch.sumX[k] as number) / area, y: (ch.sumY[k] as number) / area, type: c + 1 };
    })
  );

/** Evaluates one image pair (truth ≥ 5 channels, prediction ≥ 5 channels, same H and W). */
export const pannukeImage = (truth: PannukeImage, pred: PannukeImage, label = "image"): PannukeImageResult => {
  const t = PANNUKE_CLASSES.map((_, c) => labelTable(channelIds(truth, c, `${label} (truth)`), truth.width));
  const p = PANNUKE_CLASSES.map((_, c) => labelTable(channelIds(pred, c, `${label} (prediction)`), pred.width));
  const bt = labelTable(binarize(t), truth.width);
  const bPQ = distinctCount(bt) === 1
    ? NaN
    : panopticQuality(overlapTables(bt, labelTable(binarize(p), pred.width))).pq;
  const classPQ = t.map((
    tc,
    c,
  ) => (distinctCount(tc) === 1 ? NaN : panopticQuality(overlapTables(tc, p[c] as LabelTable)).pq));
  return { bPQ, mPQ: nanMean(classPQ), classPQ, truthPoints: points(t), predPoints: points(p) };
};

/** The dataset-level result (NaN → null when written as JSON). */
export interface PannukeResult {
  readonly bPQ: number;
  readonly mPQ: number;
  readonly classPQ: Record<PannukeClass, number>;
  readonly tissues: Record<string, { readonly bPQ: number; readonly mPQ: number }>;
  readonly detection: {
    readonly f1: number;
    readonly precision: number;
    readonly recall: number;
    readonly accuracy: number;
    readonly typeF1: Record<PannukeClass, number>;
    readonly clsF1: number;
  };
  readonly perImage: ReadonlyArray<
    { readonly bPQ: number; readonly mPQ: number; readonly classPQ: Record<PannukeClass, number> }
  >;
}

const byClass = (values: ReadonlyArray<number>): Record<PannukeClass, number> =>
  Object.fromEntries(PANNUKE_CLASSES.map((name, c) => [name, values[c] as number])) as Record<PannukeClass, number>;

/** Folds per-image results (in image order) into the dataset result. */
export class PannukeAccumulator {
  private readonly images: Array<{ readonly result: PannukeImageResult; readonly tissue: string }> = [];
  private readonly pairing: Pairing = emptyPairing();

  add(result: PannukeImageResult, tissue: string): void {
    pairImage(result.truthPoints, result.predPoints, this.pairing);
    // points are no longer needed: keep memory bounded for whole folds
    this.images.push({ result: { ...result, truthPoints: [], predPoints: [] }, tissue });
  }

  result(): PannukeResult {
    const tissues: Record<string, { bPQ: number; mPQ: number }> = {};
    for (const name of PANNUKE_TISSUES) {
      const members = this.images.filter((im) => im.tissue === name);
      if (members.length === 0) continue;
      tissues[name] = {
        bPQ: nanMean(members.map((m) => m.result.bPQ)),
        mPQ: nanMean(members.map((m) => m.result.mPQ)),
      };
    }
    const tissueValues = PANNUKE_TISSUES.filter((name) => tissues[name] !== undefined).map((name) =>
      tissues[name] as { bPQ: number; mPQ: number }
    );
    const classPQ = PANNUKE_CLASSES.map((_, c) => nanMean(this.images.map((im) => im.result.classPQ[c] as number)));
    const det = detectionScores(this.pairing, { types: [1, 2, 3, 4, 5] });
    const typeF1 = PANNUKE_CLASSES.map((_, c) => det.typeF1.get(c + 1) as number);
    return {
      bPQ: nanMean(tissueValues.map((v) => v.bPQ)),
      mPQ: nanMean(tissueValues.map((v) => v.mPQ)),
      classPQ: byClass(classPQ),
      tissues,
      detection: {
        f1: det.f1,
        precision: det.precision,
        recall: det.recall,
        accuracy: det.accuracy,
        typeF1: byClass(typeF1),
        clsF1: nanMean(typeF1),
      },
      perImage: this.images.map(({ result }) => ({
        bPQ: result.bPQ,
        mPQ: result.mPQ,
        classPQ: byClass(result.classPQ),
      })),
    };
  }
}
