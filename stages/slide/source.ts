/**
 * Where `predict` reads pixels from: an `ImageSource` is a (possibly pyramidal, possibly huge)
 * image read region by region, so that a whole slide never has to be held in memory. Whole-slide
 * formats (SVS, NDPI, MRXS, pyramidal TIFF, …) are read by OpenSlide (openslide.ts); ordinary
 * PNG/JPEG/TIFF files by sharp, as one level (flat.ts).
 *
 * Coordinates follow OpenSlide: a region's top-left (x, y) is in level-0 pixels, its size in
 * pixels of the level it is read at.
 */
import { Data } from "effect";

/** One level of the pyramid: its size in pixels and its downsample factor from level 0. */
export interface SlideLevel {
  readonly width: number;
  readonly height: number;
  readonly downsample: number;
}

export interface ImageSource {
  /** the file, as given (named in every error) */
  readonly path: string;
  /** "openslide" (with OpenSlide's vendor, e.g. "openslide:aperio") or "sharp" */
  readonly reader: string;
  /** level 0 is full resolution; further levels are smaller */
  readonly levels: ReadonlyArray<SlideLevel>;
  /** microns per pixel at level 0 (OpenSlide's `openslide.mpp-x/y`), when the file says */
  readonly mpp?: { readonly x: number; readonly y: number };
  /** the scanner's objective power (`openslide.objective-power`), when the file says */
  readonly objectivePower?: number;
  /** every property the reader exposes (OpenSlide's name → value) */
  readonly properties: Readonly<Record<string, string>>;
  /** names of the associated images (label, macro, thumbnail), empty for flat images */
  readonly associated: ReadonlyArray<string>;
  /** RGB [height, width, 3] of a region at `level`; (x, y) in level-0 pixels; outside the image is white */
  readRegion(x: number, y: number, level: number, width: number, height: number): Promise<Uint8Array>;
  /** an associated image as RGB [height, width, 3] */
  readAssociated(name: string): Promise<{ readonly width: number; readonly height: number; readonly rgb: Uint8Array }>;
  /** releases the file; later reads throw */
  close(): void;
}

/** A file that cannot be read as an image: the file and the reader's own message. */
export class ImageSourceError extends Data.TaggedError("ImageSourceError")<{
  readonly file: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `${this.file}: ${this.reason}`;
  }
}
