/**
 * predictStreaming against predictTiled: the same nuclei (pixel sets, classes, scores) on the same
 * pixels, read from an in-memory source and from a pyramidal TIFF; tiles left out by `select` never
 * predicted; reads that do not grow with the slide's height; and a 40,960² slide in bounded memory.
 */
import assert from "node:assert/strict";
import { instanceContours } from "../predict/contours.ts";
import { predictTiled, type Tile, type TilePlacement, type TilePrediction } from "../predict/tiling.ts";
import { pyramidTiff } from "./_fixtures.ts";
import { openImageSource } from "./open.ts";
import { openSlideAvailable } from "./openslide.ts";
import type { ImageSource } from "./source.ts";
import { type Band, instanceCrop, predictStreaming, streamedContour, type StreamedNucleus } from "./stream.ts";

// ---- a procedural H&E-like image: dark discs on a jittered lattice, a few large enough to be cut ----

const CELL = 40;
const hash = (a: number, b: number, salt: number) =>
  (Math.imul((a * 73856093) ^ (b * 19349663) ^ (salt * 83492791), 2654435761) >>> 0) / 2 ** 32;

/** Whether slide pixel (y, x) lies in a disc: one per lattice cell (a quarter empty), radius 4–18, 1 in 10 up to 48. */
const inDisc = (y: number, x: number): boolean => {
  const cy = Math.floor(y / CELL), cx = Math.floor(x / CELL);
  for (let i = cy - 1; i <= cy + 1; i++) {
    for (let j = cx - 1; j <= cx + 1; j++) {
      if (hash(i, j, 1) < 0.25) continue;
      const r = 4 + hash(i, j, 2) * (hash(i, j, 3) < 0.1 ? 44 : 14);
      const py = (i + hash(i, j, 4)) * CELL, px = (j + hash(i, j, 5)) * CELL;
      if ((y - py) ** 2 + (x - px) ** 2 < r * r) return true;
    }
  }
  return false;
};

/**
 * Whether slide pixel (y, x) lies in a comet: a disc (radius 6–22) with a thin tail (width 2–7, length
 * 20–200) hanging below it, one per 120-pixel cell. Cut by a tile's bottom border, the part above can
 * be centred in the upper tile while the whole comet is centred in, and whole in, the tile below: the
 * case where predictTiled's "whole before cut" decides which one is kept.
 */
const inComet = (y: number, x: number): boolean => {
  const C = 120, cy = Math.floor(y / C), cx = Math.floor(x / C);
  for (let i = cy - 2; i <= cy; i++) {
    for (let j = cx - 1; j <= cx + 1; j++) {
      const r = 6 + hash(i, j, 6) * 16, py = (i + hash(i, j, 7)) * C, px = (j + hash(i, j, 8)) * C;
      const tail = 2 + hash(i, j, 9) * 5, length = 20 + hash(i, j, 10) * 180;
      if ((y - py) ** 2 + (x - px) ** 2 < r * r) return true;
      if (y >= py && y < py + length && Math.abs(x - px) < tail / 2) return true;
    }
  }
  return false;
};

/**
 * Grey RGB [h, w, 3] of the region at (x0, y0): discs of radius 8–36 darkest at their centre, so that a
 * predictor's threshold sets their size (`thresholds` below); grey v has channel sum ≈ 3v.
 */
const paintSoft = (x0: number, y0: number, width: number, height: number): Uint8Array => {
  const rgb = new Uint8Array(width * height * 3), C = 60;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const cy = Math.floor((y0 + y) / C), cx = Math.floor((x0 + x) / C);
      let v = 240;
      for (let i = cy - 1; i <= cy + 1; i++) {
        for (let j = cx - 1; j <= cx + 1; j++) {
          const r = 8 + hash(i, j, 11) * 28, py = (i + hash(i, j, 12)) * C, px = (j + hash(i, j, 13)) * C;
          v = Math.min(v, 40 + 200 * (((y0 + y - py) ** 2 + (x0 + x - px) ** 2) / (r * r)));
        }
      }
      rgb.fill(Math.round(v), (y * width + x) * 3, (y * width + x) * 3 + 3);
    }
  }
  return rgb;
};

/** A tile-dependent threshold: a soft disc is predicted at a different size by every third tile row and column. */
const thresholds = (stride: number) => (t: Tile) => 300 + 90 * ((t.y0 / stride + t.x0 / stride) % 3);

/** RGB [h, w, 3] of the region at (x0, y0): purple discs (or comets) on pink, with a texture in blue. */
const paint = (x0: number, y0: number, width: number, height: number, shape = inDisc): Uint8Array => {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3, t = (x0 + x + 2 * (y0 + y)) & 7;
      if (shape(y0 + y, x0 + x)) rgb[i] = 70, rgb[i + 1] = 30, rgb[i + 2] = 110 + t;
      else rgb[i] = 235, rgb[i + 1] = 210, rgb[i + 2] = 225 + t;
    }
  }
  return rgb;
};

/** The reads an ImageSource was asked for, as [x, y, width, height]. */
type Reads = Array<readonly [number, number, number, number]>;

/** A level-0-only ImageSource whose pixels come from `region`; it records every read. */
const fakeSource = (
  width: number,
  height: number,
  region: (x: number, y: number, w: number, h: number) => Uint8Array,
): ImageSource & { reads: Reads } => {
  const reads: Reads = [];
  return {
    path: `fake ${width}×${height}`,
    reader: "fake",
    levels: [{ width, height, downsample: 1 }],
    properties: {},
    associated: [],
    reads,
    readRegion: (x, y, level, w, h) => {
      assert.equal(level, 0);
      assert.ok(x >= 0 && y >= 0 && x + w <= width && y + h <= height, `read [${x}, ${y}, ${w}, ${h}] inside`);
      reads.push([x, y, w, h]);
      return Promise.resolve(region(x, y, w, h));
    },
    readAssociated: () => Promise.reject(new Error("no associated images")),
    close: () => {},
  };
};

/** An in-memory image as a source. */
const memorySource = (rgb: Uint8Array, width: number, height: number) =>
  fakeSource(width, height, (x, y, w, h) => {
    const out = new Uint8Array(w * h * 3);
    for (let r = 0; r < h; r++) {
      out.set(rgb.subarray(((y + r) * width + x) * 3, ((y + r) * width + x + w) * 3), r * w * 3);
    }
    return out;
  });

// ---- a deterministic tile predictor: dark pixels, 4-connected components ----

/**
 * Components of the pixels of a [T, T, 3] tile darker than `limit` (sum of channels); class and score
 * from each component's size.
 */
const darkComponents = (rgb: Uint8Array, tile: number, limit = 450): TilePrediction => {
  const instances = new Int32Array(tile * tile), stack: number[] = [], sizes = [0];
  const dark = (p: number) => (rgb[3 * p] as number) + (rgb[3 * p + 1] as number) + (rgb[3 * p + 2] as number) < limit;
  for (let start = 0; start < instances.length; start++) {
    if (instances[start] || !dark(start)) continue;
    const id = sizes.length;
    let size = 1;
    instances[start] = id, stack.push(start);
    while (stack.length > 0) {
      const p = stack.pop() as number, y = Math.floor(p / tile), x = p % tile;
      for (const [ny, nx] of [[y - 1, x], [y + 1, x], [y, x - 1], [y, x + 1]] as const) {
        const q = ny * tile + nx;
        if (ny < 0 || nx < 0 || ny >= tile || nx >= tile || instances[q] || !dark(q)) continue;
        instances[q] = id, size++, stack.push(q);
      }
    }
    sizes.push(size);
  }
  return {
    instances,
    classOf: Int32Array.from(sizes, (s, i) => i === 0 ? -1 : s % 3),
    scores: Float32Array.from(sizes, (s) => (s % 97) / 96),
  };
};

/**
 * The batched predictor, recording every tile it was given; `limit` may depend on the tile, as a model's
 * outlines do on the context it sees.
 */
const recording = (tile: number, keep: (t: Tile) => boolean = () => true, limit: (t: Tile) => number = () => 450) => {
  const seen: Array<readonly [number, number]> = [];
  const empty: TilePrediction = { instances: new Int32Array(tile * tile), classOf: [-1], scores: [0] };
  const predict = (tiles: ReadonlyArray<Tile>) => {
    for (const t of tiles) seen.push([t.y0, t.x0]);
    return Promise.resolve(tiles.map((t) => keep(t) ? darkComponents(t.rgb, tile, limit(t)) : empty));
  };
  return { seen, predict };
};

// ---- comparing predictions as sets of (class, score, pixel set) ----

const keyOf = (cls: number, score: number, pixels: ReadonlyArray<number>) => `${cls}|${score}|${pixels.join(",")}`;

/** Every nucleus of the streamed bands, its pixels as global indices y·W + x ascending. */
const streamedKeys = (bands: ReadonlyArray<Band>, width: number): string[] =>
  bands.flatMap((b) => b.nuclei).map((n) => keyOf(n.classId, n.score, globalPixels(n, width)));

const globalPixels = (n: StreamedNucleus, width: number): number[] => {
  const [x0, y0, x1] = n.bbox, w = x1 - x0, out: number[] = [];
  n.mask.forEach((on, i) => on && out.push((y0 + Math.floor(i / w)) * width + x0 + (i % w)));
  return out;
};

const tiledKeys = (p: { instances: Int32Array; classOf: ArrayLike<number>; scores: ArrayLike<number> }): string[] => {
  const sets = new Map<number, number[]>();
  p.instances.forEach((id, i) => id !== 0 && (sets.get(id) ?? sets.set(id, []).get(id) as number[]).push(i));
  return [...sets].map(([id, pixels]) => keyOf(p.classOf[id] as number, p.scores[id] as number, pixels));
};

const sorted = (keys: string[]) => [...keys].sort();

/** Streams `source`, collecting the bands. */
const stream = async (
  source: ImageSource,
  predict: (tiles: ReadonlyArray<Tile>) => Promise<ReadonlyArray<TilePrediction>>,
  options: {
    tile: number;
    overlap: number;
    batch: number;
    maxReadPixels?: number;
    select?: (p: TilePlacement) => boolean;
  },
) => {
  const bands: Band[] = [];
  const summary = await predictStreaming(source, predict, { ...options, onBand: (b) => void bands.push(b) });
  return { bands, summary };
};

const CASES = [
  { h: 2100, w: 1700, tile: 256, overlap: 64, batch: 5 }, // a few thousand pixels, the default tiling
  { h: 900, w: 700, tile: 64, overlap: 40, batch: 3 }, // overlap > T/2: a band overlaps the next two
  { h: 530, w: 610, tile: 128, overlap: 32, batch: 4, maxReadPixels: 128 * 300 }, // bands read in parts
  { h: 150, w: 400, tile: 256, overlap: 64, batch: 2 }, // shorter than a tile: mirror-padded rows
  { h: 500, w: 200, tile: 256, overlap: 64, batch: 2 }, // narrower than a tile: mirror-padded columns
  { h: 1500, w: 1200, tile: 256, overlap: 64, batch: 6, comets: true }, // cut above, whole below
  { h: 700, w: 500, tile: 64, overlap: 40, batch: 6, comets: true }, // …and a band overlapping two
  { h: 1300, w: 900, tile: 256, overlap: 64, batch: 6, soft: true }, // tiles disagreeing on outlines
  { h: 700, w: 500, tile: 64, overlap: 40, batch: 6, soft: true }, // …with a band overlapping two
] as const;

for (const c of CASES) {
  const name = `H=${c.h} W=${c.w} T=${c.tile} overlap=${c.overlap}` +
    ("maxReadPixels" in c ? ` maxReadPixels=${c.maxReadPixels}` : "") + ("comets" in c ? " comets" : "") +
    ("soft" in c ? " tile-dependent outlines" : "");
  Deno.test(`predictStreaming ${name}: the nuclei of predictTiled on the same pixels`, async () => {
    const rgb = "soft" in c ? paintSoft(0, 0, c.w, c.h) : paint(0, 0, c.w, c.h, "comets" in c ? inComet : inDisc);
    const source = memorySource(rgb, c.w, c.h);
    const predictor = () => recording(c.tile, undefined, "soft" in c ? thresholds(c.tile - c.overlap) : undefined);
    const tiled = await predictTiled(rgb, c.h, c.w, predictor().predict, c);
    const { bands, summary } = await stream(source, predictor().predict, c);
    const expected = tiledKeys(tiled), got = streamedKeys(bands, c.w);
    assert.ok(expected.length > 5, `nuclei to compare (${expected.length})`);
    assert.deepEqual(sorted(got), sorted(expected));
    assert.equal(summary.nuclei, expected.length);
    // ids 1..n in the order the bands hand them out
    assert.deepEqual(bands.flatMap((b) => b.nuclei.map((n) => n.id)), Array.from(got, (_, i) => i + 1));
    const maxRead = Math.max(...source.reads.map(([, , w, h]) => w * h));
    assert.ok(maxRead <= ("maxReadPixels" in c ? c.maxReadPixels : Math.min(c.tile, c.h) * c.w), `read ${maxRead} px`);
  });
}

Deno.test("predictStreaming: nuclei too large for the overlap are cut at tile borders, and still match", async () => {
  // the check above is only as good as its image: it must hold nuclei the stitcher has to treat as cut
  const { h, w, tile, overlap } = CASES[0];
  const tiled = await predictTiled(paint(0, 0, w, h), h, w, recording(tile).predict, { tile, overlap, batch: 8 });
  const large = tiledKeys(tiled).filter((k) => {
    const pixels = (k.split("|")[2] as string).split(",").map(Number), ys = pixels.map((p) => Math.floor(p / w));
    return Math.max(...ys) - Math.min(...ys) >= overlap / 2;
  });
  assert.ok(large.length >= 10, `nuclei at least overlap/2 tall (${large.length})`);
});

Deno.test("predictStreaming: a cut nucleus waits for every band below that overlaps it (T=64, overlap=40)", async () => {
  // stride 24: band j shares rows with bands j + 1 and j + 2. Planted predictions, by tile row j mod 3:
  // 0, a tall bar cut by the tile's bottom border; 2, a whole nucleus reaching up into that bar. The
  // whole one comes first in predictTiled and keeps its pixels; the bar gets what is left.
  const tile = 64, overlap = 40, h = 400, w = 400;
  const planted = (t: Tile): TilePrediction => {
    const instances = new Int32Array(tile * tile), kind = (t.y0 / 24) % 3;
    const fill = (r0: number, r1: number, c0: number, c1: number) => {
      for (let r = r0; r < r1; r++) instances.fill(1, r * tile + c0, r * tile + c1);
    };
    if (kind === 0) fill(10, 64, 20, 24);
    if (kind === 2) fill(1, 45, 21, 23), fill(30, 45, 10, 35);
    return { instances, classOf: [-1, kind], scores: [0, 1] };
  };
  const predict = (tiles: ReadonlyArray<Tile>) => Promise.resolve(tiles.map(planted));
  const rgb = new Uint8Array(h * w * 3);
  const tiled = await predictTiled(rgb, h, w, predict, { tile, overlap, batch: 7 });
  const { bands } = await stream(memorySource(rgb, w, h), predict, { tile, overlap, batch: 7 });
  const expected = tiledKeys(tiled);
  assert.ok(expected.filter((k) => k.startsWith("0|")).length >= 20, "cut bars kept");
  assert.deepEqual(sorted(streamedKeys(bands, w)), sorted(expected));
});

Deno.test("predictStreaming: two runs hand out the same ids, boxes and masks", async () => {
  const { h, w } = CASES[1], rgb = paint(0, 0, w, h);
  const run = async () =>
    (await stream(memorySource(rgb, w, h), recording(CASES[1].tile).predict, CASES[1])).bands.map((b) =>
      b.nuclei.map((n) => `${n.id}:${n.bbox.join(",")}:${n.mask.join("")}`).join(";")
    );
  assert.deepEqual(await run(), await run());
});

Deno.test("streamedContour and instanceCrop: the contours of the whole image's instance map", async () => {
  const { h, w, tile, overlap } = CASES[0], rgb = paint(0, 0, w, h);
  const tiled = await predictTiled(rgb, h, w, recording(tile).predict, { tile, overlap, batch: 8 });
  const { bands } = await stream(memorySource(rgb, w, h), recording(tile).predict, { tile, overlap, batch: 8 });
  // exact with tolerance 0, and simplified too: streamedContour simplifies in level-0 coordinates (`origin`),
  // where Douglas–Peucker's distances round as on the whole map
  const exact = instanceContours(tiled.instances, h, w, { tolerance: 0 }),
    simplified = instanceContours(tiled.instances, h, w);
  let compared = 0;
  for (const band of bands) {
    const crop = instanceCrop(band.nuclei);
    const rings = instanceContours(crop.instances, crop.height, crop.width, { tolerance: 0 });
    for (const [i, n] of band.nuclei.entries()) {
      const first = globalPixels(n, w)[0] as number, id = tiled.instances[first] as number;
      const ring = streamedContour(n, { tolerance: 0 });
      assert.deepEqual(ring, exact.get(id), `nucleus ${n.id}`);
      const fromCrop = (rings.get(i + 1) ?? []).map(([x, y]) => [x + crop.x0, y + crop.y0]);
      assert.deepEqual(fromCrop, ring, `nucleus ${n.id} from the band's crop`);
      assert.equal(crop.ids[i + 1], n.id);
      assert.deepEqual(streamedContour(n), simplified.get(id), `nucleus ${n.id}: simplified`);
      compared++;
    }
  }
  assert.ok(compared > 100, `${compared} contours`);
});

const available = openSlideAvailable();
Deno.test({
  name: available === true
    ? "predictStreaming from a pyramidal TIFF through OpenSlide: the nuclei of predictTiled on its pixels"
    : `predictStreaming from a pyramidal TIFF (ignored: ${available})`,
  ignore: available !== true,
  fn: async () => {
    const h = 1300, w = 1100, tile = 256, overlap = 64, rgb = paint(0, 0, w, h);
    const dir = await Deno.makeTempDir({ prefix: "ivaan_stream_" });
    try {
      await pyramidTiff(`${dir}/slide.tif`, rgb, w, h);
      const source = await openImageSource(`${dir}/slide.tif`);
      try {
        assert.match(source.reader, /^openslide/);
        const tiled = await predictTiled(rgb, h, w, recording(tile).predict, { tile, overlap, batch: 4 });
        const { bands } = await stream(source, recording(tile).predict, { tile, overlap, batch: 4 });
        assert.ok(tiledKeys(tiled).length > 100);
        assert.deepEqual(sorted(streamedKeys(bands, w)), sorted(tiledKeys(tiled)));
      } finally {
        source.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("select: tiles left out are never predicted, and no nucleus comes from them", async () => {
  const h = 1500, w = 1300, tile = 128, overlap = 32, rgb = paint(0, 0, w, h);
  // a checkerboard of 3×3-tile blocks (stride 96)
  const keep = (y0: number, x0: number) => (Math.floor(y0 / 96 / 3) + Math.floor(x0 / 96 / 3)) % 2 === 0;
  const select = (p: TilePlacement) => keep(p.y0, p.x0);
  const streamed = recording(tile);
  const { bands, summary } = await stream(memorySource(rgb, w, h), streamed.predict, {
    tile,
    overlap,
    batch: 4,
    select,
  });
  const all = recording(tile, (t) => keep(t.y0, t.x0));
  const tiled = await predictTiled(rgb, h, w, all.predict, { tile, overlap, batch: 4 });
  const chosen = all.seen.filter(([y0, x0]) => keep(y0, x0));
  assert.ok(chosen.length > 20 && chosen.length < all.seen.length - 20, `${chosen.length} of ${all.seen.length} tiles`);
  assert.deepEqual(streamed.seen, chosen, "only the selected tiles, in row-major order");
  assert.equal(summary.tiles, chosen.length);
  // the nuclei are those of predictTiled with the left-out tiles predicting nothing
  assert.deepEqual(sorted(streamedKeys(bands, w)), sorted(tiledKeys(tiled)));
});

Deno.test("bounded reads: 2,000 and 20,000 rows read regions of the same largest size", async () => {
  const w = 900, tile = 256, overlap = 64;
  const largest = async (h: number) => {
    const source = fakeSource(w, h, (_x, _y, rw, rh) => new Uint8Array(rw * rh * 3).fill(240));
    const { summary } = await stream(source, recording(tile).predict, { tile, overlap, batch: 8 });
    return { max: Math.max(...source.reads.map(([, , rw, rh]) => rw * rh)), reads: source.reads.length, summary };
  };
  const short = await largest(2000), tall = await largest(20000);
  assert.equal(short.max, tile * w);
  assert.equal(tall.max, short.max);
  assert.equal(tall.reads, tall.summary.bands, "one read per band");
  assert.ok(tall.reads > 9 * short.reads);
});

Deno.test("a 40,960 × 40,960 slide with 37 tissue tiles: only those predicted, peak RSS < 1.5 GB", async () => {
  const side = 40960, tile = 256, overlap = 64;
  // tissue: a 5×5 block of tiles in the middle and 12 lone tiles along the diagonal
  const block = (p: TilePlacement) => p.y0 >= 19200 && p.y0 < 20160 && p.x0 >= 19200 && p.x0 < 20160;
  const lone = (p: TilePlacement) => p.y0 === p.x0 && p.y0 % (192 * 19) === 0;
  const select = (p: TilePlacement) => block(p) || lone(p);
  const source = fakeSource(side, side, paint);
  const predictor = recording(tile);
  const start = Deno.memoryUsage().rss;
  let peak = start, nuclei = 0, outside = 0;
  const selectedOwn: TilePlacement[] = [];
  const summary = await predictStreaming(source, predictor.predict, {
    tile,
    overlap,
    batch: 8,
    select: (p) => select(p) ? (selectedOwn.push(p), true) : false,
    onBand: (band) => {
      peak = Math.max(peak, Deno.memoryUsage().rss);
      for (const n of band.nuclei) {
        nuclei++;
        const cx = (n.bbox[0] + n.bbox[2]) / 2, cy = (n.bbox[1] + n.bbox[3]) / 2;
        const near = selectedOwn.some((p) =>
          cx >= p.own.x[0] - 64 && cx < p.own.x[1] + 64 && cy >= p.own.y[0] - 64 && cy < p.own.y[1] + 64
        );
        if (!near) outside++;
      }
    },
  });
  assert.equal(selectedOwn.length, 37);
  assert.deepEqual(predictor.seen, selectedOwn.map((p) => [p.y0, p.x0]));
  assert.equal(summary.tiles, 37);
  assert.ok(nuclei > 200, `${nuclei} nuclei`);
  assert.equal(outside, 0, "every nucleus near a selected tile's owned region");
  assert.ok(peak < 1.5e9, `peak RSS ${(peak / 1e6).toFixed(0)} MB`);
  // the ring is 2·256·40,960·4 B = 84 MB; an image-sized map would be 6.7 GB
  assert.ok(peak - start < 4e8, `RSS grew by ${((peak - start) / 1e6).toFixed(0)} MB`);
  const read = source.reads.reduce((sum, [, , w, h]) => sum + w * h, 0);
  assert.ok(read <= 37 * tile * tile, `read ${read} pixels, at most the selected tiles'`);
});
