/**
 * The files of one predicted image, as bytes: instance map (16-bit PNG, .npy), class map, overlay
 * with a legend, per-nucleus JSON, QuPath GeoJSON and the PanNuke layout for `deno task evaluate`.
 * `imageOutputs` maps the prediction (made at the model's resolution) back to the image's pixels
 * first, so every file is in the image's own coordinates.
 */
import { Effect } from "effect";
import { Buffer } from "node:buffer";
import sharp from "sharp";
import { encodeNpy } from "../../pipeline/codec/npy.ts";
import { encodePng } from "../../pipeline/codec/png.ts";
import type { AttributeWords } from "../attributes/stages.ts";
import { contourOverlay } from "../data/overlay.ts";
import { PANNUKE_CHANNELS, panNukeLayout } from "../model/heldout.ts";
import { qupathGeoJson } from "./geojson.ts";
import { classColour, detectionsOf, nucleiOf, type Nucleus } from "./nuclei.ts";
import { resizeLabels, type ScaledImage } from "./scale.ts";
import type { StoredPrediction } from "./stages.ts";

/** Relabels two maps of the same ids to 1..n by the ids present in `keep`; classOf and scores follow. */
export const relabelBy = (
  keep: Int32Array,
  other: Int32Array,
  classOf: ArrayLike<number>,
  scores: ArrayLike<number>,
) => {
  const remap = new Int32Array(classOf.length);
  for (let i = 0; i < keep.length; i++) remap[keep[i] as number] = 1;
  remap[0] = 0; // background stays 0
  const newClass = [-1], newScore = [0];
  for (let id = 1; id < remap.length; id++) {
    if (remap[id] === 0) continue;
    remap[id] = newClass.length;
    newClass.push(classOf[id] as number), newScore.push(scores[id] as number);
  }
  return {
    keep: keep.map((id) => remap[id] as number),
    other: other.map((id) => remap[id] as number),
    classOf: Int32Array.from(newClass),
    scores: Float32Array.from(newScore),
  };
};

/** [H, W] class map: class + 1 per pixel, 0 on background (the folder layout of `deno task evaluate`). */
export const classMap = (instances: Int32Array, classOf: ArrayLike<number>): Uint8Array =>
  Uint8Array.from(instances, (id) => (id === 0 ? 0 : Math.max(0, (classOf[id] as number) + 1)));

const escapeXml = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** The legend strip (SVG): one swatch per class with its count, and the total. */
export const legendSvg = (classes: ReadonlyArray<string>, counts: ReadonlyArray<number>, height: number): string => {
  const width = 220, row = 22, total = counts.reduce((a, b) => a + b, 0);
  const items = classes.map((name, c) => {
    const [r, g, b] = classColour(c), y = 40 + c * row;
    return `<rect x="12" y="${
      y - 12
    }" width="16" height="16" fill="none" stroke="rgb(${r},${g},${b})" stroke-width="3"/>` +
      `<text x="36" y="${y + 1}">${escapeXml(name)} (${counts[c] ?? 0})</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<rect width="${width}" height="${height}" fill="white"/>` +
    `<g font-family="sans-serif" font-size="14" fill="black"><text x="12" y="20" font-weight="bold">${total} nuclei</text>` +
    items.join("") + `</g></svg>`;
};

/** Legend rows need this much height. */
const legendHeight = (classes: number) => 50 + classes * 22;

/** The overlay PNG: contours in class colours on the image, a legend strip on the right. */
export const overlayPng = async (
  rgb: Uint8Array,
  height: number,
  width: number,
  instances: Int32Array,
  classOf: Int32Array,
  classes: ReadonlyArray<string>,
): Promise<Uint8Array> => {
  const drawn = contourOverlay({ id: "", organ: "", height, width, image: rgb, instances, classOf });
  const counts = classes.map(() => 0);
  for (let id = 1; id < classOf.length; id++) {
    const c = classOf[id] as number;
    if (c >= 0 && c < counts.length) counts[c] = (counts[c] as number) + 1;
  }
  const fullHeight = Math.max(height, legendHeight(classes.length));
  const legend = Buffer.from(legendSvg(classes, counts, fullHeight));
  const buffer = await sharp(drawn, { raw: { width, height, channels: 3 } })
    .extend({ right: 220, bottom: fullHeight - height, background: "white" })
    .composite([{ input: legend, left: width, top: 0 }])
    .png()
    .toBuffer();
  return new Uint8Array(buffer);
};

/** Every file of one image: relative path under the output folder → bytes or text. */
export interface ImageOutputs {
  readonly files: ReadonlyArray<readonly [string, Uint8Array | string]>;
  readonly nuclei: ReadonlyArray<Nucleus>;
  /** nuclei per class name */
  readonly counts: Readonly<Record<string, number>>;
  /** what was left out and why (e.g. no 16-bit PNG for more than 65,535 nuclei) */
  readonly notes: ReadonlyArray<string>;
}

/** PanNuke's layout is float32 [1, H, W, 6] (24 bytes a pixel): written up to this many pixels (400 MB). */
export const PANNUKE_MAX_PIXELS = 4096 * 4096;

/**
 * The files of an image: `original` is the image in its own pixels, `scaled` at the model's
 * resolution (the same object when not rescaled), `prediction` what `predict.image` stored.
 */
export const imageOutputs = async (
  name: string,
  original: { readonly rgb: Uint8Array; readonly height: number; readonly width: number },
  scaled: ScaledImage,
  prediction: StoredPrediction,
  words: AttributeWords | undefined,
): Promise<ImageOutputs> => {
  const { height: H, width: W } = original, { classes } = prediction;
  const back = resizeLabels(prediction.instances, prediction.height, prediction.width, H, W);
  const r = relabelBy(back, prediction.instances, prediction.classOf, prediction.scores);
  const n = r.classOf.length - 1;
  const nuclei = nucleiOf({
    instances: r.keep,
    height: H,
    width: W,
    classOf: r.classOf,
    scores: r.scores,
    classes,
    model: { rgb: scaled.rgb, instances: r.other, height: scaled.height, width: scaled.width },
    ...(words === undefined ? {} : { words }),
  });
  const png = (data: Uint8Array | Uint16Array, channels: 1 | 3) =>
    Effect.runPromise(encodePng({ width: W, height: H, channels, data }));
  const counts: Record<string, number> = Object.fromEntries(classes.map((c) => [c, 0]));
  for (const nucleus of nuclei) counts[nucleus.class] = (counts[nucleus.class] ?? 0) + 1;
  const notes: string[] = [];
  const files: Array<readonly [string, Uint8Array | string]> = [];
  if (n <= 65535) files.push([`instances/${name}.png`, await png(Uint16Array.from(r.keep), 1)]);
  else notes.push(`${n} nuclei do not fit a 16-bit PNG: the instance map is npy/${name}.instances.npy only`);
  files.push(
    [`classes/${name}.png`, await png(classMap(r.keep, r.classOf), 1)],
    [`npy/${name}.instances.npy`, encodeNpy(r.keep, [H, W])],
    [`npy/${name}.classes.npy`, encodeNpy(classMap(r.keep, r.classOf), [H, W])],
    [`overlays/${name}.png`, await overlayPng(original.rgb, H, W, r.keep, r.classOf, classes)],
    [
      `nuclei/${name}.json`,
      JSON.stringify({ image: name, width: W, height: H, classes, count: nuclei.length, counts, nuclei }) + "\n",
    ],
    [`geojson/${name}.geojson`, JSON.stringify(qupathGeoJson(detectionsOf(nuclei, classes))) + "\n"],
  );
  if (classes.length > PANNUKE_CHANNELS) notes.push(`${classes.length} classes have no PanNuke layout (≤ 5)`);
  else if (H * W > PANNUKE_MAX_PIXELS) {
    notes.push(`${W}×${H} is too large for PanNuke's float32 layout (≤ 4096² pixels): no pannuke/${name}.npy`);
  } else {
    const layout = panNukeLayout([{ instances: r.keep, classOf: r.classOf }], H, W);
    files.push([`pannuke/${name}.npy`, encodeNpy(layout, [1, H, W, PANNUKE_CHANNELS + 1])]);
  }
  return { files, nuclei, counts, notes };
};
