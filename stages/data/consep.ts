/**
 * CoNSeP (`consep:DIR`; Graham et al., Medical Image Analysis 2019, "HoVer-Net"): colorectal H&E
 * tiles as in the official `Train/` and `Test/` folders, `DIR/Images/NAME.png` with
 * `DIR/Labels/NAME.mat` (MATLAB v5, read by mat.ts). A label holds `inst_map` [H, W] (0 background,
 * ids 1..N) and `inst_type` [N, 1] (original class 1..7 of id k at row k − 1); `type_map` and
 * `inst_centroid` are not read.
 *
 * Classes: the 7 original ones, class number = original type − 1, or with `merge` HoVer-Net's
 * four: {1}→other, {2}→inflammatory, {3,4}→epithelial, {5,6,7}→spindle-shaped.
 *
 * Gotchas:
 * - Samples are in natural order of the name (train_1, train_2, …, train_10), id = file stem.
 * - Instance ids are relabelled to 1..n in raster order of first appearance; `classOf` follows.
 * - `inst_type` may be int32 or double (the official release uses double); any integer-valued
 *   numeric class is accepted. Its length must equal the largest id in `inst_map`.
 * - An `inst_type` of 0 (background; does not occur in CoNSeP) makes that nucleus class −1
 *   (unknown) rather than failing: its pixels are still a nucleus. Other values outside 0..7 fail.
 * - The image must have the size of `inst_map`; alpha is dropped, grey becomes RGB.
 */
import { type MatMatrix, readMat } from "./mat.ts";
import { readRgb } from "./image.ts";
import { type Dataset, DatasetError, relabelContiguous, type Sample } from "./sample.ts";

/** The 7 original classes; class number = original type − 1. */
export const CONSEP_CLASSES: ReadonlyArray<string> = [
  "other",
  "inflammatory",
  "healthy epithelial",
  "malignant epithelial",
  "fibroblast",
  "muscle",
  "endothelial",
];

/** HoVer-Net's 4 merged classes. */
export const CONSEP_MERGED_CLASSES: ReadonlyArray<string> = ["other", "inflammatory", "epithelial", "spindle-shaped"];

/** original type 0..7 → merged class (0 → unknown) */
const MERGE: ReadonlyArray<number> = [-1, 0, 1, 2, 2, 3, 3, 3];

/** Orders names with their digit runs compared as numbers: train_2 < train_10. */
export const naturalCompare = (a: string, b: string): number => {
  const pa = a.match(/\d+|\D+/g) ?? [], pb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] as string, y = pb[i] as string;
    if (x === y) continue;
    const digits = /^\d/.test(x) && /^\d/.test(y);
    if (digits && Number(x) !== Number(y)) return Number(x) - Number(y);
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
};

/** Files `NAME.ext` in `folder`, by stem. */
const listStems = async (folder: string, ext: string): Promise<Map<string, string>> => {
  const out = new Map<string, string>();
  try {
    for await (const e of Deno.readDir(folder)) {
      if (e.isFile && !e.name.startsWith(".") && e.name.toLowerCase().endsWith(ext)) {
        out.set(e.name.slice(0, -ext.length), `${folder}/${e.name}`);
      }
    }
  } catch (e) {
    throw new DatasetError({
      file: folder,
      reason: `cannot list (${e instanceof Error ? e.message : e}); expected CoNSeP's Images/ and Labels/ folders`,
    });
  }
  return out;
};

/** The values of an integer-valued matrix as int32, whatever its class. */
const integers = (m: MatMatrix, key: string, file: string): Int32Array => {
  if (m.data instanceof Int32Array) return m.data;
  const out = new Int32Array(m.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = Number(m.data[i] as number | bigint);
    if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
      throw new DatasetError({ file, reason: `'${key}' must hold 32-bit integers, found ${v} at element ${i}` });
    }
    out[i] = v;
  }
  return out;
};

/** Reads one label file: the instance map [H, W] and the original type of each id (row k − 1 = id k). */
const readLabel = async (file: string) => {
  const { variables } = await readMat(file, ["inst_map", "inst_type"]);
  const map = variables.get("inst_map") as MatMatrix, type = variables.get("inst_type") as MatMatrix;
  if (map.shape.length !== 2) {
    throw new DatasetError({ file, reason: `'inst_map' must be 2-D [H, W], found [${map.shape}]` });
  }
  if (type.shape.length !== 2 || Math.min(...type.shape) > 1) {
    throw new DatasetError({ file, reason: `'inst_type' must be a vector [N, 1], found [${type.shape}]` });
  }
  const instMap = integers(map, "inst_map", file); // [H, W]
  const instType = integers(type, "inst_type", file); // [N]
  let maxId = 0;
  for (let i = 0; i < instMap.length; i++) {
    const v = instMap[i] as number;
    if (v < 0) throw new DatasetError({ file, reason: `'inst_map' holds a negative id ${v}; expected 0..N` });
    if (v > maxId) maxId = v;
  }
  if (instType.length !== maxId) {
    throw new DatasetError({
      file,
      reason:
        `'inst_type' has ${instType.length} rows but the largest id in 'inst_map' is ${maxId}; expected one row per id`,
    });
  }
  return { height: map.shape[0] as number, width: map.shape[1] as number, instMap, instType };
};

/** Opens CoNSeP at DIR (holding `Images/` and `Labels/`); checks that every image has its label. */
export const openConsep = async (dir: string, options: { readonly merge?: boolean } = {}): Promise<Dataset> => {
  const images = await listStems(`${dir}/Images`, ".png");
  const labels = await listStems(`${dir}/Labels`, ".mat");
  for (const [stem, file] of images) {
    if (!labels.has(stem)) throw new DatasetError({ file, reason: `no label file Labels/${stem}.mat for this image` });
  }
  for (const [stem, file] of labels) {
    if (!images.has(stem)) throw new DatasetError({ file, reason: `no image Images/${stem}.png for this label` });
  }
  if (images.size === 0) {
    throw new DatasetError({
      file: `${dir}/Images`,
      reason: "no .png images (expected NAME.png with Labels/NAME.mat)",
    });
  }
  const stems = [...images.keys()].sort(naturalCompare);
  const merge = options.merge ?? false;
  const classes = merge ? CONSEP_MERGED_CLASSES : CONSEP_CLASSES;
  return {
    kind: "consep",
    classes,
    size: stems.length,
    sample: async (i): Promise<Sample> => {
      const stem = stems[i];
      if (stem === undefined) throw new RangeError(`consep: sample ${i} outside [0, ${stems.length})`);
      const imageFile = images.get(stem) as string, labelFile = labels.get(stem) as string;
      const [image, label] = await Promise.all([readRgb(imageFile), readLabel(labelFile)]);
      if (image.height !== label.height || image.width !== label.width) {
        throw new DatasetError({
          file: imageFile,
          reason:
            `image is ${image.height}×${image.width} (H×W) but 'inst_map' in ${labelFile} is [${label.height}, ${label.width}]`,
        });
      }
      const { instances, oldIds } = relabelContiguous(label.instMap);
      const classOf = new Int32Array(oldIds.length + 1); // [n + 1]
      classOf[0] = -1;
      oldIds.forEach((old, k) => {
        const type = label.instType[old - 1] as number;
        if (type < 0 || type > 7) {
          throw new DatasetError({
            file: labelFile,
            reason: `'inst_type' for id ${old} (row ${old - 1}) is ${type}; expected a class 1..7 (0: unknown)`,
          });
        }
        classOf[k + 1] = type === 0 ? -1 : merge ? MERGE[type] as number : type - 1;
      });
      return {
        id: stem,
        organ: "colon",
        height: image.height,
        width: image.width,
        image: image.rgb,
        instances,
        classOf,
      };
    },
    close: () => {},
  };
};
