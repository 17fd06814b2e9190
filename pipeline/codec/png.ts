/**
 * PNG codec through sharp: 8- or 16-bit images with 1–4 channels, row-major interleaved
 * (`[H, W, C]`). 16-bit data (e.g. instance maps with up to 65,535 ids) stays 16-bit.
 */
import { Effect } from "effect";
import sharp from "sharp";
import { causeText } from "../cause_text.ts";
import { CodecError } from "../errors.ts";
import { type Codec, payloadFile } from "./codec.ts";

/** An image in host memory: `data` is `[H, W, C]` interleaved. */
export interface RasterImage {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 2 | 3 | 4;
  readonly data: Uint8Array | Uint16Array;
}

const fail = (reason: string) => new CodecError({ codec: "png", reason });

/** The libvips colourspace that keeps the channel count (grey stays grey) and the bit depth. */
const colourspace = (channels: number, sixteen: boolean): string =>
  channels <= 2 ? (sixteen ? "grey16" : "b-w") : sixteen ? "rgb16" : "srgb";

/** Encodes a RasterImage as PNG bytes (lossless; 16-bit stays 16-bit). */
export const encodePng = (image: RasterImage): Effect.Effect<Uint8Array, CodecError> =>
  Effect.tryPromise({
    try: async () => {
      const expected = image.width * image.height * image.channels;
      if (image.data.length !== expected) {
        throw new RangeError(
          `${image.width}×${image.height}×${image.channels} needs ${expected} values, found ${image.data.length}`,
        );
      }
      const sixteen = image.data instanceof Uint16Array;
      // sharp takes the sample depth from the typed array; the colourspace keeps 16 bits and grey
      const out = await sharp(image.data, {
        raw: { width: image.width, height: image.height, channels: image.channels },
      })
        .toColourspace(colourspace(image.channels, sixteen))
        .png({ compressionLevel: 6 })
        .toBuffer();
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    },
    catch: (e) => fail(`cannot encode: ${e instanceof Error ? e.message : e}`),
  });

/** Decodes PNG bytes; 16-bit PNGs come back as Uint16Array. */
export const decodePng = (bytes: Uint8Array): Effect.Effect<RasterImage, CodecError> =>
  Effect.tryPromise({
    try: async () => {
      const image = sharp(bytes);
      const meta = await image.metadata();
      const sixteen = meta.depth === "ushort";
      const channels = meta.channels ?? 3;
      const { data, info } = await image.toColourspace(colourspace(channels, sixteen))
        .raw({ depth: sixteen ? "ushort" : "uchar" })
        .toBuffer({ resolveWithObject: true });
      if (info.channels !== channels) {
        throw new Error(`decoded ${info.channels} channels from a ${channels}-channel PNG`);
      }
      const copy = new Uint8Array(data).slice();
      return {
        width: info.width,
        height: info.height,
        channels: info.channels as RasterImage["channels"],
        data: sixteen ? new Uint16Array(copy.buffer) : copy,
      };
    },
    catch: (e) => fail(`cannot decode as PNG: ${causeText(e)}`),
  });

const FILE = "image.png";

/** Stores a RasterImage as one `image.png` payload file. */
export const png: Codec<RasterImage> = {
  id: "png",
  encode: (value) => encodePng(value).pipe(Effect.map((b) => ({ [FILE]: b }))),
  decode: (payload) => payloadFile("png", payload, FILE).pipe(Effect.flatMap(decodePng)),
};
