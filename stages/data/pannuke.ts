/**
 * PanNuke (`pannuke:DIR`): fold folders `Fold N/images/foldN/images.npy` ([N,256,256,3] float64
 * 0–255 RGB), `Fold N/images/foldN/types.npy` (tissue names, numpy unicode) and
 * `Fold N/masks/foldN/masks.npy` ([N,256,256,6] float64: 0 neoplastic, 1 inflammatory,
 * 2 connective, 3 dead, 4 epithelial, 5 background; ids not contiguous).
 *
 * DIR is the PanNuke root (holding `Fold 1`…`Fold 3`) or one fold folder. Tiles are read one at a
 * time through slab reads, so a fold never sits in memory as float64. A tile's instances are the
 * (channel, id) pairs of channels 0–4, relabelled 1..n; a pixel claimed by two channels goes to the
 * later channel (as PanNuke's own binarize does) and is counted in `warnings()`.
 * `writePannukeFold` writes the same layout (used by `deno task data synth`).
 */
import { encodeStringsNpy, NpyError, npyHeader, type NpyReader, openNpy, readNpy } from "../../pipeline/codec/npy.ts";
import { type Dataset, DatasetError, relabelContiguous, type Sample } from "./sample.ts";

export const PANNUKE_CLASS_NAMES = ["neoplastic", "inflammatory", "connective", "dead", "epithelial"] as const;

interface Fold {
  readonly number: number;
  readonly images: NpyReader;
  readonly masks: NpyReader;
  readonly types: ReadonlyArray<string>;
}

const isDirectory = (path: string) => Deno.stat(path).then((s) => s.isDirectory, () => false);

/** The fold folders under DIR (`Fold N` subfolders), or DIR itself when it is one fold. */
const foldFolders = async (dir: string): Promise<Array<{ number: number; path: string }>> => {
  if (await isDirectory(`${dir}/images`)) {
    for await (const e of Deno.readDir(`${dir}/images`)) {
      const m = /^fold(\d+)$/i.exec(e.name);
      if (e.isDirectory && m !== null) return [{ number: Number(m[1]), path: dir }];
    }
    return [];
  }
  const found: Array<{ number: number; path: string }> = [];
  for await (const e of Deno.readDir(dir)) {
    const m = /^fold\s*(\d+)$/i.exec(e.name);
    if (e.isDirectory && m !== null) found.push({ number: Number(m[1]), path: `${dir}/${e.name}` });
  }
  return found.sort((a, b) => a.number - b.number);
};

const npyFailure = (file: string) => (e: unknown) =>
  new DatasetError({ file, reason: e instanceof NpyError ? e.reason : e instanceof Error ? e.message : String(e) });

const openFold = async (number: number, path: string): Promise<Fold> => {
  const imagesPath = `${path}/images/fold${number}/images.npy`;
  const typesPath = `${path}/images/fold${number}/types.npy`;
  const masksPath = `${path}/masks/fold${number}/masks.npy`;
  const images = await openNpy(imagesPath).catch((e) => Promise.reject(npyFailure(imagesPath)(e)));
  try {
    const masks = await openNpy(masksPath).catch((e) => Promise.reject(npyFailure(masksPath)(e)));
    try {
      const typesArray = await readNpy(typesPath).catch((e) => Promise.reject(npyFailure(typesPath)(e)));
      const [n, h, w, c] = images.header.shape;
      if (images.header.shape.length !== 4 || c !== 3) {
        throw new DatasetError({
          file: imagesPath,
          reason: `expected [N, H, W, 3], found shape (${images.header.shape.join(", ")})`,
        });
      }
      const ms = masks.header.shape;
      if (ms.length !== 4 || ms[0] !== n || ms[1] !== h || ms[2] !== w || ms[3] !== 6) {
        throw new DatasetError({
          file: masksPath,
          reason: `expected shape (${n}, ${h}, ${w}, 6) to match images.npy, found (${ms.join(", ")})`,
        });
      }
      if (ArrayBuffer.isView(typesArray.data) || typesArray.data.length !== n) {
        throw new DatasetError({
          file: typesPath,
          reason: `expected ${n} tissue names (unicode), found dtype ${typesArray.dtype} shape (${
            typesArray.shape.join(", ")
          })`,
        });
      }
      for (const [file, dtype] of [[imagesPath, images.header.dtype], [masksPath, masks.header.dtype]] as const) {
        if (dtype.startsWith("U")) throw new DatasetError({ file, reason: `expected numbers, found dtype ${dtype}` });
      }
      return { number, images, masks, types: typesArray.data as ReadonlyArray<string> };
    } catch (e) {
      masks.close();
      throw e;
    }
  } catch (e) {
    images.close();
    throw e;
  }
};

/** One tile from its image slab ([H,W,3] numbers) and mask slab ([H,W,6]); errors name `files.images` or `files.masks`. */
export const pannukeTile = (
  id: string,
  organ: string,
  height: number,
  width: number,
  image: ArrayLike<number>,
  masks: ArrayLike<number>,
  files: { readonly images: string; readonly masks: string },
): { sample: Sample; conflicts: number } => {
  const n = height * width;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n * 3; i++) {
    const v = image[i] as number;
    if (!(v >= 0 && v <= 255.5)) {
      throw new DatasetError({ file: files.images, reason: `tile ${id}: image value ${v} outside 0–255` });
    }
    rgb[i] = Math.round(v);
  }
  // key = channel · 2^24 + id: one instance per (channel, id)
  const keys = new Int32Array(n);
  let conflicts = 0;
  for (let i = 0; i < n; i++) {
    let key = 0;
    for (let c = 0; c < 5; c++) {
      const v = Math.trunc(masks[i * 6 + c] as number);
      if (v === 0) continue;
      if (!(v > 0 && v < 1 << 24)) {
        throw new DatasetError({
          file: files.masks,
          reason: `tile ${id}: mask channel ${c} holds ${
            masks[i * 6 + c]
          }; expected a non-negative instance id below 2^24`,
        });
      }
      if (key !== 0) conflicts++;
      key = c * (1 << 24) + v; // later channels win
    }
    keys[i] = key;
  }
  const { instances, oldIds } = relabelContiguous(keys);
  const classOf = new Int32Array(oldIds.length + 1);
  classOf[0] = -1;
  oldIds.forEach((key, k) => (classOf[k + 1] = Math.floor(key / (1 << 24))));
  return { sample: { id, organ, height, width, image: rgb, instances, classOf }, conflicts };
};

/** Opens PanNuke at DIR (the root with `Fold N` folders, or one fold folder). */
export const openPannuke = async (
  dir: string,
): Promise<Dataset & { readonly folds: ReadonlyArray<{ number: number; size: number }> }> => {
  const folders = await foldFolders(dir).catch((e) =>
    Promise.reject(new DatasetError({ file: dir, reason: `cannot list (${e instanceof Error ? e.message : e})` }))
  );
  if (folders.length === 0) {
    throw new DatasetError({
      file: dir,
      reason: "no PanNuke fold found (expected 'Fold N/images/foldN/images.npy' or 'images/foldN/images.npy')",
    });
  }
  const folds: Fold[] = [];
  try {
    for (const f of folders) folds.push(await openFold(f.number, f.path));
  } catch (e) {
    folds.forEach((f) => [f.images.close(), f.masks.close()]);
    throw e;
  }
  const starts: number[] = [];
  let total = 0;
  for (const f of folds) {
    starts.push(total);
    total += f.images.header.shape[0] as number;
  }
  let conflicts = 0, conflictTiles = 0;
  return {
    kind: "pannuke",
    classes: PANNUKE_CLASS_NAMES,
    size: total,
    folds: folds.map((f) => ({ number: f.number, size: f.images.header.shape[0] as number })),
    sample: async (i) => {
      if (!(Number.isInteger(i) && i >= 0 && i < total)) {
        throw new RangeError(`pannuke: sample ${i} outside [0, ${total})`);
      }
      let k = folds.length - 1;
      while ((starts[k] as number) > i) k--;
      const fold = folds[k] as Fold, j = i - (starts[k] as number);
      const [, h, w] = fold.images.header.shape as [number, number, number, number];
      const [image, masks] = await Promise.all([fold.images.read(j), fold.masks.read(j)]);
      const { sample, conflicts: c } = pannukeTile(
        `fold${fold.number}/${String(j).padStart(4, "0")}`,
        fold.types[j] as string,
        h,
        w,
        image.data as ArrayLike<number>,
        masks.data as ArrayLike<number>,
        { images: fold.images.path, masks: fold.masks.path },
      );
      if (c > 0) [conflicts, conflictTiles] = [conflicts + c, conflictTiles + 1];
      return sample;
    },
    close: () => folds.forEach((f) => [f.images.close(), f.masks.close()]),
    warnings: () =>
      conflicts === 0
        ? []
        : [`${conflicts} pixels in ${conflictTiles} tiles were claimed by two classes; the later channel was kept`],
  };
};

/**
 * Writes samples as one PanNuke fold under `dir/Fold N/…` (images and masks as `dtype`, float64 by
 * default like PanNuke). Samples must share one size and use class numbers 0–4.
 */
export const writePannukeFold = async (
  dir: string,
  number: number,
  count: number,
  sampleAt: (i: number) => Sample | Promise<Sample>,
  options: { readonly dtype?: "f8" | "u1"; readonly onTile?: (i: number) => void } = {},
): Promise<void> => {
  const dtype = options.dtype ?? "f8";
  const root = `${dir}/Fold ${number}`;
  await Deno.mkdir(`${root}/images/fold${number}`, { recursive: true });
  await Deno.mkdir(`${root}/masks/fold${number}`, { recursive: true });
  const first = await sampleAt(0);
  const { height: h, width: w } = first;
  const descr = dtype === "f8" ? "<f8" : "|u1";
  const tmp = (p: string) => `${p}.${Deno.pid}.tmp`;
  const imagesPath = `${root}/images/fold${number}/images.npy`, masksPath = `${root}/masks/fold${number}/masks.npy`;
  const types: string[] = [];
  {
    using images = await Deno.open(tmp(imagesPath), { write: true, create: true, truncate: true });
    using masks = await Deno.open(tmp(masksPath), { write: true, create: true, truncate: true });
    const writeAll = async (file: Deno.FsFile, bytes: Uint8Array) => {
      for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
    };
    await writeAll(images, npyHeader(descr, [count, h, w, 3]));
    await writeAll(masks, npyHeader(descr, [count, h, w, 6]));
    for (let i = 0; i < count; i++) {
      const s = i === 0 ? first : await sampleAt(i);
      if (s.height !== h || s.width !== w) {
        throw new RangeError(`writePannukeFold: sample ${s.id} is ${s.height}×${s.width}, expected ${h}×${w}`);
      }
      const mask = new Float64Array(h * w * 6);
      const perClass = [0, 0, 0, 0, 0];
      const channelId = new Int32Array(s.classOf.length); // per-class ids 1, 2, … like PanNuke
      for (let k = 1; k < s.classOf.length; k++) {
        const c = s.classOf[k] as number;
        if (!(c >= 0 && c < 5)) {
          throw new RangeError(`writePannukeFold: sample ${s.id} instance ${k} has class ${c}; PanNuke needs 0–4`);
        }
        channelId[k] = ++perClass[c]!;
      }
      for (let i2 = 0; i2 < h * w; i2++) {
        const id = s.instances[i2] as number;
        if (id === 0) mask[i2 * 6 + 5] = 1;
        else mask[i2 * 6 + (s.classOf[id] as number)] = channelId[id] as number;
      }
      const image = Float64Array.from(s.image);
      await writeAll(images, dtype === "f8" ? new Uint8Array(image.buffer) : s.image);
      await writeAll(masks, dtype === "f8" ? new Uint8Array(mask.buffer) : Uint8Array.from(mask));
      types.push(s.organ);
      options.onTile?.(i);
    }
  }
  await Deno.writeFile(`${root}/images/fold${number}/types.npy`, encodeStringsNpy(types));
  // complete files appear only at the end: a crash never leaves a fold that looks whole
  await Deno.rename(tmp(imagesPath), imagesPath);
  await Deno.rename(tmp(masksPath), masksPath);
};
