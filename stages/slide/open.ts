/**
 * Which reader opens a file: OpenSlide for whole-slide formats, sharp for ordinary images.
 *
 * By extension first: a vendor slide (.svs .ndpi .mrxs .scn .vms .vmu .bif .svslide) needs OpenSlide, and without it
 * the error is the one line that says how to install it. A .tif/.tiff is a slide when OpenSlide recognises it
 * (a tiled pyramid: "generic-tiff", or a vendor's TIFF such as Philips or Ventana); a plain striped TIFF, or any TIFF
 * when OpenSlide is missing, goes to sharp as one level. Everything else goes to sharp.
 */
import { flatImage } from "./flat.ts";
import { detectVendor, openSlide, openSlideAvailable } from "./openslide.ts";
import { type ImageSource, ImageSourceError } from "./source.ts";

/** The extensions of the whole-slide formats that only OpenSlide reads. */
export const SLIDE_FILE = /\.(svs|ndpi|mrxs|scn|vms|vmu|bif|svslide)$/i;

const TIFF_FILE = /\.tiff?$/i;

/**
 * Opens `path` with the reader its format needs. Rejects with ImageSourceError naming the file: a slide extension
 * without OpenSlide (the reason says how to install it), or whatever the chosen reader cannot read.
 *
 * @example
 * ```ts ignore
 * const source = await openImageSource("case.svs"); // source.reader === "openslide:aperio"
 * ```
 */
export const openImageSource = async (path: string): Promise<ImageSource> => {
  const available = openSlideAvailable();
  if (SLIDE_FILE.test(path)) {
    if (available !== true) throw new ImageSourceError({ file: path, reason: available });
    return openSlide(path);
  }
  if (await opensAsSlide(path)) return openSlide(path);
  return flatImage(path);
};

/**
 * Whether `openImageSource` reads `path` with OpenSlide: a vendor slide extension, or a TIFF that OpenSlide
 * recognises. What `deno task predict` predicts as a whole slide rather than as one image.
 */
export const opensAsSlide = async (path: string): Promise<boolean> =>
  SLIDE_FILE.test(path) ||
  (TIFF_FILE.test(path) && openSlideAvailable() === true && await detectVendor(path) !== undefined);
