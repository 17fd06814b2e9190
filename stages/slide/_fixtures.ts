/**
 * Test images for the slide readers, made here rather than downloaded: a synthetic H&E-like pattern, sharp's tiled
 * pyramidal TIFF of it (what OpenSlide calls "generic-tiff"), and a minimal TIFF writer.
 *
 * Why a writer of our own: sharp cannot set ImageDescription, which is what makes a TIFF an Aperio SVS to OpenSlide
 * (a first line starting "Aperio", `|key = value` pairs, associated images named on their description's second line).
 * It writes uncompressed 8-bit RGB pages, tiled or in one strip, TIFF 6.0 little-endian with baseline tags only. The
 * pixel data lies after every directory, the first page's last, so cutting the file short damages level 0's tiles
 * while the directories and the smaller levels stay readable.
 */
import sharp from "sharp";

/**
 * RGB [height, width, 3]: red and green gradients, a fine blue texture that tells neighbouring pixels apart (so an
 * off-by-one read fails), and a few nucleus-coloured discs.
 */
export const syntheticRgb = (width: number, height: number): Uint8Array => {
  const rgb = new Uint8Array(width * height * 3);
  const discs = [
    { cx: 0.2, cy: 0.3, r: 0.08, colour: [120, 60, 160] },
    { cx: 0.6, cy: 0.5, r: 0.12, colour: [230, 150, 190] },
    { cx: 0.85, cy: 0.8, r: 0.05, colour: [40, 20, 80] },
  ] as const;
  const side = Math.min(width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const disc = discs.find((d) => (x - d.cx * width) ** 2 + (y - d.cy * height) ** 2 < (d.r * side) ** 2);
      if (disc !== undefined) {
        rgb.set([disc.colour[0], disc.colour[1], disc.colour[2] ^ ((x + y) & 7)], i);
      } else {
        rgb.set([Math.floor((x * 255) / width), Math.floor((y * 255) / height), (x * 7 + y * 3) & 255], i);
      }
    }
  }
  return rgb;
};

/** `source` [H, W, 3] cut at (x, y, w, h), white outside: what readRegion at level 0 must return. */
export const whiteCrop = (source: Uint8Array, W: number, H: number, x: number, y: number, w: number, h: number) => {
  const out = new Uint8Array(w * h * 3).fill(255);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const sx = x + c, sy = y + r;
      if (sx >= 0 && sy >= 0 && sx < W && sy < H) {
        out.set(source.subarray((sy * W + sx) * 3, (sy * W + sx) * 3 + 3), (r * w + c) * 3);
      }
    }
  }
  return out;
};

/**
 * Writes `rgb` [height, width, 3] as a tiled (256 × 256) pyramidal TIFF with sharp, deflate-compressed (lossless);
 * `pixelsPerMm` sets its resolution (sharp's xres/yres, stored per centimetre), else sharp's default 1 px/mm.
 */
export const pyramidTiff = (
  file: string,
  rgb: Uint8Array,
  width: number,
  height: number,
  pixelsPerMm?: number,
): Promise<unknown> =>
  sharp(rgb, { raw: { width, height, channels: 3 } })
    .tiff({
      tile: true,
      tileWidth: 256,
      tileHeight: 256,
      pyramid: true,
      compression: "deflate",
      ...(pixelsPerMm === undefined ? {} : { xres: pixelsPerMm, yres: pixelsPerMm, resolutionUnit: "cm" as const }),
    })
    .toFile(file);

/** One page (TIFF directory): `rgb` is [height, width, 3]. */
export interface TiffPage {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
  /** square tile side (a multiple of 16); absent: the image is one strip */
  readonly tile?: number;
  /** ImageDescription (ASCII) */
  readonly description?: string;
  /** NewSubfileType 1: a reduced-resolution copy of the first page (a pyramid level) */
  readonly reduced?: boolean;
}

const SHORT = 3, LONG = 4, ASCII = 2;

interface Entry {
  readonly tag: number;
  readonly type: number;
  readonly values: ReadonlyArray<number> | Uint8Array;
}

/** The pixel blocks of a page: its tiles in raster order (edge tiles padded with black), or its one strip. */
const blocks = (page: TiffPage): Uint8Array[] => {
  const { width, height, rgb, tile } = page;
  if (tile === undefined) return [rgb];
  const out: Uint8Array[] = [];
  for (let ty = 0; ty < height; ty += tile) {
    for (let tx = 0; tx < width; tx += tile) {
      const block = new Uint8Array(tile * tile * 3);
      const w = Math.min(tile, width - tx);
      for (let y = 0; y < Math.min(tile, height - ty); y++) {
        const from = ((ty + y) * width + tx) * 3;
        block.set(rgb.subarray(from, from + w * 3), y * tile * 3);
      }
      out.push(block);
    }
  }
  return out;
};

const entries = (page: TiffPage, offsets: number[], counts: number[]): Entry[] => {
  const list: Entry[] = [
    { tag: 254, type: LONG, values: [page.reduced === true ? 1 : 0] },
    { tag: 256, type: LONG, values: [page.width] },
    { tag: 257, type: LONG, values: [page.height] },
    { tag: 258, type: SHORT, values: [8, 8, 8] },
    { tag: 259, type: SHORT, values: [1] }, // no compression
    { tag: 262, type: SHORT, values: [2] }, // RGB
  ];
  if (page.description !== undefined) {
    list.push({ tag: 270, type: ASCII, values: new TextEncoder().encode(page.description + "\0") });
  }
  if (page.tile === undefined) list.push({ tag: 273, type: LONG, values: offsets });
  list.push({ tag: 277, type: SHORT, values: [3] });
  if (page.tile === undefined) {
    list.push({ tag: 278, type: LONG, values: [page.height] }, { tag: 279, type: LONG, values: counts });
  }
  list.push({ tag: 284, type: SHORT, values: [1] }); // RGBRGB…
  if (page.tile !== undefined) {
    list.push(
      { tag: 322, type: LONG, values: [page.tile] },
      { tag: 323, type: LONG, values: [page.tile] },
      { tag: 324, type: LONG, values: offsets },
      { tag: 325, type: LONG, values: counts },
    );
  }
  return list;
};

const size = (e: Entry) => e.values.length * (e.type === SHORT ? 2 : e.type === LONG ? 4 : 1);
const ifdSize = (list: Entry[]) =>
  2 + 12 * list.length + 4 + list.reduce((sum, e) => sum + (size(e) > 4 ? size(e) + (size(e) & 1) : 0), 0);

/** The bytes of a TIFF file holding `pages` in order. */
export const tiffBytes = (pages: ReadonlyArray<TiffPage>): Uint8Array => {
  const pixelBlocks = pages.map(blocks);
  // directories first (their sizes do not depend on the offsets' values), then the blocks, last page first
  const placeholder = pixelBlocks.map((b) => b.map(() => 0));
  const ifdSizes = pages.map((p, i) => ifdSize(entries(p, placeholder[i] ?? [], placeholder[i] ?? [])));
  let at = 8 + ifdSizes.reduce((a, b) => a + b, 0);
  const offsets: number[][] = pages.map(() => []);
  for (let i = pages.length - 1; i >= 0; i--) {
    for (const block of pixelBlocks[i] ?? []) {
      offsets[i]?.push(at);
      at += block.length;
    }
  }
  const bytes = new Uint8Array(at), view = new DataView(bytes.buffer);
  bytes.set([0x49, 0x49]);
  view.setUint16(2, 42, true);
  view.setUint32(4, 8, true);
  let ifd = 8;
  pages.forEach((page, i) => {
    const list = entries(page, offsets[i] ?? [], (pixelBlocks[i] ?? []).map((b) => b.length));
    let extra = ifd + 2 + 12 * list.length + 4;
    view.setUint16(ifd, list.length, true);
    list.forEach((e, k) => {
      const at = ifd + 2 + 12 * k;
      view.setUint16(at, e.tag, true);
      view.setUint16(at + 2, e.type, true);
      view.setUint32(at + 4, e.values.length, true);
      let to = at + 8;
      if (size(e) > 4) {
        view.setUint32(at + 8, extra, true);
        to = extra;
        extra += size(e) + (size(e) & 1); // values start on a word boundary
      }
      e.values.forEach((v, j) => {
        if (e.type === SHORT) view.setUint16(to + 2 * j, v, true);
        else if (e.type === LONG) view.setUint32(to + 4 * j, v, true);
        else bytes[to + j] = v;
      });
    });
    const next = i + 1 < pages.length ? ifd + (ifdSizes[i] ?? 0) : 0;
    view.setUint32(ifd + 2 + 12 * list.length, next, true);
    ifd += ifdSizes[i] ?? 0;
  });
  for (let i = 0; i < pages.length; i++) {
    (pixelBlocks[i] ?? []).forEach((block, k) => bytes.set(block, offsets[i]?.[k] ?? 0));
  }
  return bytes;
};
