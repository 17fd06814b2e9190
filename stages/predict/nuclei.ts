/**
 * What a prediction says about each nucleus, for people and for QuPath: class, score, centroid,
 * bounding box, contour and area in the image's own pixels, and attribute words measured on the
 * predicted mask at the model's resolution with the bins fitted on the training data
 * (`attributes.words`), summed up in a sentence ("a large, very dark, irregular neoplastic nucleus").
 */
import { maskFeatures } from "../attributes/mask_features.ts";
import { wordOf } from "../attributes/fit.ts";
import type { AttributeWords } from "../attributes/stages.ts";
import { SCALES } from "../attributes/words.ts";
import { CLASS_COLOURS } from "../data/overlay.ts";
import { instanceContours, type Ring } from "./contours.ts";
import type { Detection } from "./geojson.ts";

/** One nucleus of the per-image JSON. */
export interface Nucleus {
  readonly id: number;
  readonly class: string;
  readonly score: number;
  /** [x, y], pixel-corner coordinates of the image (a pixel's centre is at +0.5) */
  readonly centroid: readonly [number, number];
  /** [x0, y0, x1, y1], end-exclusive pixel bounds */
  readonly bbox: readonly [number, number, number, number];
  /** closed outer ring [[x, y], …] (contours.ts) */
  readonly contour: Ring;
  /** pixels in the image */
  readonly area: number;
  /** family → word, e.g. {size: "large", color_intensity: "very dark"} (first binned feature of each family) */
  readonly attributes: Readonly<Record<string, string>>;
  /** feature → value at the model's resolution, for the binned features */
  readonly features: Readonly<Record<string, number | null>>;
  readonly description: string;
}

/** The class colour of class `c` (−1, unknown: white). */
export const classColour = (c: number): readonly [number, number, number] =>
  c < 0 ? [255, 255, 255] : CLASS_COLOURS[c % CLASS_COLOURS.length] as readonly [number, number, number];

/** `a large, very dark, irregular neoplastic nucleus`; `a nucleus` with nothing known. */
export const describe = (words: ReadonlyArray<string>, className: string | null): string => {
  const text = [words.join(", "), className ?? ""].filter((s) => s !== "").join(" ");
  const noun = text === "" ? "nucleus" : `${text} nucleus`;
  return `${/^[aeiou]/i.test(noun) ? "an" : "a"} ${noun}`;
};

/** Per instance id: pixel count, sums of coordinates and bounds, from one pass over the map. */
const geometry = (instances: Int32Array, height: number, width: number, n: number) => {
  const area = new Int32Array(n + 1), sx = new Float64Array(n + 1), sy = new Float64Array(n + 1);
  const x0 = new Int32Array(n + 1).fill(width), y0 = new Int32Array(n + 1).fill(height);
  const x1 = new Int32Array(n + 1), y1 = new Int32Array(n + 1);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const id = instances[y * width + x] as number;
      if (id === 0) continue;
      area[id] = (area[id] as number) + 1;
      sx[id] = (sx[id] as number) + x + 0.5, sy[id] = (sy[id] as number) + y + 0.5;
      if (x < (x0[id] as number)) x0[id] = x;
      if (y < (y0[id] as number)) y0[id] = y;
      if (x + 1 > (x1[id] as number)) x1[id] = x + 1;
      if (y + 1 > (y1[id] as number)) y1[id] = y + 1;
    }
  }
  return { area, sx, sy, x0, y0, x1, y1 };
};

/** Inputs of `nucleiOf`. */
export interface NucleiInputs {
  /** the prediction in the image's pixels: ids 1..n, class and score per id */
  readonly instances: Int32Array;
  readonly height: number;
  readonly width: number;
  readonly classOf: ArrayLike<number>;
  readonly scores: ArrayLike<number>;
  readonly classes: ReadonlyArray<string>;
  /** the same ids at the model's resolution with the RGB they were predicted on, for the attributes */
  readonly model?: {
    readonly rgb: Uint8Array;
    readonly instances: Int32Array;
    readonly height: number;
    readonly width: number;
  };
  /** the fitted attribute bins; absent: no attributes */
  readonly words?: AttributeWords;
}

/**
 * A nucleus's words from its mask-feature record (mask_features.ts): `features` holds the binned features' values
 * (null where not finite), `attributes` one word per family — the first binned feature of each family speaks for it,
 * families in the scales' order (size first). Without `words`, both are empty.
 */
export const attributeReader = (words: AttributeWords | undefined) => {
  const order = Object.keys(SCALES), rank = (family: string) => order.indexOf(family);
  const speakers = words === undefined ? [] : words.attributes
    .filter((a, i, all) => all.findIndex((b) => b.family === a.family) === i)
    .sort((a, b) => rank(a.family) - rank(b.family));
  return (record: Readonly<Record<string, unknown>> | undefined) => {
    const attributes: Record<string, string> = {}, features: Record<string, number | null> = {};
    for (const a of words?.attributes ?? []) {
      const v = record?.[a.feature];
      features[a.feature] = typeof v === "number" && Number.isFinite(v) ? v : null;
    }
    for (const a of speakers) {
      const word = wordOf(a, features[a.feature]);
      if (word !== null) attributes[a.family] = word;
    }
    return { attributes, features };
  };
};

/** Every nucleus of a prediction, ids ascending. */
export const nucleiOf = (p: NucleiInputs): Nucleus[] => {
  const n = p.classOf.length - 1;
  const g = geometry(p.instances, p.height, p.width, n);
  const contours = instanceContours(p.instances, p.height, p.width);
  const records = new Map<number, Readonly<Record<string, unknown>>>();
  if (p.words !== undefined && p.model !== undefined) {
    for (const r of maskFeatures(p.model.rgb, p.model.instances, p.model.height, p.model.width)) {
      records.set(r.id, r as unknown as Readonly<Record<string, unknown>>);
    }
  }
  const read = attributeReader(p.words);
  const out: Nucleus[] = [];
  for (let id = 1; id <= n; id++) {
    const area = g.area[id] as number;
    if (area === 0) continue;
    const c = p.classOf[id] as number, className = c >= 0 ? p.classes[c] ?? null : null;
    const { attributes, features } = read(records.get(id));
    out.push({
      id,
      class: className ?? "unknown",
      score: Math.round((p.scores[id] as number) * 1e4) / 1e4,
      centroid: [round2((g.sx[id] as number) / area), round2((g.sy[id] as number) / area)],
      bbox: [g.x0[id] as number, g.y0[id] as number, g.x1[id] as number, g.y1[id] as number],
      contour: contours.get(id) ?? [],
      area,
      attributes,
      features,
      description: describe(Object.values(attributes), className),
    });
  }
  return out;
};

const round2 = (v: number) => Math.round(v * 100) / 100;

/** The nuclei as QuPath detections (geojson.ts): class, colour and measurements. */
export const detectionsOf = (nuclei: ReadonlyArray<Nucleus>, classes: ReadonlyArray<string>): Detection[] =>
  nuclei.filter((n) => n.contour.length >= 4).map((n) => {
    const c = classes.indexOf(n.class);
    const measurements: Record<string, number> = { "Area px^2": n.area, "Score": n.score };
    for (const [k, v] of Object.entries(n.features)) if (v !== null) measurements[k] = v;
    return { id: n.id, className: n.class, colour: classColour(c), ring: n.contour, measurements };
  });
