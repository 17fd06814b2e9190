/**
 * The readers of the malformed-input corpus (tests/fixtures/malformed/manifest.json, whose `readers`
 * say which task uses each), each the library function that task calls, in the layout the task gives it.
 * `place` puts a corpus file where the reader looks — beside valid companions from
 * tests/fixtures/malformed/valid/ — and returns that path, which the reader's error must name;
 * `read` runs the reader (it resolves when the input was accepted). `CONTROLS` are valid inputs
 * each reader must accept, so that a refusal in the corpus is the broken file's doing.
 */
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { readRowsCsv } from "../stages/attributes/csv.ts";
import { fitAttributes } from "../stages/attributes/fit.ts";
import { openConsep } from "../stages/data/consep.ts";
import { openFolder } from "../stages/data/folder.ts";
import { readRgb } from "../stages/data/image.ts";
import { openMonuseg } from "../stages/data/monuseg.ts";
import { openPannuke } from "../stages/data/pannuke.ts";
import type { Dataset } from "../stages/data/sample.ts";
import { readLabelMap } from "../stages/evaluation/maps.ts";
import { disposeModel, loadModel, readCheckpointInfo } from "../stages/predict/model_tiles.ts";
import { encodeWithClipFolder } from "../stages/text/frozen.ts";
import { readFeatureImage, readFeatureInstances } from "../tasks/features.ts";
import { writeClipFolder } from "./_clip_folder.ts";

/** The corpus folder. */
export const CORPUS = new URL("./fixtures/malformed/", import.meta.url).pathname.replace(/\/$/, "");
const validFile = (name: string) => `${CORPUS}/valid/${name}`;

// the CLIP readers run the encoder on a valid folder (CONTROLS): tfjs's reference backend, as the tests use
await tf.setBackend("cpu");

/** How one reader is given a file. */
export interface Reader {
  /**
   * Puts `file` (a corpus path, absolute) where the reader looks, under `scratch`, and returns the path its
   * error must name; without a file, the layout's own valid companion stays.
   */
  readonly place: (file: string | undefined, scratch: string) => Promise<string>;
  /** Reads the layout; resolves when the input is accepted. */
  readonly read: (path: string, scratch: string) => Promise<unknown>;
}

const copyTo = async (from: string | undefined, to: string): Promise<string> => {
  await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
  if (from !== undefined) await Deno.copyFile(from, to);
  return to;
};
const extension = (file: string | undefined) =>
  file === undefined ? "" : file.slice(file.lastIndexOf(".")).toLowerCase();
const inPlace = (file: string | undefined) =>
  file === undefined ? Promise.reject(new Error("this reader reads a file in place")) : Promise.resolve(file);

/** Opens a dataset, reads its first sample, closes it. */
const firstSample = async (open: Promise<Dataset>) => {
  const ds = await open;
  try {
    return await ds.sample(0);
  } finally {
    ds.close();
  }
};

/** A folder-format dataset at `scratch`: images/a.png and instances/a.npy, the given files replacing any. */
const folderLayout = async (scratch: string, files: Record<string, string>) => {
  const layout: Record<string, string> = {
    "images/a.png": validFile("rgb_8x8.png"),
    "instances/a.npy": validFile("instances_8x8.npy"),
    ...files,
  };
  for (const [name, from] of Object.entries(layout)) await copyTo(from, `${scratch}/${name}`);
};

const PANNUKE = {
  images: "Fold 1/images/fold1/images.npy",
  masks: "Fold 1/masks/fold1/masks.npy",
  types: "Fold 1/images/fold1/types.npy",
};
const pannuke = (part: keyof typeof PANNUKE): Reader => ({
  place: async (file, scratch) => {
    for (const [key, name] of Object.entries(PANNUKE)) {
      if (key !== part) await copyTo(validFile(`pannuke_${key}.npy`), `${scratch}/${name}`);
    }
    return copyTo(file, `${scratch}/${PANNUKE[part]}`);
  },
  read: (_, scratch) => firstSample(openPannuke(scratch)),
});

/** A CLIP text encoder folder (tests/_clip_folder.ts) with `name` replaced by the corpus file. */
const clip = (name: string): Reader => ({
  place: async (file, scratch) => {
    await writeClipFolder(`${scratch}/clip`);
    return copyTo(file, `${scratch}/clip/${name}`);
  },
  read: async (_, scratch) => {
    const path = `${scratch}/clip`;
    const files = [];
    for await (const e of Deno.readDir(path)) files.push({ name: e.name, size: 0, digest: "" });
    files.sort((a, b) => (a.name < b.name ? -1 : 1));
    return encodeWithClipFolder({ path, files }, ["a nucleus"]);
  },
});

/** Every reader of the corpus by the name the manifest uses. */
export const READERS: Readonly<Record<string, Reader>> = {
  image: { place: inPlace, read: readRgb },
  "features.image": { place: inPlace, read: readFeatureImage },
  "features.instances": { place: inPlace, read: readFeatureInstances },
  "evaluate.map": { place: inPlace, read: (path) => Effect.runPromise(readLabelMap(path)) },
  "folder.instances": {
    place: async (file, scratch) => {
      const name = `instances/a${extension(file)}`;
      await folderLayout(scratch, { "instances/a.npy": validFile("instances_8x8.npy") });
      if (name !== "instances/a.npy") await Deno.remove(`${scratch}/instances/a.npy`);
      return copyTo(file, `${scratch}/${name}`);
    },
    read: (_, scratch) => firstSample(openFolder(scratch)),
  },
  "folder.dataset_json": {
    place: async (file, scratch) => {
      await folderLayout(scratch, {});
      return copyTo(file, `${scratch}/dataset.json`);
    },
    read: (_, scratch) => firstSample(openFolder(scratch)),
  },
  "folder.class_json": {
    place: async (file, scratch) => {
      await folderLayout(scratch, { "dataset.json": validFile("dataset.json") });
      return copyTo(file, `${scratch}/classes/a.json`);
    },
    read: (_, scratch) => firstSample(openFolder(scratch)),
  },
  "pannuke.images": pannuke("images"),
  "pannuke.masks": pannuke("masks"),
  "pannuke.types": pannuke("types"),
  "consep.label": {
    place: async (file, scratch) => {
      await copyTo(validFile("rgb_8x8.png"), `${scratch}/Images/a.png`);
      return copyTo(file, `${scratch}/Labels/a.mat`);
    },
    read: (_, scratch) => firstSample(openConsep(scratch)),
  },
  "monuseg.xml": {
    place: async (file, scratch) => {
      await copyTo(validFile("rgb_8x8.tif"), `${scratch}/a.tif`);
      return copyTo(file, `${scratch}/a.xml`);
    },
    read: (_, scratch) => firstSample(openMonuseg(scratch)),
  },
  "checkpoint.info": { place: inPlace, read: readCheckpointInfo },
  "checkpoint.load": { place: inPlace, read: (path) => loadModel(path).then(disposeModel) },
  "clip.vocab": clip("vocab.json"),
  "clip.merges": clip("merges.txt"),
  "clip.config": clip("config.json"),
  "clip.weights": clip("model.safetensors"),
  // what `deno task attributes fit` does with --input: read the rows, fit them
  "attributes.fit": {
    place: inPlace,
    read: (path) =>
      Effect.runPromise(readRowsCsv(path)).then(({ rows, features }) => fitAttributes(rows, {}, { features })),
  },
};

/**
 * Valid inputs each reader accepts (`undefined`: its layout's own companion, e.g. the CLIP folder's
 * own vocab.json). The checkpoint readers have none here: a valid checkpoint needs a trained model
 * (tests/predict_cli_test.ts reads one).
 */
export const CONTROLS: Readonly<Record<string, ReadonlyArray<string | undefined>>> = {
  image: ["rgb_8x8.png", "rgb_8x8.jpg", "rgb_8x8.tif"].map(validFile),
  "features.image": [validFile("rgb_8x8.png")],
  "features.instances": [validFile("instances_8x8.npy")],
  "evaluate.map": ["instances_8x8.npy", "instances_8x8.png"].map(validFile),
  "folder.instances": ["instances_8x8.npy", "instances_8x8.png"].map(validFile),
  "folder.dataset_json": [validFile("dataset.json")],
  "folder.class_json": [validFile("classes.json")],
  "pannuke.images": [validFile("pannuke_images.npy")],
  "pannuke.masks": [validFile("pannuke_masks.npy")],
  "pannuke.types": [validFile("pannuke_types.npy")],
  "consep.label": ["consep_label.mat", "consep_label_plain.mat"].map(validFile),
  "monuseg.xml": [validFile("monuseg.xml")],
  "checkpoint.info": [],
  "checkpoint.load": [],
  "clip.vocab": [undefined],
  "clip.merges": [undefined],
  "clip.config": [undefined],
  "clip.weights": [undefined],
  "attributes.fit": [validFile("nuclei.csv")],
};
