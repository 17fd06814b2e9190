/**
 * Rasterisation and colour for the synthetic H&E generator (private to `synthetic.ts`, which holds
 * the class and organ tables and the public API).
 *
 * `renderTile(rand, size, count, organ, classes)` paints one tile in three steps:
 *  1. background: eosin and faint hematoxylin concentration fields [H, W] from smooth value noise
 *     (stroma density, wavy collagen fibres), empty where there is fat or air (noise holes) and
 *     inside lumens (ellipses that epithelial nuclei line);
 *  2. nuclei: each is a rotated ellipse whose radius is modulated by boundary harmonics
 *     (irregularity), filled with hematoxylin = darkness × margination profile × chromatin texture;
 *     later nuclei are painted on top in the raw instance map, H concentrations add (Beer–Lambert:
 *     stacked nuclei look darker);
 *  3. colour: 3×3 binomial blur of both concentration fields, OD = c_H·OD_H + c_E·OD_E + residual,
 *     RGB = 255·exp(−OD) from a lookup table, plus per-pixel noise, clamped to 0..255.
 *
 * Output: `image` [H, W, 3] RGB, `owner` [H, W] raw nucleus numbers (1-based in placement order, 0 =
 * background; the caller relabels to contiguous ids) and `classOfRaw[k]` for raw number k.
 *
 * Gotchas: every random number comes from the `rand` passed in (one stream per tile) and the
 * per-pixel noise from an xorshift seeded by it, so a tile depends only on that stream. A nucleus
 * is accepted only if it covers at most 35 % of its own pixels over others and leaves every earlier
 * nucleus at least 60 % visible, so occluded nuclei stay recognisable (no slivers); nuclei whose
 * visible part inside the tile is under `MIN_PIXELS` are skipped.
 */

/** A source of uniform numbers in [0, 1). */
export type Rand = () => number;
/** An inclusive range [lo, hi] that a parameter is drawn from uniformly. */
export type Range = readonly [number, number];
/** Optical density per unit concentration for R, G, B. */
export type Rgb = readonly [number, number, number];

/** How one nucleus class looks; every range is sampled per nucleus (see `SYNTHETIC_CLASS_DESIGN`). */
export interface ClassDesign {
  /** equivalent radius in px (area ≈ π r²) */
  readonly radius: Range;
  /** major / minor axis ratio (1 = round; 3 ≈ eccentricity 0.94) */
  readonly aspect: Range;
  /** summed amplitude of boundary harmonics, relative to the radius (0 = smooth ellipse) */
  readonly irregularity: Range;
  /** highest boundary harmonic: 4 gives lobes, 8 gives a jagged, fragmented outline */
  readonly harmonics: number;
  /** hematoxylin concentration, multiplied by the organ's H intensity */
  readonly darkness: Range;
  /** chromatin texture: relative variation of H inside the nucleus */
  readonly texture: Range;
  /** 0 = fine grain (≈ 1.5 px), 1 = coarse clumps (≈ 3.5 px) */
  readonly coarseness: number;
  /** margination: how much paler the centre is than the rim (0 = solid, 0.4 = vesicular) */
  readonly rim: Range;
  /** eosin halo (cytoplasm) around the nucleus, relative to the stroma */
  readonly cytoplasm: number;
  /** probability of being placed touching a nucleus of the same class (sheets, clusters) */
  readonly cluster: number;
  /** probability of being placed on a lumen's rim, pointing at its centre (gland epithelium) */
  readonly lining: number;
  /** spindle nuclei follow the collagen fibres */
  readonly alongFibres: boolean;
  /** an alternative look drawn with probability `share` (dead: pyknotic = small and very dark) */
  readonly variant?: { readonly share: number; readonly radius: Range; readonly darkness: Range };
}

/** How one organ's tiles are stained and structured (see `SYNTHETIC_ORGAN_DESIGN`). */
export interface OrganDesign {
  /** hematoxylin OD vector (R, G, B) per unit concentration */
  readonly hematoxylin: Rgb;
  /** eosin OD vector (R, G, B) per unit concentration */
  readonly eosin: Rgb;
  /** OD present everywhere (glass, mounting medium, a third stain) */
  readonly residual: Rgb;
  /** scales every hematoxylin concentration (stain time / batch) */
  readonly hIntensity: number;
  /** eosin concentration of average stroma */
  readonly stroma: number;
  /** hematoxylin concentration of stroma (cellular stroma such as lamina propria looks purple) */
  readonly stromaH: number;
  /** collagen fibre contrast, 0..1 */
  readonly fibres: number;
  /** fibre period in px */
  readonly fibrePeriod: number;
  /** noise level below which tissue is empty (fat, air): −1 none … 1 all */
  readonly holes: number;
  /** size of the holes' noise cells in px */
  readonly holeScale: number;
  /** lumens (glands, tubules, ducts, vessels) per 256² tile: count range */
  readonly lumens: Range;
  /** lumen semi-minor axis in px */
  readonly lumenRadius: Range;
  /** lumen major / minor axis ratio */
  readonly lumenAspect: Range;
  /** nuclei count factor */
  readonly density: number;
  /** relative class frequencies, indexed like the class list */
  readonly mix: ReadonlyArray<number>;
}

/** One rendered tile before relabelling. */
export interface RawTile {
  readonly image: Uint8Array; // [H, W, 3]
  readonly owner: Int32Array; // [H, W] raw nucleus numbers, 0 = background
  readonly classOfRaw: ReadonlyArray<number>; // class of raw number k at k (index 0 unused)
}

/** murmur3's 32-bit finaliser: a bijective avalanche mix. */
export const hash32 = (x: number): number => {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
};

/** mulberry32: small, fast, good enough for procedural content; state is one uint32. */
export const mulberry32 = (state: number): Rand => () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

export const uniform = (rand: Rand, [lo, hi]: Range): number => lo + (hi - lo) * rand();

/**
 * Smooth value noise in [−1, 1]: random values on a lattice with `cell`-px spacing, interpolated
 * with smoothstep weights (bilinear alone shows the lattice as creases). Valid for 0 ≤ x, y < size.
 */
const valueNoise = (rand: Rand, size: number, cell: number): (x: number, y: number) => number => {
  const gw = Math.ceil(size / cell) + 2;
  const lattice = new Float32Array(gw * gw); // [gw, gw]
  for (let i = 0; i < lattice.length; i++) lattice[i] = rand() * 2 - 1;
  const inv = 1 / cell;
  return (x, y) => {
    const fx = x * inv, fy = y * inv;
    const ix = fx | 0, iy = fy | 0;
    let tx = fx - ix, ty = fy - iy;
    tx = tx * tx * (3 - 2 * tx);
    ty = ty * ty * (3 - 2 * ty);
    const i = iy * gw + ix;
    const a = lattice[i] as number, b = lattice[i + 1] as number;
    const c = lattice[i + gw] as number, d = lattice[i + gw + 1] as number;
    return a + (b - a) * tx + (c - a + (a - b - c + d) * tx) * ty;
  };
};

const smoothstep = (lo: number, hi: number, x: number): number => {
  const t = Math.min(1, Math.max(0, (x - lo) / (hi - lo)));
  return t * t * (3 - 2 * t);
};

// Lookup tables shared by every tile: sin over one period and 255·exp(−OD) over OD ∈ [0, 8).
const SIN_BINS = 1024;
const SIN = Float32Array.from({ length: SIN_BINS }, (_, i) => Math.sin((2 * Math.PI * i) / SIN_BINS));
const OD_STEPS = 256; // per unit OD; the step changes 255·exp(−OD) by < 1 grey level
const EXP = Float32Array.from({ length: 8 * OD_STEPS + 1 }, (_, i) => 255 * Math.exp(-i / OD_STEPS));
const EXP_MAX = 8 * OD_STEPS;

/** Boundary samples per nucleus: r(θ) is tabulated once, then interpolated per pixel. */
const BINS = 64;
/** Visible pixels a nucleus needs inside the tile to be kept. */
export const MIN_PIXELS = 8;

/** One nucleus, with its parameters drawn. */
interface Nucleus {
  readonly cls: number;
  readonly cx: number;
  readonly cy: number;
  readonly radius: number;
  readonly aspect: number;
  readonly angle: number;
  readonly boundary: Float32Array; // [BINS + 1] radius factor per angle bin, last = first (wrap)
  readonly maxFactor: number;
  readonly darkness: number;
  readonly texture: number;
  readonly coarseness: number;
  readonly rim: number;
}

/** Radius factor 1 + Σ_k a_k cos(kθ + φ_k), k = 2..harmonics, with Σ a_k = irregularity. */
const boundaryOf = (rand: Rand, irregularity: number, harmonics: number): Float32Array => {
  const amps: number[] = [], phases: number[] = [];
  let total = 0;
  for (let k = 2; k <= harmonics; k++) {
    const a = (0.3 + rand()) / k; // lower harmonics dominate: lobes, then a rough edge
    amps.push(a);
    phases.push(rand() * 2 * Math.PI);
    total += a;
  }
  const table = new Float32Array(BINS + 1); // [BINS + 1]
  for (let b = 0; b < BINS; b++) {
    const theta = -Math.PI + (2 * Math.PI * b) / BINS;
    let f = 1;
    for (let j = 0; j < amps.length; j++) {
      f += (irregularity * (amps[j] as number) / total) * Math.cos((j + 2) * theta + (phases[j] as number));
    }
    table[b] = Math.max(0.35, f); // never pinch to a point: the outline stays one blob
  }
  table[BINS] = table[0] as number;
  return table;
};

/** Pixel indices and H concentrations of the nucleus being placed, reused across nuclei. */
interface Scratch {
  idx: Int32Array;
  conc: Float32Array;
}

/**
 * Writes the nucleus's in-tile pixels into `s` and returns their count. A pixel (x, y) is inside
 * when its distance in the ellipse's normalised frame is ≤ radius · r(θ).
 */
const rasterise = (
  n: Nucleus,
  size: number,
  fine: (x: number, y: number) => number,
  coarse: (x: number, y: number) => number,
  s: Scratch,
): number => {
  const sq = Math.sqrt(n.aspect);
  const reach = n.radius * sq * n.maxFactor + 1;
  const x0 = Math.max(0, Math.floor(n.cx - reach)), x1 = Math.min(size - 1, Math.ceil(n.cx + reach));
  const y0 = Math.max(0, Math.floor(n.cy - reach)), y1 = Math.min(size - 1, Math.ceil(n.cy + reach));
  if (x1 < x0 || y1 < y0) return 0;
  const area = (x1 - x0 + 1) * (y1 - y0 + 1);
  if (s.idx.length < area) {
    s.idx = new Int32Array(area);
    s.conc = new Float32Array(area);
  }
  const cos = Math.cos(n.angle), sin = Math.sin(n.angle);
  const outer = n.radius * n.maxFactor, outer2 = outer * outer;
  const toBin = BINS / (2 * Math.PI);
  const { boundary, darkness, texture, coarseness, rim } = n;
  let count = 0;
  for (let y = y0; y <= y1; y++) {
    const dy = y - n.cy;
    for (let x = x0; x <= x1; x++) {
      const dx = x - n.cx;
      const u = (dx * cos + dy * sin) / sq, v = (dy * cos - dx * sin) * sq; // unit-circle frame
      const rho2 = u * u + v * v;
      if (rho2 > outer2) continue;
      const t = (Math.atan2(v, u) + Math.PI) * toBin;
      const b = Math.min(BINS - 1, t | 0);
      const f0 = boundary[b] as number;
      const edge = n.radius * (f0 + ((boundary[b + 1] as number) - f0) * (t - b));
      if (rho2 > edge * edge) continue;
      const d2 = rho2 / (edge * edge); // 0 at the centre, 1 on the outline
      const grain = fine(x, y) * (1 - coarseness) + coarse(x, y) * coarseness;
      s.idx[count] = y * size + x;
      s.conc[count] = Math.max(0, darkness * (1 - rim * (1 - d2)) * (1 + texture * grain));
      count++;
    }
  }
  return count;
};

/** Picks an index with probability proportional to `weights`. */
const pick = (rand: Rand, weights: ReadonlyArray<number>): number => {
  let total = 0;
  for (const w of weights) total += w;
  let r = rand() * total;
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i] as number;
    if (r < 0) return i;
  }
  return weights.length - 1;
};

/** In-place 3×3 binomial blur ([1 2 1]/4 per axis, edges clamped) of a [size, size] field. */
const blur3 = (field: Float32Array, tmp: Float32Array, size: number): void => {
  for (let y = 0; y < size; y++) { // rows: field → tmp
    const row = y * size;
    for (let x = 0; x < size; x++) {
      const l = field[row + Math.max(0, x - 1)] as number, r = field[row + Math.min(size - 1, x + 1)] as number;
      tmp[row + x] = 0.25 * l + 0.5 * (field[row + x] as number) + 0.25 * r;
    }
  }
  for (let y = 0; y < size; y++) { // columns: tmp → field
    const up = Math.max(0, y - 1) * size, down = Math.min(size - 1, y + 1) * size, row = y * size;
    for (let x = 0; x < size; x++) {
      field[row + x] = 0.25 * (tmp[up + x] as number) + 0.5 * (tmp[row + x] as number) +
        0.25 * (tmp[down + x] as number);
    }
  }
};

/** A lumen: an empty ellipse lined by cells. */
interface Lumen {
  readonly cx: number;
  readonly cy: number;
  readonly a: number; // semi-major axis, px
  readonly b: number; // semi-minor axis, px
  readonly angle: number;
}

/** The background fields of a tile and the structures nuclei are placed against. */
interface Background {
  readonly tissue: Float32Array; // [H, W] 0 = empty (lumen, fat, air), 1 = tissue
  readonly cE: Float32Array; // [H, W] eosin concentration
  readonly cH: Float32Array; // [H, W] hematoxylin concentration
  readonly lumens: ReadonlyArray<Lumen>;
  readonly fibreAngle: number;
}

/**
 * Stroma: eosin with a smooth density variation, collagen fibres (a sine across the fibre
 * direction whose phase is warped by noise, so fibres wave, merge and fade) and fine grain; empty
 * where two-octave noise is below `organ.holes` (fat, air) and inside lumens (soft edges).
 */
const paintBackground = (rand: Rand, size: number, organ: OrganDesign, hScale: number, eScale: number): Background => {
  const n = size * size;
  const holes = valueNoise(rand, size, organ.holeScale);
  const holes2 = valueNoise(rand, size, organ.holeScale / 2.3);
  const density = valueNoise(rand, size, 24);
  const warp = valueNoise(rand, size, 32);
  const patch = valueNoise(rand, size, 12);
  const grain = valueNoise(rand, size, 2.5);
  const fibreAngle = rand() * Math.PI;
  const fc = Math.cos(fibreAngle) * (SIN_BINS / organ.fibrePeriod);
  const fs = Math.sin(fibreAngle) * (SIN_BINS / organ.fibrePeriod);
  const phase0 = rand() * SIN_BINS;
  const tissue = new Float32Array(n); // [H, W]
  const cE = new Float32Array(n); // [H, W]
  const cH = new Float32Array(n); // [H, W]
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      tissue[i] = smoothstep(organ.holes - 0.05, organ.holes + 0.05, (holes(x, y) + 0.4 * holes2(x, y)) / 1.2);
    }
  }
  // Lumens, cut out of the tissue with an outline wobbled by the warp noise.
  const lumens: Lumen[] = [];
  const area = (size * size) / (256 * 256);
  const lumenCount = Math.round(uniform(rand, organ.lumens) * area);
  for (let k = 0; k < lumenCount; k++) {
    const b = uniform(rand, organ.lumenRadius), a = b * uniform(rand, organ.lumenAspect);
    const l: Lumen = { cx: rand() * size, cy: rand() * size, a, b, angle: rand() * Math.PI };
    lumens.push(l);
    const reach = 1.25 * a;
    const cos = Math.cos(l.angle), sin = Math.sin(l.angle);
    const x0 = Math.max(0, Math.floor(l.cx - reach)), x1 = Math.min(size - 1, Math.ceil(l.cx + reach));
    const y0 = Math.max(0, Math.floor(l.cy - reach)), y1 = Math.min(size - 1, Math.ceil(l.cy + reach));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const dx = x - l.cx, dy = y - l.cy;
        const u = (dx * cos + dy * sin) / a, v = (dy * cos - dx * sin) / b;
        const r = Math.sqrt(u * u + v * v) * (1 + 0.12 * warp(x, y));
        const i = y * size + x;
        tissue[i] = Math.min(tissue[i] as number, smoothstep(0.85, 1.05, r));
      }
    }
  }
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      const t = tissue[i] as number;
      if (t === 0) continue;
      const s = SIN[((x * fc + y * fs + phase0 + warp(x, y) * 1.5 * SIN_BINS) | 0) & (SIN_BINS - 1)] as number;
      const g = grain(x, y);
      // Fibre contrast fades in and out in patches, so the stripes never look printed.
      const fibre = organ.fibres * (0.6 + 0.6 * patch(x, y)) * (s * s - 0.5);
      cE[i] = t * organ.stroma * eScale * Math.max(0.1, 1 + 0.3 * density(x, y) + fibre + 0.1 * g);
      cH[i] = t * organ.stromaH * hScale * (1 + 0.4 * g); // everything takes up a little hematoxylin
    }
  }
  return { tissue, cE, cH, lumens, fibreAngle };
};

/** Renders one tile with about `count` nuclei (fewer when placement fails). */
export const renderTile = (
  rand: Rand,
  size: number,
  count: number,
  organ: OrganDesign,
  classes: ReadonlyArray<ClassDesign>,
): RawTile => {
  const n = size * size;
  // Tile-level stain variation: staining batches differ even within an organ.
  const hScale = organ.hIntensity * uniform(rand, [0.88, 1.12]);
  const eScale = uniform(rand, [0.85, 1.15]);
  const jitter = (v: Rgb): Rgb => [v[0] + uniform(rand, [-0.03, 0.03]), v[1], v[2] + uniform(rand, [-0.03, 0.03])];
  const odH = jitter(organ.hematoxylin), odE = jitter(organ.eosin);
  // Tile-level class mix: PanNuke's class proportions vary a lot between images of one organ.
  const mix = organ.mix.map((w) => w * Math.exp(0.5 * (rand() + rand() + rand() - 1.5)));

  // 1. Background ---------------------------------------------------------------------------
  const { tissue, cE, cH, lumens, fibreAngle } = paintBackground(rand, size, organ, hScale, eScale);

  // 2. Nuclei --------------------------------------------------------------------------------
  const fine = valueNoise(rand, size, 1.5);
  const coarse = valueNoise(rand, size, 3.5);
  const owner = new Int32Array(n); // [H, W] raw nucleus number
  const placed: Nucleus[] = [];
  const visible: number[] = [0], drawn: number[] = [0];
  const hits = new Int32Array(count + 1); // per raw number: pixels the candidate would cover
  const scratch: Scratch = { idx: new Int32Array(4096), conc: new Float32Array(4096) };
  const classOfRaw: number[] = [-1];
  const inTissue = (x: number, y: number) => {
    const tx = Math.min(size - 1, Math.max(0, Math.round(x))), ty = Math.min(size - 1, Math.max(0, Math.round(y)));
    return (tissue[ty * size + tx] as number) > 0.5;
  };
  for (let attempt = 0; attempt < count * 3 && placed.length < count; attempt++) {
    const cls = pick(rand, mix);
    const d = classes[cls] as ClassDesign;
    const isVariant = d.variant !== undefined && rand() < d.variant.share;
    const radius = uniform(rand, isVariant && d.variant ? d.variant.radius : d.radius);
    const aspect = uniform(rand, d.aspect);
    const boundary = boundaryOf(rand, uniform(rand, d.irregularity), d.harmonics);
    let maxFactor = 0;
    for (const f of boundary) maxFactor = Math.max(maxFactor, f);
    // Position: next to a nucleus of the same class (sheets, clusters: touching and overlapping),
    // else anywhere in tissue, including just beyond the border (nuclei cut by the tile edge).
    let cx = 0, cy = 0, radial = Number.NaN;
    const mates = placed.filter((p) => p.cls === cls);
    if (lumens.length > 0 && rand() < d.lining) {
      // On the rim of a lumen, just outside its outline, long axis pointing at its centre.
      const l = lumens[Math.floor(rand() * lumens.length)] as Lumen;
      const phi = rand() * 2 * Math.PI;
      const cos = Math.cos(l.angle), sin = Math.sin(l.angle);
      const out = 1 + (1.15 * radius) / l.b;
      const u = l.a * Math.cos(phi) * out, v = l.b * Math.sin(phi) * out;
      cx = l.cx + u * cos - v * sin;
      cy = l.cy + u * sin + v * cos;
      radial = Math.atan2(cy - l.cy, cx - l.cx);
    } else if (mates.length > 0 && rand() < d.cluster) {
      const m = mates[Math.floor(rand() * mates.length)] as Nucleus;
      const reach = (r: number, a: number) => r * (1 + 0.5 * (Math.sqrt(a) - 1));
      const dist = (reach(m.radius, m.aspect) + reach(radius, aspect)) * uniform(rand, [0.78, 1.08]);
      const dir = rand() * 2 * Math.PI;
      cx = m.cx + dist * Math.cos(dir);
      cy = m.cy + dist * Math.sin(dir);
    } else {
      for (let tries = 0; tries < 6; tries++) {
        cx = uniform(rand, [-radius, size + radius]);
        cy = uniform(rand, [-radius, size + radius]);
        if (inTissue(cx, cy)) break;
      }
    }
    if (!inTissue(cx, cy)) continue; // nuclei never float in a lumen, in fat or in air
    const angle = d.alongFibres
      ? fibreAngle + Math.PI / 2 + uniform(rand, [-0.3, 0.3])
      : Number.isNaN(radial)
      ? rand() * Math.PI
      : radial + uniform(rand, [-0.25, 0.25]);
    const nucleus: Nucleus = {
      cls,
      cx,
      cy,
      radius,
      aspect,
      angle,
      boundary,
      maxFactor,
      darkness: hScale * uniform(rand, isVariant && d.variant ? d.variant.darkness : d.darkness),
      texture: uniform(rand, d.texture),
      coarseness: d.coarseness,
      rim: uniform(rand, d.rim),
    };
    const m = rasterise(nucleus, size, fine, coarse, scratch);
    if (m < MIN_PIXELS) continue;
    // Occlusion limits: count, per earlier nucleus, the pixels this one would take from it.
    let over = 0;
    for (let j = 0; j < m; j++) {
      const o = owner[scratch.idx[j] as number] as number;
      if (o > 0) {
        hits[o] = (hits[o] as number) + 1;
        over++;
      }
    }
    let ok = over <= 0.35 * m;
    for (let j = 0; j < m; j++) {
      const o = owner[scratch.idx[j] as number] as number;
      if (o > 0 && (hits[o] as number) > 0) {
        if ((visible[o] as number) - (hits[o] as number) < 0.6 * (drawn[o] as number)) ok = false;
        hits[o] = 0;
      }
    }
    if (!ok) continue;
    const id = placed.length + 1;
    for (let j = 0; j < m; j++) {
      const p = scratch.idx[j] as number;
      const o = owner[p] as number;
      if (o > 0) visible[o] = (visible[o] as number) - 1;
      owner[p] = id;
      cH[p] = (cH[p] as number) + (scratch.conc[j] as number);
    }
    placed.push(nucleus);
    visible.push(m);
    drawn.push(m);
    classOfRaw.push(cls);
  }
  // Cytoplasm: an eosin halo fading out to 2 radii, in tissue only (drawn after placement; it only tints).
  for (const p of placed) {
    const amount = (classes[p.cls] as ClassDesign).cytoplasm * organ.stroma * eScale;
    if (amount <= 0) continue;
    const reach = 2 * p.radius * Math.sqrt(p.aspect);
    const x0 = Math.max(0, Math.floor(p.cx - reach)), x1 = Math.min(size - 1, Math.ceil(p.cx + reach));
    const y0 = Math.max(0, Math.floor(p.cy - reach)), y1 = Math.min(size - 1, Math.ceil(p.cy + reach));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const r = Math.hypot(x - p.cx, y - p.cy) / reach;
        const i = y * size + x;
        if (r < 1) cE[i] = (cE[i] as number) + amount * (1 - r * r) * (tissue[i] as number);
      }
    }
  }

  // 3. Colour --------------------------------------------------------------------------------
  const tmp = new Float32Array(n);
  blur3(cH, tmp, size);
  blur3(cE, tmp, size);
  const image = new Uint8Array(n * 3); // [H, W, 3]
  const [hr, hg, hb] = odH, [er, eg, eb] = odE, [rr, rg, rb] = organ.residual;
  let noise = (Math.floor(rand() * 4294967295) | 1) >>> 0; // xorshift32 state: never 0
  for (let i = 0; i < n; i++) {
    const h = cH[i] as number, e = cE[i] as number;
    const odR = h * hr + e * er + rr, odG = h * hg + e * eg + rg, odB = h * hb + e * eb + rb;
    // Sensor noise: two xorshift32 steps give three values, each the sum of two uniform bytes
    // (triangular, σ ≈ 3.7 grey levels); cheaper than a Gaussian and looks the same.
    noise ^= noise << 13;
    noise ^= noise >>> 17;
    noise ^= noise << 5;
    const nr = ((noise & 255) + ((noise >>> 8) & 255) - 255) / 28;
    const ng = (((noise >>> 16) & 255) + ((noise >>> 24) & 255) - 255) / 28;
    noise ^= noise << 13;
    noise ^= noise >>> 17;
    noise ^= noise << 5;
    const nb = ((noise & 255) + ((noise >>> 8) & 255) - 255) / 28;
    // Uint8Array truncates and wraps, so clamp to 0..255 first.
    image[3 * i] = Math.max(0, Math.min(255, (EXP[Math.min(EXP_MAX, (odR * OD_STEPS) | 0)] as number) + nr));
    image[3 * i + 1] = Math.max(0, Math.min(255, (EXP[Math.min(EXP_MAX, (odG * OD_STEPS) | 0)] as number) + ng));
    image[3 * i + 2] = Math.max(0, Math.min(255, (EXP[Math.min(EXP_MAX, (odB * OD_STEPS) | 0)] as number) + nb));
  }
  return { image, owner, classOfRaw };
};
