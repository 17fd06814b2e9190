/**
 * `deno task features`: the 11 per-nucleus features of one tile (features spec v1.0, Part A).
 *
 *   deno task features --image TILE.png --instances TILE.npy [--json OUT.json]
 *
 * Prints the §A6 JSON to stdout; with `--json` writes it to OUT.json atomically (temp file + rename)
 * and prints a one-line summary instead.
 *
 * Inputs (§A1), each problem reported as one line naming the file:
 *  - image: PNG, 8-bit RGB; RGBA has its alpha dropped (no compositing); palette PNGs are expanded
 *    to RGB. Grayscale, 16-bit and non-PNG files are rejected. Samples are read raw: gAMA, iCCP and
 *    sRGB chunks are ignored (no colour management).
 *  - instances: 2-D integer .npy `[H, W]` of the image's size, 0 = background, ids ≥ 1 (need not be
 *    contiguous). Any integer dtype whose values fit int32; negative ids, floats, bool and other
 *    shapes are rejected.
 *
 * `readFeatureImage` / `readFeatureInstances` are exported for tests (the golden fixtures).
 */
import * as NodeServices from "@effect/platform-node/NodeServices";
import { Console, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import sharp from "sharp";
import { causeText } from "../pipeline/cause_text.ts";
import { NpyError, readNpy } from "../pipeline/codec/npy.ts";
import { featuresJson, maskFeatures } from "../stages/attributes/mask_features.ts";
import { runTask, UsageError, writeAtomic } from "./_main.ts";

const writeAtomicJson = (path: string, text: string) => writeAtomic(path, text, "--json: ");

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const COLOUR_TYPES: Readonly<Record<number, string>> = {
  0: "grayscale",
  2: "RGB",
  3: "palette",
  4: "grayscale + alpha",
  6: "RGBA",
};

/** An 8-bit RGB tile `[H, W, 3]`. */
export interface RgbTile {
  readonly height: number;
  readonly width: number;
  readonly rgb: Uint8Array;
}

const fail = (file: string, problem: string) => new UsageError({ message: `${file}: ${problem}` });

/**
 * Reads a PNG as raw 8-bit RGB `[H, W, 3]` (§A1). The IHDR is checked here rather than through
 * sharp's metadata, so that exactly the PNG colour type and bit depth decide what is accepted.
 */
export const readFeatureImage = async (file: string): Promise<RgbTile> => {
  const bytes = await Deno.readFile(file).catch((e) => {
    throw fail(file, `cannot read the image (${e instanceof Error ? e.message : e})`);
  });
  if (bytes.length < 33 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) {
    throw fail(file, "not a PNG file; expected an 8-bit RGB PNG");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunk = new TextDecoder().decode(bytes.subarray(12, 16));
  if (chunk !== "IHDR") throw fail(file, "malformed PNG (the first chunk is not IHDR)");
  const width = view.getUint32(16), height = view.getUint32(20);
  const depth = bytes[24] as number, colour = bytes[25] as number;
  const kind = COLOUR_TYPES[colour] ?? `colour type ${colour}`;
  if (colour === 0 || colour === 4) {
    throw fail(file, `${depth}-bit ${kind} PNG; expected an 8-bit RGB image (RGBA or palette also accepted)`);
  }
  if (depth === 16) throw fail(file, `16-bit ${kind} PNG; expected an 8-bit RGB image`);
  if (!(colour === 2 || colour === 6 || colour === 3) || (colour !== 3 && depth !== 8)) {
    throw fail(file, `unsupported PNG (${depth}-bit ${kind}); expected an 8-bit RGB image`);
  }
  // ignoreIcc: no ICC transform; a raw output in the input's own space applies no gamma either
  const { data, info } = await sharp(bytes, { ignoreIcc: true }).removeAlpha().raw({ depth: "uchar" })
    .toBuffer({ resolveWithObject: true })
    .catch((e) => Promise.reject(fail(file, `cannot decode the PNG (${causeText(e)}); expected an 8-bit RGB PNG`)));
  if (info.width !== width || info.height !== height || info.channels !== 3) {
    throw fail(file, `decoded ${info.width}×${info.height}×${info.channels}, expected ${width}×${height}×3`);
  }
  return { height, width, rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
};

/** Reads a 2-D integer .npy instance map `[H, W]` as int32 (§A1); rejects negative ids. */
export const readFeatureInstances = async (
  file: string,
): Promise<{ height: number; width: number; map: Int32Array }> => {
  const array = await readNpy(file).catch((e) => {
    if (e instanceof NpyError) throw fail(file, e.reason);
    throw fail(file, `cannot read the instance map (${e instanceof Error ? e.message : e})`);
  });
  if (array.shape.length !== 2) {
    throw fail(file, `the instance map must be 2-D [H, W], found shape (${array.shape.join(", ")})`);
  }
  if (!/^[iu][1248]$/.test(array.dtype)) {
    throw fail(file, `the instance map must hold integers, found dtype ${array.dtype}`);
  }
  const [height, width] = array.shape as [number, number];
  const data = array.data as ArrayLike<number>; // integer dtypes decode to numeric typed arrays
  const map = new Int32Array(height * width);
  for (let i = 0; i < map.length; i++) {
    const v = data[i] as number;
    if (v < 0) {
      throw fail(file, `negative instance id ${v} at (r=${Math.floor(i / width)}, c=${i % width}); ids must be ≥ 0`);
    }
    if (v > 0x7fffffff) {
      throw fail(file, `instance id ${v} at (r=${Math.floor(i / width)}, c=${i % width}) does not fit int32`);
    }
    map[i] = v;
  }
  return { height, width, map };
};

const exists = (path: string, flag: string) =>
  Effect.tryPromise({
    try: () => Deno.stat(path),
    catch: () => new UsageError({ message: `${flag}: ${path} does not exist` }),
  }).pipe(
    Effect.flatMap((s) =>
      s.isFile ? Effect.void : Effect.fail(new UsageError({ message: `${flag}: ${path} is not a file` }))
    ),
  );

const userError = (e: unknown) =>
  e instanceof UsageError ? e : new UsageError({ message: e instanceof Error ? e.message : String(e) });

export const featuresCommand = Command.make("features", {
  image: Flag.String("image").pipe(
    Flag.withDescription(
      "The tile: an 8-bit RGB PNG (RGBA: alpha dropped; palette: expanded; grayscale and 16-bit rejected; " +
        "gAMA/ICC ignored, raw samples used)",
    ),
  ),
  instances: Flag.String("instances").pipe(
    Flag.withDescription(
      "Its instance map: a 2-D integer .npy [H, W] of the image's size; 0 = background, every id > 0 is one " +
        "nucleus (all pixels with that id; ids need not be contiguous); negative ids rejected",
    ),
  ),
  json: Flag.String("json").pipe(
    Flag.withDescription("Write the JSON to this file (atomically) and print a one-line summary instead"),
    Flag.optional,
  ),
}, ({ image, instances, json }) =>
  Effect.gen(function* () {
    yield* exists(image, "--image");
    yield* exists(instances, "--instances");
    const tile = yield* Effect.tryPromise({ try: () => readFeatureImage(image), catch: userError });
    const inst = yield* Effect.tryPromise({ try: () => readFeatureInstances(instances), catch: userError });
    if (inst.height !== tile.height || inst.width !== tile.width) {
      return yield* new UsageError({
        message:
          `${instances}: the instance map is ${inst.height}×${inst.width} (H×W) but ${image} is ${tile.height}×${tile.width}`,
      });
    }
    const records = yield* Effect.sync(() => maskFeatures(tile.rgb, inst.map, tile.height, tile.width));
    const out = featuresJson(records, { image, inst: instances, height: tile.height, width: tile.width });
    const text = JSON.stringify(out, null, 1) + "\n";
    if (Option.isNone(json)) return yield* Console.log(text.trimEnd());
    yield* writeAtomicJson(json.value, text);
    yield* Console.log(
      `wrote ${json.value}: ${records.length} instances, ${tile.height}×${tile.width} tile ${image}`,
    );
  })).pipe(
    Command.withDescription(
      "Compute the 11 per-nucleus features (area, equivalent diameter, eccentricity, aspect ratio, solidity, " +
        "extent, perimeter ratio, mean boundary gradient, hematoxylin mean/variance, core–rim difference) of " +
        "every instance of one tile, as the features spec v1.0 §A6 JSON (ids ascending, with aux values and flags). " +
        "Example: deno task features --image tile.png --instances tile.npy --json tile.features.json",
    ),
  );

if (import.meta.main) {
  runTask(featuresCommand.pipe(Command.run({ version: "0.1.0" }), Effect.provide(NodeServices.layer)));
}
