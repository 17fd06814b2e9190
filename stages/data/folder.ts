/**
 * The folder format (`folder:DIR`), for users' own data:
 *
 *   DIR/dataset.json          {"classes": ["tumour", "lymphocyte", …], "organs": {"NAME": "breast", …}}
 *   DIR/images/NAME.png|jpg|jpeg|tif|tiff     RGB (alpha dropped)
 *   DIR/instances/NAME.png|npy                16-bit (or 8-bit) grey PNG, or 2-D integer .npy; 0 = background
 *   DIR/classes/NAME.json     optional {"<instance id>": class}, class = index into "classes" or its name
 *
 * `dataset.json` is optional (no classes: every nucleus is class 0 "nucleus"; organs unknown).
 * An instance without an entry in classes/NAME.json is of unknown class (−1).
 */
import { causeText } from "../../pipeline/cause_text.ts";
import { decodeNpy, NpyError } from "../../pipeline/codec/npy.ts";
import { decodePng } from "../../pipeline/codec/png.ts";
import { Effect } from "effect";
import { IMAGE_FILE, readRgb } from "./image.ts";
import { type Dataset, DatasetError, relabelContiguous, type Sample } from "./sample.ts";

const LABELS = /\.(png|npy)$/i;

const listNames = async (dir: string, pattern: RegExp): Promise<Map<string, string>> => {
  const out = new Map<string, string>();
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && pattern.test(e.name)) out.set(e.name.replace(pattern, ""), `${dir}/${e.name}`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out;
};

interface DatasetJson {
  readonly classes: ReadonlyArray<string>;
  readonly organs: Readonly<Record<string, string>>;
}

const readDatasetJson = async (file: string): Promise<DatasetJson> => {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { classes: ["nucleus"], organs: {} };
    throw new DatasetError({ file, reason: `cannot read (${e instanceof Error ? e.message : e})` });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DatasetError({ file, reason: `not valid JSON (${causeText(e)})` });
  }
  const { classes, organs } = (json ?? {}) as { classes?: unknown; organs?: unknown };
  if (!Array.isArray(classes) || classes.length === 0 || !classes.every((c) => typeof c === "string")) {
    throw new DatasetError({
      file,
      reason: `field "classes": expected a non-empty list of class names, found ${JSON.stringify(classes)}`,
    });
  }
  if (
    organs !== undefined &&
    (typeof organs !== "object" || organs === null || Object.values(organs).some((o) => typeof o !== "string"))
  ) {
    throw new DatasetError({
      file,
      reason: `field "organs": expected {"NAME": "organ", …}, found ${JSON.stringify(organs)}`,
    });
  }
  return { classes, organs: (organs ?? {}) as Record<string, string> };
};

/** Reads an instance map: [H, W] integer labels from a grey PNG or a 2-D .npy. */
const readInstances = async (file: string): Promise<{ height: number; width: number; labels: Int32Array }> => {
  const bytes = await Deno.readFile(file);
  if (file.toLowerCase().endsWith(".png")) {
    const image = await Effect.runPromise(decodePng(bytes)).catch((e) =>
      Promise.reject(new DatasetError({ file, reason: e instanceof Error ? e.message : String(e) }))
    );
    if (image.channels !== 1) {
      throw new DatasetError({
        file,
        reason: `expected a single-channel (grey) instance PNG, found ${image.channels} channels`,
      });
    }
    return { height: image.height, width: image.width, labels: Int32Array.from(image.data) };
  }
  let array;
  try {
    array = decodeNpy(bytes, file);
  } catch (e) {
    throw new DatasetError({ file, reason: e instanceof NpyError ? e.reason : String(e) });
  }
  if (array.shape.length !== 2 || !ArrayBuffer.isView(array.data)) {
    throw new DatasetError({
      file,
      reason: `expected a 2-D integer array [H, W], found dtype ${array.dtype} shape (${array.shape.join(", ")})`,
    });
  }
  const labels = new Int32Array(array.data.length);
  for (let i = 0; i < labels.length; i++) {
    const v = array.data[i] as number;
    if (!(Number.isInteger(v) && v >= 0 && v <= 2147483647)) {
      throw new DatasetError({ file, reason: `value ${v} at index ${i} is not a non-negative integer instance id` });
    }
    labels[i] = v;
  }
  return { height: array.shape[0] as number, width: array.shape[1] as number, labels };
};

/** Opens the folder format at DIR; samples are sorted by name. */
export const openFolder = async (dir: string): Promise<Dataset> => {
  const meta = await readDatasetJson(`${dir}/dataset.json`);
  const images = await listNames(`${dir}/images`, IMAGE_FILE);
  const instances = await listNames(`${dir}/instances`, LABELS);
  const classFiles = await listNames(`${dir}/classes`, /\.json$/i);
  if (images.size === 0) {
    throw new DatasetError({ file: `${dir}/images`, reason: "no images (expected images/NAME.png|jpg|tif)" });
  }
  const names = [...images.keys()].sort();
  const missing = names.find((n) => !instances.has(n));
  if (missing !== undefined) {
    throw new DatasetError({
      file: images.get(missing) as string,
      reason: `no instance map instances/${missing}.png|npy for it`,
    });
  }
  const classIndex = new Map(meta.classes.map((c, i) => [c, i]));
  return {
    kind: "folder",
    classes: meta.classes,
    size: names.length,
    sample: async (i): Promise<Sample> => {
      const name = names[i];
      if (name === undefined) throw new RangeError(`folder: sample ${i} outside [0, ${names.length})`);
      const imagePath = images.get(name) as string, instancePath = instances.get(name) as string;
      const { height, width, rgb } = await readRgb(imagePath);
      const map = await readInstances(instancePath);
      if (map.height !== height || map.width !== width) {
        throw new DatasetError({
          file: instancePath,
          reason: `size ${map.height}×${map.width} differs from its image ${imagePath} (${height}×${width})`,
        });
      }
      const { instances: relabelled, oldIds } = relabelContiguous(map.labels);
      const classOf = new Int32Array(oldIds.length + 1).fill(
        meta.classes.length === 1 && !classFiles.has(name) ? 0 : -1,
      );
      classOf[0] = -1;
      const classFile = classFiles.get(name);
      if (classFile !== undefined) {
        let table: unknown;
        try {
          table = JSON.parse(await Deno.readTextFile(classFile));
        } catch (e) {
          throw new DatasetError({ file: classFile, reason: `not valid JSON (${causeText(e)})` });
        }
        if (typeof table !== "object" || table === null || Array.isArray(table)) {
          throw new DatasetError({ file: classFile, reason: 'expected {"<instance id>": class, …}' });
        }
        const byOld = new Map(oldIds.map((old, k) => [old, k + 1]));
        for (const [key, value] of Object.entries(table)) {
          const id = byOld.get(Number(key));
          if (id === undefined) continue; // an id absent from the map: nothing to label
          const c = typeof value === "number" ? value : classIndex.get(String(value));
          if (c === undefined || !Number.isInteger(c) || c < 0 || c >= meta.classes.length) {
            throw new DatasetError({
              file: classFile,
              reason: `instance ${key}: class ${JSON.stringify(value)} is not one of 0..${meta.classes.length - 1} or ${
                meta.classes.join(", ")
              }`,
            });
          }
          classOf[id] = c;
        }
      }
      return {
        id: name,
        organ: meta.organs[name] ?? "",
        height,
        width,
        image: rgb,
        instances: relabelled,
        classOf,
      };
    },
    close: () => {},
  };
};
