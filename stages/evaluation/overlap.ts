/**
 * Label tables and the overlap table of two instance maps.
 *
 * A label table is one pass over a map: the instance ids (ascending), their areas and centroid
 * sums, and a lookup from id to index. The overlap table adds one pass over both maps: the
 * intersection area of every (true, pred) pair that overlaps. Every instance metric is a function
 * of these, and PanNuke evaluation reuses the tables for centroids and the "single value" rule.
 *
 * Ids may be any non-negative integers (0 = background); they need not be contiguous or connected.
 * Ids below 2^22 index lookup tables directly; a map with larger ids is first relabelled.
 */

/** Instance ids of one map, ascending, with their pixel areas. */
export interface Instances {
  readonly ids: Int32Array;
  readonly areas: Float64Array;
}

/** A map's instances plus what one pass can also give: centroid sums and an id → index lookup. */
export interface LabelTable extends Instances {
  /** the map, with ids relabelled to 1..n when they were too large for lookup tables */
  readonly map: Int32Array;
  readonly width: number;
  /** Σx and Σy (column, row) per instance index */
  readonly sumX: Float64Array;
  readonly sumY: Float64Array;
  /** `slot[id]` = instance index + 1 for ids of `map` (0 for background and unused ids) */
  readonly slot: Int32Array;
  /** whether any pixel is background (0) */
  readonly hasBackground: boolean;
}

/** The overlap table. Pair k overlaps true index `t[k]` and pred index `p[k]` on `inter[k]` pixels. */
export interface Overlap {
  readonly truth: Instances;
  readonly pred: Instances;
  readonly pairs: { readonly t: Int32Array; readonly p: Int32Array; readonly inter: Float64Array };
}

const TABLE_LIMIT = 1 << 22;

const maxOf = (map: Int32Array): number => {
  let max = 0;
  for (let i = 0; i < map.length; i++) {
    const v = map[i] as number;
    if (v > max) max = v;
  }
  return max;
};

/** Relabels a map with huge ids to 1..n in ascending id order (returns the new map and the ids). */
const relabel = (map: Int32Array): { map: Int32Array; ids: Int32Array } => {
  const ids = Int32Array.from(new Set(map)).filter((v) => v !== 0).sort();
  const index = new Map<number, number>();
  ids.forEach((id, k) => index.set(id, k + 1));
  return { map: map.map((v) => (v === 0 ? 0 : (index.get(v) as number))), ids };
};

/** One pass over a row-major [H, W] label map: instances, areas, centroid sums, lookup. */
export const labelTable = (source: Int32Array, width: number): LabelTable => {
  if (!Number.isInteger(source.length / width)) {
    throw new RangeError(`labelTable: ${source.length} pixels are not rows of ${width}`);
  }
  let map = source, originalIds: Int32Array | undefined;
  let max = maxOf(map);
  if (max >= TABLE_LIMIT) {
    ({ map, ids: originalIds } = relabel(source));
    max = originalIds.length;
  }
  const counts = new Int32Array(max + 1), sx = new Float64Array(max + 1), sy = new Float64Array(max + 1);
  const height = map.length / width;
  let background = 0;
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      const v = map[i] as number;
      if (v === 0) {
        background++;
        continue;
      }
      counts[v] = (counts[v] as number) + 1;
      sx[v] = (sx[v] as number) + x;
      sy[v] = (sy[v] as number) + y;
    }
  }
  let n = 0;
  for (let id = 1; id <= max; id++) if (counts[id] !== 0) n++;
  const ids = new Int32Array(n), areas = new Float64Array(n), sumX = new Float64Array(n), sumY = new Float64Array(n);
  const slot = new Int32Array(max + 1);
  for (let id = 1, k = 0; id <= max; id++) {
    if (counts[id] === 0) continue;
    ids[k] = originalIds === undefined ? id : (originalIds[id - 1] as number);
    areas[k] = counts[id] as number;
    sumX[k] = sx[id] as number;
    sumY[k] = sy[id] as number;
    slot[id] = ++k;
  }
  return { map, width, ids, areas, sumX, sumY, slot, hasBackground: background > 0 };
};

/** The number of distinct values of the map (background included when present). */
export const distinctCount = (table: LabelTable): number => table.ids.length + (table.hasBackground ? 1 : 0);

/** The overlap table of two label tables of maps of the same size. */
export const overlapTables = (truth: LabelTable, pred: LabelTable): Overlap => {
  if (truth.map.length !== pred.map.length) {
    throw new RangeError(`overlap: maps differ in size (${truth.map.length} vs ${pred.map.length} pixels)`);
  }
  const nT = truth.ids.length, nP = pred.ids.length;
  const ti: number[] = [], pi: number[] = [], inter: number[] = [];
  const tm = truth.map, pm = pred.map, ts = truth.slot, ps = pred.slot;
  if (nT * nP <= 1 << 24) {
    const table = new Int32Array(nT * nP);
    for (let i = 0; i < tm.length; i++) {
      const a = ts[tm[i] as number] as number, b = ps[pm[i] as number] as number;
      if (a !== 0 && b !== 0) table[(a - 1) * nP + (b - 1)] = (table[(a - 1) * nP + (b - 1)] as number) + 1;
    }
    for (let k = 0; k < table.length; k++) {
      if (table[k] === 0) continue;
      ti.push(Math.floor(k / nP));
      pi.push(k % nP);
      inter.push(table[k] as number);
    }
  } else {
    const table = new Map<number, number>();
    for (let i = 0; i < tm.length; i++) {
      const a = ts[tm[i] as number] as number, b = ps[pm[i] as number] as number;
      if (a !== 0 && b !== 0) {
        const key = (a - 1) * nP + (b - 1);
        table.set(key, (table.get(key) ?? 0) + 1);
      }
    }
    for (const key of [...table.keys()].sort((x, y) => x - y)) {
      ti.push(Math.floor(key / nP));
      pi.push(key % nP);
      inter.push(table.get(key) as number);
    }
  }
  return {
    truth: { ids: truth.ids, areas: truth.areas },
    pred: { ids: pred.ids, areas: pred.areas },
    pairs: { t: Int32Array.from(ti), p: Int32Array.from(pi), inter: Float64Array.from(inter) },
  };
};

/** The overlap table of `truth` and `pred` (same length, row-major [H, W]; the width only matters for centroids). */
export const overlap = (truth: Int32Array, pred: Int32Array, width = 1): Overlap =>
  overlapTables(labelTable(truth, width), labelTable(pred, width));
