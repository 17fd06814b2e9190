/**
 * Predicting a whole slide at level 0 in bounded memory: the tiles of `predictTiled` (tiling.ts),
 * taken one tile row — a *band* — at a time, and the nuclei handed out band by band as soon as they
 * are final, so that neither the slide's pixels nor its instance map are ever held whole.
 *
 * Same output as `predictTiled`: the tiles, their owned regions and the stitching rule are tiling.ts's
 * own (`axisTiles`, `keptNuclei`, `stitchRule`); only the order in which nuclei are placed differs, and
 * it does not matter. Placing a nucleus reads and writes the map at its own pixels only, so two
 * placements with disjoint pixels commute, and any order that keeps every pair of overlapping nuclei
 * in predictTiled's order gives the same map. predictTiled places every whole nucleus, tile by tile in
 * row-major order, then every cut one in the same order. Here the whole nuclei of band m are placed as
 * its tiles are added, and the cut nuclei of band j once band last(j) has been added: the last band
 * starting before row y0(j) + T, i.e. the last whose tiles share rows with band j's (normally j + 1). The
 * only pairs now placed in the other order are a cut nucleus of band j and a whole nucleus of a band
 * m > last(j); band m starts at or after row y0(j) + T, so their pixels are disjoint. Every other pair
 * keeps its order: whole before whole and cut before cut in tile order, and the whole nuclei of bands
 * ≤ last(j) before the cut ones of band j. So the streamed nuclei are predictTiled's exactly (up to
 * ids) when `select` keeps every tile; a tile left out simply predicts nothing.
 *
 * Finalisation: a placed nucleus never changes, since later ones only take free pixels. A whole
 * nucleus is therefore final as soon as its tile is added. A cut nucleus of band j is not placed until
 * band last(j) is in, because predictTiled would let the whole nuclei of the bands overlapping j take
 * their pixels first; bands after last(j) share no rows with it. Band m hands out, through `onBand`,
 * the whole nuclei of its tiles and the cut nuclei of the bands released with it, those j with
 * last(j) = m: normally band m − 1, possibly several when overlap > T/2 or when the last band, pushed
 * up against the slide's edge, overlaps more than one. Global ids count nuclei in the order they
 * become final — 1, 2, … — so two runs give the same ids.
 *
 * Memory, with T the tile side, W × H the slide, B the batch and P = `maxReadPixels`:
 * - the instance map is a ring of R = min(2T, H) rows, R·W·4 bytes: when band m is added the rows
 *   still needed run from the oldest band j with cut nuclei pending (last(j) ≥ m, so y0(j) > y0(m) − T)
 *   to y0(m) + T, fewer than 2T rows;
 * - RGB is read for one run of neighbouring selected tiles of a band at a time, ≤ min(T·W, P)·3 bytes
 *   (P = 2²⁶ by default: 192 MiB; a band wider than P / T pixels is read in several parts), and the
 *   reader may need about as much again while decoding;
 * - B tiles of RGB and their predictions, ≈ B·T²·7 bytes, plus the predictor's own working memory;
 * - the pending cut nuclei (their pixel lists, 4 bytes a pixel) and the nuclei of the band being
 *   handed out (one byte per pixel of their bounding boxes), both at most a few tile rows of nuclei.
 * Peak ≈ W·(2T·4 + T·3) + B·T²·7 bytes plus nuclei: 290 MB for W = 100,000, T = 256, B = 16. None of
 * it grows with H.
 */
import {
  type AxisTile,
  axisTiles,
  cropTile,
  type KeptNucleus,
  stitchRule,
  type Tile,
  type TilePlacement,
  type TilePrediction,
} from "../predict/tiling.ts";
import { type ContourOptions, instanceContours, type Ring } from "../predict/contours.ts";
import type { ImageSource } from "./source.ts";

/** A final nucleus in level-0 pixels: its bounding box and its mask within it. */
export interface StreamedNucleus {
  /** 1, 2, … in the order nuclei became final */
  readonly id: number;
  /** the predictor's class index (−1: unknown) */
  readonly classId: number;
  readonly score: number;
  /** [x0, y0, x1, y1], end-exclusive level-0 pixel bounds */
  readonly bbox: readonly [number, number, number, number];
  /** [(y1 − y0)·(x1 − x0)] row-major, 1 where the pixel is this nucleus */
  readonly mask: Uint8Array;
  /** pixels in the mask */
  readonly area: number;
}

/** What one band hands out: the nuclei that became final while its tiles were added. */
export interface Band {
  /** the tile row, 0 at the top */
  readonly index: number;
  /** the level-0 rows its tiles cover, [y0, y1) */
  readonly y0: number;
  readonly y1: number;
  /** tiles predicted in this band (selected ones) */
  readonly tiles: number;
  /** ids ascending */
  readonly nuclei: ReadonlyArray<StreamedNucleus>;
}

/** Options of `predictStreaming`. */
export interface StreamOptions {
  readonly tile: number;
  readonly overlap: number;
  /** tiles per call of `predictBatch`; a band's last batch may be smaller */
  readonly batch: number;
  /** whether a tile is predicted (default: all); a tile left out yields no nuclei and is never read */
  readonly select?: (placement: TilePlacement) => boolean;
  /** each band in order, awaited before the next band is read */
  readonly onBand?: (band: Band) => Promise<void> | void;
  /** called after each batch with the tiles done and the tiles selected */
  readonly onProgress?: (done: number, total: number) => void;
  /** the most pixels one `readRegion` asks for (default 2²⁶); at least one tile's worth is read */
  readonly maxReadPixels?: number;
}

/** What a streamed prediction did, once every band is handed out. */
export interface StreamSummary {
  readonly width: number;
  readonly height: number;
  readonly bands: number;
  readonly tiles: number;
  readonly nuclei: number;
}

/** The default cap of one read: 64 Mi pixels, 192 MiB of RGB. */
export const MAX_READ_PIXELS = 2 ** 26;

/**
 * Predicts level 0 of `source` with a batched tile predictor, band by band (see the module comment):
 * the nuclei are predictTiled's on the same pixels, handed to `onBand` as they become final.
 *
 * @example
 * ```ts ignore
 * const source = await openImageSource("case.svs");
 * await predictStreaming(source, modelTilePredictor(model, decodeOptions), {
 *   tile: model.tile, overlap: 64, batch: 8,
 *   onBand: (band) => writeNuclei(band.nuclei), // e.g. contours with `streamedContour`
 * });
 * ```
 */
export const predictStreaming = async (
  source: ImageSource,
  predictBatch: (tiles: ReadonlyArray<Tile>) => Promise<ReadonlyArray<TilePrediction>>,
  options: StreamOptions,
): Promise<StreamSummary> => {
  const { tile, overlap, batch } = options;
  const level0 = source.levels[0];
  if (level0 === undefined) throw new RangeError(`predictStreaming: ${source.path} has no level 0`);
  if (!(Number.isInteger(batch) && batch > 0)) {
    throw new RangeError(`predictStreaming: batch must be a positive integer, got ${batch}`);
  }
  const maxRead = Math.max(options.maxReadPixels ?? MAX_READ_PIXELS, tile * tile);
  const { width, height } = level0;
  const rowTiles = axisTiles(height, tile, overlap), colTiles = axisTiles(width, tile, overlap);
  const bandRows = Math.min(tile, height); // rows of a band that lie in the slide
  const select = options.select ?? (() => true);
  const placement = (m: number, k: number): TilePlacement => {
    const ty = rowTiles[m] as AxisTile, tx = colTiles[k] as AxisTile;
    return { y0: ty.start, x0: tx.start, own: { y: [ty.lo, ty.hi], x: [tx.lo, tx.hi] } };
  };
  // [rows, cols], 1 where the tile is predicted: `select` is asked once per tile, up front, for the total
  const selected = new Uint8Array(rowTiles.length * colTiles.length);
  let total = 0;
  for (let m = 0; m < rowTiles.length; m++) {
    for (let k = 0; k < colTiles.length; k++) {
      if (select(placement(m, k))) selected[m * colTiles.length + k] = 1, total++;
    }
  }

  // the instance map: a ring of R rows, slide row y at ring row y mod R (see the module comment)
  const R = Math.min(2 * tile, height);
  const ring = new Int32Array(R * width); // [R, W]
  const dirty = new Uint8Array(R); // ring rows painted since they were last cleared
  let out: StreamedNucleus[] = [], count = 0;
  const rule = stitchRule({ instances: ring, rowStart: (y) => (y % R) * width }, height, width, tile, (id, n) => {
    const nucleus = streamedNucleus(ring, R, width, tile, id, n);
    for (let y = nucleus.bbox[1]; y < nucleus.bbox[3]; y++) dirty[y % R] = 1;
    out.push(nucleus), count++;
  });
  let top = 0; // ring rows [.., top) hold slide rows; rows from top on are cleared before use
  const ready = (end: number) => {
    for (; top < end; top++) {
      if (dirty[top % R]) ring.fill(0, (top % R) * width, (top % R + 1) * width), dirty[top % R] = 0;
    }
  };
  // band j's cut nuclei are placed after band last(j), the last band starting before row y0(j) + T
  const last = rowTiles.map((ty) => rowTiles.findLastIndex((other) => other.start < ty.start + tile));

  let done = 0, released = 0;
  for (let m = 0; m < rowTiles.length; m++) {
    const y0 = (rowTiles[m] as AxisTile).start;
    const row = colTiles.flatMap((_, k) => selected[m * colTiles.length + k] ? [placement(m, k)] : []);
    ready(y0 + bandRows);
    let queue: Tile[] = [], places: TilePlacement[] = [];
    const flush = async () => {
      if (queue.length === 0) return;
      const predictions = await predictBatch(queue);
      if (predictions.length !== queue.length) {
        throw new RangeError(`predictStreaming: ${queue.length} tiles predicted as ${predictions.length}`);
      }
      places.forEach((p, j) => rule.add(p, predictions[j] as TilePrediction));
      done += queue.length, queue = [], places = [];
      options.onProgress?.(done, total);
    };
    for (const run of readRuns(row, tile, width, Math.floor(maxRead / bandRows))) {
      const x0 = (run[0] as TilePlacement).x0, span = Math.min((run.at(-1) as TilePlacement).x0 + tile, width) - x0;
      const rgb = await source.readRegion(x0, y0, 0, span, bandRows); // [bandRows, span, 3]
      for (const p of run) {
        queue.push({ rgb: cropTile(rgb, bandRows, span, 0, p.x0 - x0, tile), y0: p.y0, x0: p.x0 });
        places.push(p);
        if (queue.length === batch) await flush();
      }
    }
    await flush();
    // release the bands no later band overlaps
    while (released < rowTiles.length && (last[released] as number) <= m) released++;
    if (released > 0) rule.placeCuts((rowTiles[released - 1] as AxisTile).start);
    const nuclei = out;
    out = [];
    await options.onBand?.({ index: m, y0, y1: y0 + bandRows, tiles: row.length, nuclei });
  }
  return { width, height, bands: rowTiles.length, tiles: done, nuclei: count };
};

/**
 * The selected tiles of a band split into runs read at once: tiles that overlap or touch the one
 * before (so that no gap between selected tiles is read), spanning at most `maxSpan` columns, or a
 * single tile.
 */
const readRuns = (
  row: ReadonlyArray<TilePlacement>,
  tile: number,
  width: number,
  maxSpan: number,
): TilePlacement[][] => {
  const runs: TilePlacement[][] = [];
  let run: TilePlacement[] = [];
  for (const p of row) {
    const prev = run.at(-1), first = run[0];
    const joins = prev !== undefined && first !== undefined && p.x0 <= prev.x0 + tile &&
      Math.min(p.x0 + tile, width) - first.x0 <= maxSpan;
    if (!joins && run.length > 0) runs.push(run), run = [];
    run.push(p);
  }
  if (run.length > 0) runs.push(run);
  return runs;
};

/** A just-placed nucleus as level-0 bounding box and mask: the pixels of it that the ring holds. */
const streamedNucleus = (
  ring: Int32Array,
  R: number,
  width: number,
  tile: number,
  id: number,
  n: KeptNucleus,
): StreamedNucleus => {
  const { at, pixels } = n;
  const index = (k: number) => ((at.y0 + Math.floor(k / tile)) % R) * width + at.x0 + (k % tile);
  let ty0 = tile, ty1 = 0, tx0 = tile, tx1 = 0, area = 0; // tile coordinates, end-exclusive
  for (const k of pixels) {
    if (ring[index(k)] !== id) continue;
    const y = Math.floor(k / tile), x = k % tile;
    if (y < ty0) ty0 = y;
    if (y >= ty1) ty1 = y + 1;
    if (x < tx0) tx0 = x;
    if (x >= tx1) tx1 = x + 1;
    area++;
  }
  const w = tx1 - tx0, mask = new Uint8Array((ty1 - ty0) * w); // [h, w]
  for (const k of pixels) {
    if (ring[index(k)] === id) mask[(Math.floor(k / tile) - ty0) * w + (k % tile) - tx0] = 1;
  }
  return {
    id,
    classId: n.cls,
    score: n.score,
    bbox: [at.x0 + tx0, at.y0 + ty0, at.x0 + tx1, at.y0 + ty1],
    mask,
    area,
  };
};

/** A crop of the instance map painted with some streamed nuclei: what `instanceContours` and `nucleiOf` take. */
export interface InstanceCrop {
  /** level-0 position of the crop's pixel (0, 0) */
  readonly x0: number;
  readonly y0: number;
  readonly height: number;
  readonly width: number;
  /** [height·width], local ids 1..n in the order the nuclei were given, 0 = background */
  readonly instances: Int32Array;
  /** [n + 1] per local id: global id, class and score (index 0: background) */
  readonly ids: Int32Array;
  readonly classOf: Int32Array;
  readonly scores: Float32Array;
}

/**
 * The nuclei painted into a crop of their union bounding box with local ids 1..n, for code written
 * against an image-sized instance map (contours.ts, nuclei.ts); shift its coordinates by (x0, y0).
 * The crop's size is that of the box: for a band, up to about 2T × W.
 */
export const instanceCrop = (nuclei: ReadonlyArray<StreamedNucleus>): InstanceCrop => {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const { bbox } of nuclei) {
    x0 = Math.min(x0, bbox[0]), y0 = Math.min(y0, bbox[1]), x1 = Math.max(x1, bbox[2]), y1 = Math.max(y1, bbox[3]);
  }
  if (nuclei.length === 0) {
    x0 =
      y0 =
      x1 =
      y1 =
        0;
  }
  const height = y1 - y0, width = x1 - x0;
  const instances = new Int32Array(height * width); // [height, width]
  nuclei.forEach((n, i) => {
    const [bx0, by0, bx1, by1] = n.bbox, w = bx1 - bx0;
    for (let y = by0; y < by1; y++) {
      for (let x = bx0; x < bx1; x++) {
        if (n.mask[(y - by0) * w + x - bx0]) instances[(y - y0) * width + x - x0] = i + 1;
      }
    }
  });
  return {
    x0,
    y0,
    height,
    width,
    instances,
    ids: Int32Array.from([0, ...nuclei.map((n) => n.id)]),
    classOf: Int32Array.from([-1, ...nuclei.map((n) => n.classId)]),
    scores: Float32Array.from([0, ...nuclei.map((n) => n.score)]),
  };
};

/**
 * The outline of one streamed nucleus in level-0 pixel-corner coordinates: `instanceContours` on its
 * mask with its box's corner as origin (simplified in level-0 coordinates) — the ring it would get from
 * the whole image's instance map, exactly.
 */
export const streamedContour = (n: StreamedNucleus, options?: Omit<ContourOptions, "origin">): Ring => {
  const [x0, y0, x1, y1] = n.bbox;
  return instanceContours(Int32Array.from(n.mask), y1 - y0, x1 - x0, { ...options, origin: [x0, y0] }).get(1) ?? [];
};
