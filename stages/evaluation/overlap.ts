/**
 * The overlap table of two instance maps: the instance ids on each side (ascending), their areas,
 * and the intersection area of every (true, pred) pair that overlaps. Every instance metric is a
 * function of this table, so it is computed once per image pair in one pass over the pixels.
 *
 * Ids may be any non-negative integers (0 = background); they need not be contiguous or connected.
 */

/** Instance ids of one map, ascending, with their pixel areas. */
export interface Instances {
  readonly ids: Int32Array;
  readonly areas: Float64Array;
}

/** The overlap table. Pair k overlaps true index `t[k]` and pred index `p[k]` on `inter[k]` pixels. */
export interface Overlap {
  readonly truth: Instances;
  readonly pred: Instances;
  readonly pairs: { readonly t: Int32Array; readonly p: Int32Array; readonly inter: Float64Array };
}

const maxOf = (map: Int32Array): number => {
  let max = 0;
  for (let i = 0; i < map.length; i++) {
    const v = map[i] as number;
    if (v > max) max = v;
  }
  return max;
};

/** Lookup tables are used up to this id; larger ids go through a Map. */
const TABLE_LIMIT = 1 << 22;

/** The distinct values of a label map, ascending (0 included when present). */
export const distinctLabels = (map: Int32Array): Int32Array => {
  const max = maxOf(map);
  if (max >= TABLE_LIMIT) return Int32Array.from(new Set(map)).sort();
  const seen = new Uint8Array(max + 1);
  for (let i = 0; i < map.length; i++) seen[map[i] as number] = 1;
  const out: number[] = [];
  for (let v = 0; v <= max; v++) if (seen[v] === 1) out.push(v);
  return Int32Array.from(out);
};

/** Index of each id present in `map` (ids ascending), and the map rewritten as indices + 1 (0 = background). */
const compact = (map: Int32Array): { instances: Instances; index: Int32Array } => {
  const max = maxOf(map);
  const index = new Int32Array(map.length);
  if (max < TABLE_LIMIT) {
    const counts = new Int32Array(max + 1);
    for (let i = 0; i < map.length; i++) counts[map[i] as number] = (counts[map[i] as number] as number) + 1;
    const slot = new Int32Array(max + 1);
    const ids: number[] = [], areas: number[] = [];
    for (let id = 1; id <= max; id++) {
      const n = counts[id] as number;
      if (n === 0) continue;
      ids.push(id);
      areas.push(n);
      slot[id] = ids.length; // index + 1
    }
    for (let i = 0; i < map.length; i++) index[i] = slot[map[i] as number] as number;
    return { instances: { ids: Int32Array.from(ids), areas: Float64Array.from(areas) }, index };
  }
  // very large ids: a Map instead of a lookup table
  const count = new Map<number, number>();
  for (let i = 0; i < map.length; i++) {
    const id = map[i] as number;
    if (id !== 0) count.set(id, (count.get(id) ?? 0) + 1);
  }
  const ids = Int32Array.from([...count.keys()].sort((a, b) => a - b));
  const slot = new Map<number, number>();
  ids.forEach((id, k) => slot.set(id, k + 1));
  for (let i = 0; i < map.length; i++) index[i] = map[i] === 0 ? 0 : (slot.get(map[i] as number) as number);
  return { instances: { ids, areas: Float64Array.from(ids, (id) => count.get(id) as number) }, index };
};

/** The overlap table of `truth` and `pred` (same length, row-major [H, W]). */
export const overlap = (truth: Int32Array, pred: Int32Array): Overlap => {
  if (truth.length !== pred.length) {
    throw new RangeError(`overlap: maps differ in size (${truth.length} vs ${pred.length} pixels)`);
  }
  const t = compact(truth), p = compact(pred);
  const nT = t.instances.ids.length, nP = p.instances.ids.length;
  const ti: number[] = [], pi: number[] = [], inter: number[] = [];
  if (nT * nP <= 1 << 24) {
    const table = new Int32Array(nT * nP);
    for (let i = 0; i < truth.length; i++) {
      const a = t.index[i] as number, b = p.index[i] as number;
      if (a !== 0 && b !== 0) table[(a - 1) * nP + (b - 1)]! += 1;
    }
    for (let k = 0; k < table.length; k++) {
      if (table[k] === 0) continue;
      ti.push(Math.floor(k / nP));
      pi.push(k % nP);
      inter.push(table[k] as number);
    }
  } else {
    const table = new Map<number, number>();
    for (let i = 0; i < truth.length; i++) {
      const a = t.index[i] as number, b = p.index[i] as number;
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
    truth: t.instances,
    pred: p.instances,
    pairs: { t: Int32Array.from(ti), p: Int32Array.from(pi), inter: Float64Array.from(inter) },
  };
};
