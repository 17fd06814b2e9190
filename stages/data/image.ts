/** Decoding an image file (PNG, JPEG, TIFF, via sharp) to [H, W, 3] RGB; alpha dropped, grey expanded. */
import sharp from "sharp";
import { causeText } from "../../pipeline/cause_text.ts";
import { DatasetError } from "./sample.ts";

/** The image files readRgb is for, by extension: PNG, JPEG, TIFF. */
export const IMAGE_FILE = /\.(png|jpe?g|tiff?)$/i;

/** The image as `rgb` [H, W, 3]; an undecodable file is a DatasetError naming it. */
export const readRgb = async (file: string): Promise<{ height: number; width: number; rgb: Uint8Array }> => {
  const { data, info } = await sharp(file).removeAlpha().toColourspace("srgb").raw({ depth: "uchar" })
    .toBuffer({ resolveWithObject: true })
    .catch((e) =>
      Promise.reject(
        new DatasetError({ file, reason: `cannot decode image (${causeText(e)}); expected a PNG, JPEG or TIFF image` }),
      )
    );
  if (info.channels !== 3) throw new DatasetError({ file, reason: `expected RGB, decoded ${info.channels} channels` });
  return { height: info.height, width: info.width, rgb: new Uint8Array(data) };
};
