/**
 * Test-time augmentation by flips (`deno task predict --tta`, `--tta-average`): each tile is also
 * predicted flipped left–right, top–bottom and both, and the variants are combined in one of two
 * ways.
 *
 * - **votes** (`--tta N`): each flipped prediction's instances are flipped back, and a nucleus of the
 *   plain prediction is kept only when at least N of the variants (itself included) found it (a
 *   nucleus with IoU > 0.5 in that variant); its class is the most frequent among the variants that
 *   found it, ties going to the plain prediction's. This removes spurious nuclei and steadies
 *   classes; it does not add nuclei or change their masks.
 * - **average** (`--tta-average`, models with dense maps): the variants' dense maps (foreground,
 *   horizontal and vertical distances), centre logits and type logits are flipped back — a flip
 *   along x negates the horizontal distance, one along y the vertical — and averaged, and the mean
 *   maps are decoded once (HoVer-Net and CellViT average their maps the same way). This can add
 *   nuclei, and it smooths the masks' boundaries and the centre peaks. With `rot90` (`--tta-rot90`)
 *   the four flips of the transposed tile join them: the eight symmetries of the square (the 90°
 *   rotations and the diagonal reflections); transposing swaps the two distance maps.
 *
 * Either costs a forward pass per variant.
 *
 * Mental model: `flipTile` (pixels) → the model → `flipInstances` back (`unflipTile`) →
 * `voteInstances`, or → `flipMapsBack` → `averageMaps` → one decoding.
 */
import type { DenseMaps } from "../model/decoding.ts";
import type { TilePrediction } from "./tiling.ts";

/** A variant of a tile: flipped along x and/or y, then transposed (x ↔ y) where `transpose`. */
export interface Flip {
  readonly x: boolean;
  readonly y: boolean;
  readonly transpose?: boolean;
}

/** The flips: none, left–right, top–bottom, both (a 180° rotation). */
export const FLIPS: readonly [Flip, Flip, Flip, Flip] = [
  { x: false, y: false },
  { x: true, y: false },
  { x: false, y: true },
  { x: true, y: true },
];

/** The eight symmetries of a square: the four flips, and the same four transposed (the 90° rotations among them). */
export const DIHEDRAL: ReadonlyArray<Flip> = [...FLIPS, ...FLIPS.map((f) => ({ ...f, transpose: true }))];

/** How the variants' predictions are combined (see above); `rot90`: the eight symmetries instead of the four flips. */
export type TtaOptions = { readonly votes: number } | { readonly average: true; readonly rot90?: boolean };

/** The variants a TTA option predicts. */
export const variantsOf = (tta: TtaOptions | undefined): ReadonlyArray<Flip> =>
  tta === undefined ? [FLIPS[0]] : "average" in tta && tta.rot90 === true ? DIHEDRAL : FLIPS;

/** A `h`×`w` grid with `channels` values per cell, flipped along x and/or y (its own inverse; `transpose` ignored). */
export const flipGrid = <A extends Uint8Array | Int32Array | Float32Array>(
  values: A,
  h: number,
  w: number,
  channels: number,
  flip: Flip,
): A => {
  if (!flip.x && !flip.y) return values;
  const out = new (values.constructor as new (n: number) => A)(values.length);
  for (let y = 0; y < h; y++) {
    const sy = flip.y ? h - 1 - y : y;
    for (let x = 0; x < w; x++) {
      const sx = flip.x ? w - 1 - x : x, to = (y * w + x) * channels, from = (sy * w + sx) * channels;
      for (let c = 0; c < channels; c++) out[to + c] = values[from + c] as number;
    }
  }
  return out;
};

/** A square `n`×`n` grid with `channels` values per cell, transposed (its own inverse). */
export const transposeGrid = <A extends Uint8Array | Int32Array | Float32Array>(
  values: A,
  n: number,
  channels: number,
): A => {
  const out = new (values.constructor as new (n: number) => A)(values.length);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const to = (y * n + x) * channels, from = (x * n + y) * channels;
      for (let c = 0; c < channels; c++) out[to + c] = values[from + c] as number;
    }
  }
  return out;
};

/** A square `t`×`t` map with `channels` values per pixel as the variant sees it: flipped, then transposed. */
export const flipTile = <A extends Uint8Array | Int32Array>(values: A, t: number, channels: number, flip: Flip): A => {
  const flipped = flipGrid(values, t, t, channels, flip);
  return flip.transpose === true ? transposeGrid(flipped, t, channels) : flipped;
};

/** The inverse of `flipTile`: transposed back, then flipped. */
export const unflipTile = <A extends Uint8Array | Int32Array | Float32Array>(
  values: A,
  t: number,
  channels: number,
  flip: Flip,
): A => flipGrid(flip.transpose === true ? transposeGrid(values, t, channels) : values, t, t, channels, flip);

/**
 * One image's maps predicted on a flipped (and maybe transposed) tile, mapped back onto the tile: every grid
 * transposed back, the two distance maps swapped with it (the transposed tile's x is the tile's y), then flipped, and
 * the distance maps' signs turned where their axis was flipped (channel 1, x − cx, under an x flip; channel 2, y − cy,
 * under a y flip). `h`×`w` is the dense and type maps' grid, `maps.ch`×`maps.cw` the centres' (square when
 * transposed).
 */
export const flipMapsBack = (maps: DenseMaps, h: number, w: number, flip: Flip): DenseMaps => {
  const transposed = flip.transpose === true;
  if (transposed && (h !== w || maps.ch !== maps.cw)) {
    throw new RangeError(`flipMapsBack: a transposed variant needs square maps, got ${h}×${w}`);
  }
  const back = (values: ArrayLike<number>, gh: number, gw: number, channels: number): Float32Array =>
    transposed
      ? unflipTile(Float32Array.from(values), gh, channels, flip)
      : flipGrid(Float32Array.from(values), gh, gw, channels, flip);
  const dense = back(maps.dense, h, w, 3);
  if (transposed) {
    for (let p = 0; p < h * w; p++) {
      const a = dense[p * 3 + 1] as number;
      dense[p * 3 + 1] = dense[p * 3 + 2] as number, dense[p * 3 + 2] = a;
    }
  }
  if (flip.x || flip.y) {
    for (let p = 0; p < h * w; p++) {
      if (flip.x) dense[p * 3 + 1] = -(dense[p * 3 + 1] as number);
      if (flip.y) dense[p * 3 + 2] = -(dense[p * 3 + 2] as number);
    }
  }
  const types = maps.types === undefined ? undefined : back(maps.types, h, w, maps.types.length / (h * w));
  const centers = maps.centers === undefined || maps.ch === undefined || maps.cw === undefined
    ? undefined
    : back(maps.centers, maps.ch, maps.cw, 1);
  return {
    dense,
    ...(types === undefined ? {} : { types }),
    ...(centers === undefined ? {} : { centers, ch: maps.ch, cw: maps.cw }),
  };
};

/** The element-wise mean of maps on the same grids (each already in the plain tile's orientation). */
export const averageMaps = (variants: ReadonlyArray<DenseMaps>): DenseMaps => {
  const first = variants[0];
  if (first === undefined) throw new RangeError("averageMaps: no maps");
  const mean = (pick: (m: DenseMaps) => ArrayLike<number> | undefined): Float32Array | undefined => {
    const a = pick(first);
    if (a === undefined) return undefined;
    const out = new Float32Array(a.length);
    for (const m of variants) {
      const v = pick(m);
      if (v === undefined || v.length !== a.length) throw new RangeError("averageMaps: the variants' maps differ");
      for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) + (v[i] as number);
    }
    for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / variants.length;
    return out;
  };
  const types = mean((m) => m.types), centers = mean((m) => m.centers);
  return {
    dense: mean((m) => m.dense) as Float32Array,
    ...(types === undefined ? {} : { types }),
    ...(centers === undefined ? {} : { centers, ch: first.ch as number, cw: first.cw as number }),
  };
};

/** A prediction made on a flipped tile, mapped back onto the tile. */
export const flipInstances = (p: TilePrediction, t: number, flip: Flip): TilePrediction => ({
  ...p,
  instances: unflipTile(p.instances, t, 1, flip),
});

/**
 * The plain prediction (`variants[0]`) with the nuclei found by fewer than `votes` variants
 * removed (ids renumbered 1..n in order) and each kept nucleus's class the variants' majority.
 */
export const voteInstances = (variants: ReadonlyArray<TilePrediction>, votes: number): TilePrediction => {
  const base = variants[0];
  if (base === undefined) throw new RangeError("voteInstances: no prediction");
  const n = base.classOf.length - 1, pixels = base.instances.length;
  const area = new Int32Array(n + 1);
  for (let p = 0; p < pixels; p++) {
    const id = base.instances[p] as number;
    area[id] = (area[id] as number) + 1;
  }
  const found = Array.from({ length: n + 1 }, () => [] as number[]); // per base id, the classes that found it
  for (let id = 1; id <= n; id++) found[id]?.push(base.classOf[id] as number);
  for (const v of variants.slice(1)) {
    // overlaps between base ids and this variant's ids
    const m = v.classOf.length - 1, areaV = new Int32Array(m + 1), shared = new Map<number, number>();
    for (let p = 0; p < pixels; p++) {
      const a = base.instances[p] as number, b = v.instances[p] as number;
      areaV[b] = (areaV[b] as number) + 1;
      if (a > 0 && b > 0) shared.set(a * (m + 1) + b, (shared.get(a * (m + 1) + b) ?? 0) + 1);
    }
    for (const [key, inter] of shared) {
      const a = Math.floor(key / (m + 1)), b = key % (m + 1);
      // IoU > 0.5 pairs are unique on both sides
      if (inter / ((area[a] as number) + (areaV[b] as number) - inter) > 0.5) found[a]?.push(v.classOf[b] as number);
    }
  }
  const idOf = new Int32Array(n + 1), classOf = [-1], scores = [0];
  for (let id = 1; id <= n; id++) {
    const classes = found[id] ?? [];
    if (classes.length < votes) continue;
    classOf.push(majority(classes));
    scores.push(base.scores[id] as number);
    idOf[id] = classOf.length - 1;
  }
  const instances = new Int32Array(pixels);
  for (let p = 0; p < pixels; p++) instances[p] = idOf[base.instances[p] as number] as number;
  return { instances, classOf: Int32Array.from(classOf), scores: Float32Array.from(scores) };
};

/** The most frequent value; ties go to the one seen first. */
const majority = (values: ReadonlyArray<number>): number => {
  const counts = new Map<number, number>();
  let best = values[0] as number, most = 0;
  for (const v of values) {
    const c = (counts.get(v) ?? 0) + 1;
    counts.set(v, c);
    if (c > most) [best, most] = [v, c];
  }
  return best;
};
