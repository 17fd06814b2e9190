/**
 * Instances from the dense maps alone (dense.ts), HoVer-Net's idea of decoding (Graham et al. 2019,
 * §3.4): inside a nucleus the horizontal and vertical distance maps change slowly (from −1 to 1
 * across it), between two touching nuclei they jump (from +1 to −1), so their gradient marks the
 * boundaries. Markers are the foreground pixels away from any boundary; a marker-controlled
 * watershed grows them over the foreground, lowest boundary energy first.
 *
 *   dense [h, w, 3] at the mask stride ─ bilinear ─► foreground p, horizontal h, vertical v [H, W]
 *   energy e = max(0, −∂h/∂x, −∂v/∂y) (central differences of 3×3-box-smoothed maps)
 *   markers = connected components of (p ≥ ½ and e < energyThreshold), those < minArea dropped
 *   instances = watershed of e from the markers over p ≥ ½, those < minArea dropped
 *
 * Our own formulation: the falling part of the gradient (inside a nucleus the maps only rise), with
 * a fixed threshold, instead of HoVer-Net's min–max normalised 21×21 Sobel magnitude; the
 * thresholds are chosen on validation images.
 */
import { bilinearAxis, bilinearMix } from "./decoding.ts";

export interface DenseDecodeOptions {
  /** a pixel is foreground from this probability */
  readonly foregroundThreshold: number;
  /** the distance maps' gradient (per pixel) above which a pixel is a boundary, not a marker */
  readonly energyThreshold: number;
  /** markers and instances smaller than this (pixels) are dropped */
  readonly minArea: number;
  /** `centreInstances`: a centre-head peak (a local maximum, `peakRadius`) is a nucleus from this probability */
  readonly centerThreshold?: number;
  /**
   * `centreInstances`: a peak is the maximum of the cells within this many pixels (default 4: the 3×3 cells of a
   * stride-4 heat map, 5×5 at stride 2, so that a finer map does not find two peaks where the coarse one found one)
   */
  readonly peakRadius?: number;
  /**
   * `centreInstances`: the weight α of the distance maps' boundary energy in the flooding order, 1 − σ(centre) + α·e
   * (absent: 0, the centre heat alone; `defaultDenseDecodeOptions`: 0.3), so that touching nuclei part where their
   * distance maps jump
   */
  readonly boundaryWeight?: number;
}

/** Pixels around a centre peak it must dominate: 1 cell of a stride-4 heat map. */
const DEFAULT_PEAK_RADIUS = 4;

export const defaultDenseDecodeOptions: DenseDecodeOptions = {
  foregroundThreshold: 0.5,
  energyThreshold: 0.2,
  minArea: 10,
  // chosen on CoNSeP's held-out images (docs/results.md): 0.3 / 0.4 / 0.5 gave PQ 0.346 / 0.356 / 0.324
  centerThreshold: 0.4,
  // chosen on CoNSeP's held-out images (docs/results.md, round 7): 0 / 0.3 / 1 gave PQ 0.468 / 0.477 / 0.479 at the
  // end and 0.366 / 0.370 / 0.364 at step 1,500
  boundaryWeight: 0.3,
};

/** The three dense channels upsampled bilinearly to height × width: foreground probability, h, v. */
const upsample = (dense: ArrayLike<number>, h: number, w: number, height: number, width: number) => {
  const rows = bilinearAxis(h, height), cols = bilinearAxis(w, width);
  const out = [new Float32Array(height * width), new Float32Array(height * width), new Float32Array(height * width)];
  for (let y = 0; y < height; y++) {
    const r0 = (rows.lo[y] as number) * w, r1 = (rows.hi[y] as number) * w, fy = rows.frac[y] as number;
    for (let x = 0; x < width; x++) {
      const c0 = cols.lo[x] as number, c1 = cols.hi[x] as number, fx = cols.frac[x] as number;
      for (let c = 0; c < 3; c++) {
        const v = bilinearMix(
          dense[(r0 + c0) * 3 + c] as number,
          dense[(r0 + c1) * 3 + c] as number,
          dense[(r1 + c0) * 3 + c] as number,
          dense[(r1 + c1) * 3 + c] as number,
          fx,
          fy,
        );
        (out[c] as Float32Array)[y * width + x] = c === 0 ? 1 / (1 + Math.exp(-v)) : v;
      }
    }
  }
  return out as [Float32Array, Float32Array, Float32Array];
};

/** A 3×3 box mean (edges clamped). */
const smooth = (m: Float32Array, height: number, width: number): Float32Array => {
  const out = new Float32Array(m.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = Math.min(height - 1, Math.max(0, y + dy));
        for (let dx = -1; dx <= 1; dx++) sum += m[yy * width + Math.min(width - 1, Math.max(0, x + dx))] as number;
      }
      out[y * width + x] = sum / 9;
    }
  }
  return out;
};

/**
 * The boundary energy max(0, −∂h/∂x, −∂v/∂y) by central differences: across a nucleus h rises
 * with x (from −1 to 1) and v with y, so their gradients are positive inside one — at any size —
 * and strongly negative where one nucleus ends and the next begins (h falls from +1 to −1).
 */
export const boundaryEnergy = (h: Float32Array, v: Float32Array, height: number, width: number): Float32Array => {
  const sh = smooth(h, height, width), sv = smooth(v, height, width), e = new Float32Array(h.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const xl = Math.max(0, x - 1), xr = Math.min(width - 1, x + 1);
      const yu = Math.max(0, y - 1), yd = Math.min(height - 1, y + 1);
      const gx = ((sh[y * width + xr] as number) - (sh[y * width + xl] as number)) / Math.max(1, xr - xl);
      const gy = ((sv[yd * width + x] as number) - (sv[yu * width + x] as number)) / Math.max(1, yd - yu);
      e[y * width + x] = Math.max(0, -gx, -gy);
    }
  }
  return e;
};

/** 4-connected components of `mask` (ids 1..n), components below `minArea` pixels set to 0. */
const components = (mask: Uint8Array, height: number, width: number, minArea: number): Int32Array => {
  const label = new Int32Array(mask.length), stack: number[] = [];
  let next = 0;
  const sizes = [0];
  for (let start = 0; start < mask.length; start++) {
    if (mask[start] === 0 || label[start] !== 0) continue;
    next++;
    let size = 0;
    label[start] = next, stack.push(start);
    while (stack.length > 0) {
      const p = stack.pop() as number, y = Math.floor(p / width), x = p % width;
      size++;
      for (
        const q of [
          y > 0 ? p - width : -1,
          y < height - 1 ? p + width : -1,
          x > 0 ? p - 1 : -1,
          x < width - 1 ? p + 1 : -1,
        ]
      ) {
        if (q >= 0 && mask[q] !== 0 && label[q] === 0) label[q] = next, stack.push(q);
      }
    }
    sizes.push(size);
  }
  return relabel(label, sizes, minArea);
};

/** Ids renumbered 1..n in order of first appearance, dropping those with fewer than `minArea` pixels. */
const relabel = (label: Int32Array, sizes: ReadonlyArray<number>, minArea: number): Int32Array => {
  const map = new Int32Array(sizes.length);
  let n = 0;
  for (let p = 0; p < label.length; p++) {
    const id = label[p] as number;
    if (id > 0 && map[id] === 0 && (sizes[id] as number) >= minArea) map[id] = ++n;
  }
  return label.map((id) => (id > 0 ? map[id] as number : 0));
};

/** A binary min-heap of pixels keyed by energy (ties: the earlier push first, for determinism). */
class Heap {
  private readonly keys: number[] = [];
  private readonly order: number[] = [];
  private readonly items: number[] = [];
  private pushed = 0;
  get size(): number {
    return this.items.length;
  }
  push(item: number, key: number): void {
    this.items.push(item), this.keys.push(key), this.order.push(this.pushed++);
    let i = this.items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent), i = parent;
    }
  }
  pop(): number {
    const top = this.items[0] as number, last = this.items.length - 1;
    this.swap(0, last);
    this.items.pop(), this.keys.pop(), this.order.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < this.items.length && this.less(l, m)) m = l;
      if (r < this.items.length && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m), i = m;
    }
    return top;
  }
  private less(a: number, b: number): boolean {
    const ka = this.keys[a] as number, kb = this.keys[b] as number;
    return ka < kb || (ka === kb && (this.order[a] as number) < (this.order[b] as number));
  }
  private swap(a: number, b: number): void {
    for (const arr of [this.items, this.keys, this.order]) [arr[a], arr[b]] = [arr[b] as number, arr[a] as number];
  }
}

/**
 * Marker-controlled watershed: every marker pixel keeps its id; the other pixels of `mask` take
 * the id of the region that reaches them first when regions grow in order of `energy`.
 */
export const watershed = (
  energy: Float32Array,
  markers: Int32Array,
  mask: Uint8Array,
  height: number,
  width: number,
): Int32Array => {
  const out = Int32Array.from(markers), heap = new Heap();
  const neighbours = (p: number): number[] => {
    const y = Math.floor(p / width), x = p % width;
    return [y > 0 ? p - width : -1, y < height - 1 ? p + width : -1, x > 0 ? p - 1 : -1, x < width - 1 ? p + 1 : -1];
  };
  const queued = new Uint8Array(out.length);
  for (let p = 0; p < out.length; p++) {
    if ((out[p] as number) === 0) continue;
    for (const q of neighbours(p)) {
      if (q >= 0 && mask[q] !== 0 && out[q] === 0 && queued[q] === 0) queued[q] = 1, heap.push(q, energy[q] as number);
    }
  }
  while (heap.size > 0) {
    const p = heap.pop();
    // the pixel joins the lowest-energy labelled neighbour's region
    let best = 0, bestEnergy = Infinity;
    for (const q of neighbours(p)) {
      if (q < 0 || out[q] === 0) continue;
      if ((energy[q] as number) < bestEnergy) best = out[q] as number, bestEnergy = energy[q] as number;
    }
    out[p] = best;
    for (const q of neighbours(p)) {
      if (q >= 0 && mask[q] !== 0 && out[q] === 0 && queued[q] === 0) queued[q] = 1, heap.push(q, energy[q] as number);
    }
  }
  return out;
};

/**
 * The instance map [height·width] (ids 1..n) of one image's dense maps [h·w·3] at the mask stride.
 * With `seeds` (an instance map, e.g. the queries' decoding), the markers are the seeds' pixels on
 * the foreground instead, and foreground the seeds never reach gets markers of its own (from the
 * boundary energy, as without seeds): the seeds separate touching nuclei, the dense map gives
 * their extent and finds nuclei no seed covers.
 */
export const denseInstances = (
  dense: ArrayLike<number>,
  h: number,
  w: number,
  height: number,
  width: number,
  options: DenseDecodeOptions = defaultDenseDecodeOptions,
  seeds?: Int32Array,
): Int32Array => {
  if (dense.length !== h * w * 3) {
    throw new RangeError(`denseInstances: expected ${h}×${w}×3 values, got ${dense.length}`);
  }
  const [fg, hMap, vMap] = upsample(dense, h, w, height, width);
  const energy = boundaryEnergy(hMap, vMap, height, width);
  const mask = new Uint8Array(fg.length), core = new Uint8Array(fg.length);
  for (let p = 0; p < fg.length; p++) {
    if ((fg[p] as number) < options.foregroundThreshold) continue;
    mask[p] = 1;
    if ((energy[p] as number) < options.energyThreshold) core[p] = 1;
  }
  let markers = components(core, height, width, options.minArea);
  if (seeds !== undefined) {
    // the seeds on the foreground first; then the energy's markers where no seed's region grows
    let n = 0;
    const seeded = new Int32Array(fg.length);
    for (let p = 0; p < fg.length; p++) {
      const id = seeds[p] as number;
      if (mask[p] !== 0 && id > 0) seeded[p] = id, n = Math.max(n, id);
    }
    const reached = watershed(energy, seeded, mask, height, width);
    for (let p = 0; p < fg.length; p++) if (reached[p] !== 0) core[p] = 0;
    const extra = components(core, height, width, options.minArea);
    for (let p = 0; p < fg.length; p++) if ((extra[p] as number) > 0) seeded[p] = n + (extra[p] as number);
    markers = seeded;
  }
  const grown = watershed(energy, markers, mask, height, width);
  let n = 0;
  for (const id of markers) if (id > n) n = id;
  const sizes = new Array<number>(n + 1).fill(0);
  for (const id of grown) if (id > 0) sizes[id] = (sizes[id] as number) + 1;
  return relabel(grown, sizes, options.minArea);
};

/**
 * Instances from the centre head's peaks (centers.ts) grown over the dense foreground: every
 * local maximum (within `peakRadius` pixels) of the centre heat map with probability ≥ `centerThreshold` whose pixel is
 * foreground is a marker; a watershed over the foreground, hottest pixels first, gives each
 * pixel to the centre that reaches it first, so two touching nuclei part where the heat between
 * their centres is lowest; foreground no centre reaches becomes instances of its own (≥ minArea).
 */
export const centreInstances = (
  dense: ArrayLike<number>,
  h: number,
  w: number,
  centers: { readonly logits: ArrayLike<number>; readonly ch: number; readonly cw: number },
  height: number,
  width: number,
  options: DenseDecodeOptions = defaultDenseDecodeOptions,
): Int32Array => {
  const { logits, ch, cw } = centers;
  if (dense.length !== h * w * 3 || logits.length !== ch * cw) {
    throw new RangeError(`centreInstances: expected ${h}×${w}×3 dense and ${ch}×${cw} centre values`);
  }
  const [fg, hMap, vMap] = upsample(dense, h, w, height, width);
  const mask = new Uint8Array(fg.length);
  for (let p = 0; p < fg.length; p++) if ((fg[p] as number) >= options.foregroundThreshold) mask[p] = 1;
  // the heat map at the image's size: 1 − σ(logit) is the flooding order
  const rows = bilinearAxis(ch, height), cols = bilinearAxis(cw, width), energy = new Float32Array(fg.length);
  for (let y = 0; y < height; y++) {
    const r0 = (rows.lo[y] as number) * cw, r1 = (rows.hi[y] as number) * cw, fy = rows.frac[y] as number;
    for (let x = 0; x < width; x++) {
      const c0 = cols.lo[x] as number, c1 = cols.hi[x] as number, fx = cols.frac[x] as number;
      const logit = bilinearMix(
        logits[r0 + c0] as number,
        logits[r0 + c1] as number,
        logits[r1 + c0] as number,
        logits[r1 + c1] as number,
        fx,
        fy,
      );
      energy[y * width + x] = 1 - 1 / (1 + Math.exp(-logit));
    }
  }
  const alpha = options.boundaryWeight ?? 0;
  if (alpha > 0) {
    const boundary = boundaryEnergy(hMap, vMap, height, width);
    for (let p = 0; p < energy.length; p++) energy[p] = (energy[p] as number) + alpha * (boundary[p] as number);
  }
  const threshold = options.centerThreshold ?? 0.4, cutoff = Math.log(threshold / (1 - threshold));
  const markers = new Int32Array(fg.length), sy = height / ch, sx = width / cw;
  const radius = Math.max(1, Math.round((options.peakRadius ?? DEFAULT_PEAK_RADIUS) / sy)); // in cells
  let n = 0;
  for (let cy = 0; cy < ch; cy++) {
    for (let cx = 0; cx < cw; cx++) {
      const v = logits[cy * cw + cx] as number;
      if (v < cutoff) continue;
      let peak = true;
      for (let dy = -radius; dy <= radius && peak; dy++) {
        for (let dx = -radius; dx <= radius; dx++) {
          const yy = cy + dy, xx = cx + dx;
          if (
            (dy !== 0 || dx !== 0) && yy >= 0 && yy < ch && xx >= 0 && xx < cw && (logits[yy * cw + xx] as number) > v
          ) {
            peak = false;
            break;
          }
        }
      }
      // the pixel at the cell's centre
      const p = Math.min(height - 1, Math.floor((cy + 0.5) * sy)) * width +
        Math.min(width - 1, Math.floor((cx + 0.5) * sx));
      if (peak && mask[p] !== 0 && markers[p] === 0) markers[p] = ++n;
    }
  }
  const reached = watershed(energy, markers, mask, height, width);
  // foreground no centre reached: its connected pieces are nuclei of their own
  const rest = new Uint8Array(fg.length);
  for (let p = 0; p < fg.length; p++) if (mask[p] !== 0 && reached[p] === 0) rest[p] = 1;
  const extra = components(rest, height, width, options.minArea);
  let m = n;
  for (let p = 0; p < fg.length; p++) {
    const id = extra[p] as number;
    if (id > 0) reached[p] = n + id, m = Math.max(m, n + id);
  }
  const sizes = new Array<number>(m + 1).fill(0);
  for (const id of reached) if (id > 0) sizes[id] = (sizes[id] as number) + 1;
  return relabel(reached, sizes, options.minArea);
};
