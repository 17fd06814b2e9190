/**
 * Predicting an image of any size with a model that sees fixed-size tiles: overlapping tiles, and
 * a stitching rule under which no nucleus is duplicated or cut at a tile border.
 *
 * Along each axis, tiles of side T start every T − overlap pixels and the last one ends on the
 * image edge. Two neighbouring tiles split their overlap at its middle: each tile *owns* the
 * pixels up to that cut (and, at the image edge, up to the edge). A nucleus predicted in a tile is
 * kept only when its centroid lies in the tile's owned region. The owned region stays overlap/2
 * pixels away from every inner tile border (one the image goes on past), so a nucleus of radius
 * < overlap/2 is whole in the tile that owns its centroid, and kept there; every other tile sees
 * it either whole with its centroid outside its owned region, or cut, and drops it. A nucleus
 * touching an inner border (cut, or too large for the overlap) is kept only where no whole one
 * lies: cut nuclei are placed after all whole ones, pixels go to the first placed, and a nucleus
 * that would lose more than half of its pixels to those already placed is a duplicate, dropped.
 *
 * An image smaller than a tile is mirror-padded to the tile size; padded pixels never reach the
 * output.
 *
 * The rule lives in `keptNuclei` (which nuclei a tile keeps, and which are cut) and `stitchRule`
 * (placing them on an instance map); `stitcher` paints an image-sized map with it, and the streaming
 * path of whole slides (slide/stream.ts) a window of rows.
 */

/** One tile's prediction: a local instance map [T·T] with the class and score of each id. */
export interface TilePrediction {
  readonly instances: Int32Array; // [T, T], 0 = background, ids 1..n
  readonly classOf: ArrayLike<number>; // [n + 1]
  readonly scores: ArrayLike<number>; // [n + 1]
}

/** The stitched prediction of a whole image. */
export interface ImagePrediction {
  readonly height: number;
  readonly width: number;
  readonly instances: Int32Array; // [H, W], ids 1..n contiguous
  readonly classOf: Int32Array; // [n + 1], classOf[0] = −1
  readonly scores: Float32Array; // [n + 1]
}

/** A tile along one axis: where it starts and the [lo, hi) pixels it owns (image coordinates). */
export interface AxisTile {
  readonly start: number;
  readonly lo: number;
  readonly hi: number;
}

/** Tiles of side `tile` covering [0, length) with at least `overlap` pixels shared by neighbours. */
export const axisTiles = (length: number, tile: number, overlap: number): AxisTile[] => {
  if (!(Number.isInteger(tile) && tile > 0)) throw new RangeError(`tile side must be a positive integer, got ${tile}`);
  if (!(Number.isInteger(overlap) && overlap >= 0 && overlap < tile)) {
    throw new RangeError(`overlap must be an integer in [0, ${tile}), got ${overlap}`);
  }
  if (length <= tile) return [{ start: 0, lo: 0, hi: length }];
  const stride = tile - overlap, count = Math.ceil((length - tile) / stride) + 1;
  const starts = Array.from({ length: count }, (_, i) => Math.min(i * stride, length - tile));
  return starts.map((start, i) => {
    // the cut between tiles i and i+1 is the middle of their overlap [starts[i+1], start + tile)
    const cut = (j: number) => Math.floor(((starts[j + 1] as number) + (starts[j] as number) + tile) / 2);
    return { start, lo: i === 0 ? 0 : cut(i - 1), hi: i === count - 1 ? length : cut(i) };
  });
};

/** Mirror index into [0, n) (…2 1 0 1 2… at the start, …n−2 n−1 n−2… at the end). */
const mirror = (i: number, n: number): number => {
  if (n === 1) return 0;
  const period = 2 * (n - 1), m = ((i % period) + period) % period;
  return m < n ? m : period - m;
};

/** The [tile, tile, 3] RGB crop at (y0, x0) of an [H, W, 3] image, mirror-padded past its edges. */
export const cropTile = (
  rgb: Uint8Array,
  height: number,
  width: number,
  y0: number,
  x0: number,
  tile: number,
): Uint8Array => {
  const out = new Uint8Array(tile * tile * 3);
  for (let y = 0; y < tile; y++) {
    const sy = mirror(y0 + y, height);
    if (x0 + tile <= width) {
      out.set(rgb.subarray((sy * width + x0) * 3, (sy * width + x0 + tile) * 3), y * tile * 3);
      continue;
    }
    for (let x = 0; x < tile; x++) {
      const s = (sy * width + mirror(x0 + x, width)) * 3, d = (y * tile + x) * 3;
      out[d] = rgb[s] as number, out[d + 1] = rgb[s + 1] as number, out[d + 2] = rgb[s + 2] as number;
    }
  }
  return out;
};

/** Where one tile sits: its origin and owned region in image coordinates. */
export interface TilePlacement {
  readonly y0: number;
  readonly x0: number;
  readonly own: { readonly y: readonly [number, number]; readonly x: readonly [number, number] };
}

/** Every tile of an H×W image, row-major. */
export const tilePlacements = (height: number, width: number, tile: number, overlap: number): TilePlacement[] =>
  axisTiles(height, tile, overlap).flatMap((ty) =>
    axisTiles(width, tile, overlap).map((tx) => ({
      y0: ty.start,
      x0: tx.start,
      own: { y: [ty.lo, ty.hi] as const, x: [tx.lo, tx.hi] as const },
    }))
  );

/** A nucleus a tile keeps, its centroid in the tile's owned region (see the module comment). */
export interface KeptNucleus {
  /** the tile it came from */
  readonly at: TilePlacement;
  /** its pixels inside the image, as tile indices y·T + x, ascending */
  readonly pixels: Int32Array;
  readonly cls: number;
  readonly score: number;
  /** it touches an inner tile border: placed only after every whole nucleus */
  readonly cut: boolean;
}

/** The nuclei of one tile's prediction whose centroid lies in its owned region, ids ascending. */
export const keptNuclei = (
  at: TilePlacement,
  p: TilePrediction,
  height: number,
  width: number,
  tile: number,
): KeptNucleus[] => {
  const n = p.classOf.length - 1;
  if (n <= 0) return [];
  const area = new Int32Array(n + 1), sy = new Float64Array(n + 1), sx = new Float64Array(n + 1);
  const touches = new Uint8Array(n + 1);
  const rows = Math.min(tile, height - at.y0), cols = Math.min(tile, width - at.x0);
  // a tile border is inner when the image goes on past it: nuclei touching it are cut
  const top = at.y0 > 0, bottom = at.y0 + tile < height, left = at.x0 > 0, right = at.x0 + tile < width;
  for (let y = 0; y < rows; y++) {
    const edgeRow = (top && y === 0) || (bottom && y === tile - 1);
    for (let x = 0; x < cols; x++) {
      const id = p.instances[y * tile + x] as number;
      if (id === 0) continue;
      area[id] = (area[id] as number) + 1;
      sy[id] = (sy[id] as number) + at.y0 + y + 0.5;
      sx[id] = (sx[id] as number) + at.x0 + x + 0.5;
      if (edgeRow || (left && x === 0) || (right && x === tile - 1)) touches[id] = 1;
    }
  }
  const [ylo, yhi] = at.own.y, [xlo, xhi] = at.own.x;
  const owned = new Uint8Array(n + 1);
  for (let id = 1; id <= n; id++) {
    const a = area[id] as number;
    if (a === 0) continue;
    const cy = (sy[id] as number) / a, cx = (sx[id] as number) / a;
    owned[id] = cy >= ylo && cy < yhi && cx >= xlo && cx < xhi ? 1 : 0;
  }
  const pixels = Array.from({ length: n + 1 }, (_, id) => new Int32Array(owned[id] ? area[id] as number : 0));
  const filled = new Int32Array(n + 1);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      const id = p.instances[y * tile + x] as number;
      if (id === 0 || !owned[id]) continue;
      const k = filled[id] as number;
      (pixels[id] as Int32Array)[k] = y * tile + x;
      filled[id] = k + 1;
    }
  }
  const kept: KeptNucleus[] = [];
  for (let id = 1; id <= n; id++) {
    if (!owned[id]) continue;
    const cls = p.classOf[id] as number, score = p.scores[id] as number;
    kept.push({ at, pixels: pixels[id] as Int32Array, cls, score, cut: touches[id] === 1 });
  }
  return kept;
};

/**
 * The instance map the stitching rule paints into: image pixel (y, x) is `instances[rowStart(y) + x]`.
 * An image-sized map has `rowStart = y ↦ y·W`; the streaming path (slide/stream.ts) keeps only a
 * window of rows, `y ↦ (y mod R)·W`.
 */
export interface InstanceCanvas {
  readonly instances: Int32Array;
  readonly rowStart: (y: number) => number;
}

/**
 * The stitching rule of the module comment, on a canvas: `add` keeps a tile's owned nuclei, placing
 * the whole ones at once and queueing the cut ones; `placeCuts(lastY0)` places the queued cut nuclei
 * of tiles starting at row ≤ lastY0, in the order they were added. A nucleus is placed unless more
 * than half of its pixels are taken already (a duplicate); it gets the next id (1, 2, …) and every
 * one of its pixels still free, and `onPlaced` hears of it. A placed nucleus never changes again.
 */
export const stitchRule = (
  canvas: InstanceCanvas,
  height: number,
  width: number,
  tile: number,
  onPlaced: (id: number, nucleus: KeptNucleus) => void,
) => {
  const { instances, rowStart } = canvas;
  const cut: KeptNucleus[] = [];
  let nextId = 1;
  const place = (n: KeptNucleus) => {
    const { pixels, at } = n;
    const index = (k: number) => {
      const y = Math.floor(k / tile);
      return rowStart(at.y0 + y) + at.x0 + k - y * tile;
    };
    let taken = 0;
    for (let i = 0; i < pixels.length; i++) if (instances[index(pixels[i] as number)] !== 0) taken++;
    if (taken * 2 > pixels.length) return; // mostly a nucleus already kept: a duplicate
    const id = nextId++;
    for (let i = 0; i < pixels.length; i++) {
      const j = index(pixels[i] as number);
      if (instances[j] === 0) instances[j] = id;
    }
    onPlaced(id, n);
  };
  return {
    /** Keeps one tile's nuclei whose centroid lies in its owned region (see the module comment). */
    add(at: TilePlacement, p: TilePrediction): void {
      for (const n of keptNuclei(at, p, height, width, tile)) n.cut ? cut.push(n) : place(n);
    },
    /** Places the queued cut nuclei of tiles starting at a row ≤ `lastY0` (all of them by default). */
    placeCuts(lastY0 = Infinity): void {
      let placed = 0;
      while (placed < cut.length && (cut[placed] as KeptNucleus).at.y0 <= lastY0) place(cut[placed++] as KeptNucleus);
      cut.splice(0, placed);
    },
  };
};

/** Accumulates tile predictions into one image-sized instance map. */
export const stitcher = (height: number, width: number, tile: number) => {
  const instances = new Int32Array(height * width), classOf: number[] = [-1], scores: number[] = [0];
  const rule = stitchRule({ instances, rowStart: (y) => y * width }, height, width, tile, (_, n) => {
    classOf.push(n.cls), scores.push(n.score);
  });
  return {
    /** Adds one tile's nuclei whose centroid lies in its owned region (see the module comment). */
    add: rule.add,
    /**
     * The stitched map: cut nuclei go in last, where no whole one lies; ids are relabelled 1..n in
     * order of addition, dropping any left empty.
     */
    result(): ImagePrediction {
      rule.placeCuts();
      const pixels = new Int32Array(classOf.length);
      for (let i = 0; i < instances.length; i++) {
        const id = instances[i] as number;
        pixels[id] = (pixels[id] as number) + 1;
      }
      const remap = new Int32Array(classOf.length), outClass = [-1], outScore = [0];
      for (let id = 1; id < classOf.length; id++) {
        if (pixels[id] === 0) continue;
        remap[id] = outClass.length;
        outClass.push(classOf[id] as number), outScore.push(scores[id] as number);
      }
      return {
        height,
        width,
        instances: instances.map((id) => remap[id] as number),
        classOf: Int32Array.from(outClass),
        scores: Float32Array.from(outScore),
      };
    },
  };
};

/** Options of `predictTiled`. */
export interface TiledOptions {
  readonly tile: number;
  readonly overlap: number;
  /** tiles per call of `predictBatch` */
  readonly batch: number;
  /** called after each batch with the tiles done and the total */
  readonly onProgress?: (done: number, total: number) => void;
}

/** A tile handed to the predictor: its [T, T, 3] RGB and where it sits in the image. */
export interface Tile {
  readonly rgb: Uint8Array;
  readonly y0: number;
  readonly x0: number;
}

/**
 * Predicts an [H, W, 3] image with a batched tile predictor (tiles in, one prediction each out)
 * and stitches the tiles (see the module comment).
 */
export const predictTiled = async (
  rgb: Uint8Array,
  height: number,
  width: number,
  predictBatch: (tiles: ReadonlyArray<Tile>) => Promise<ReadonlyArray<TilePrediction>>,
  options: TiledOptions,
): Promise<ImagePrediction> => {
  const { tile, overlap, batch } = options;
  if (rgb.length !== height * width * 3) {
    throw new RangeError(`expected ${height}×${width}×3 RGB values, found ${rgb.length}`);
  }
  const places = tilePlacements(height, width, tile, overlap), stitch = stitcher(height, width, tile);
  for (let i = 0; i < places.length; i += batch) {
    const group = places.slice(i, i + batch);
    const predictions = await predictBatch(
      group.map((p) => ({ rgb: cropTile(rgb, height, width, p.y0, p.x0, tile), y0: p.y0, x0: p.x0 })),
    );
    group.forEach((p, j) => stitch.add(p, predictions[j] as TilePrediction));
    options.onProgress?.(Math.min(i + batch, places.length), places.length);
  }
  return stitch.result();
};
