/**
 * Seeded synthetic H&E nuclei tiles: the embedded default dataset (`synthetic[:SEED]`), so that
 * training, attribute extraction and prompts run without downloading PanNuke.
 *
 * Mental model: five PanNuke-like classes that differ in size, eccentricity, boundary irregularity,
 * hematoxylin darkness and chromatin texture (`SYNTHETIC_CLASS_DESIGN`, ranges overlap on purpose),
 * and five organs that differ in stain colour, background and class mix (`SYNTHETIC_ORGAN_DESIGN`),
 * so organ and colour are confounders of class, as in PanNuke. Colours follow Beer–Lambert mixing
 * of hematoxylin and eosin (`_synthetic_render.ts`).
 *
 * - `syntheticSample(seed, index)` → `Sample`: image [S, S, 3] RGB, instances [S, S] with contiguous
 *   ids 1..n (raster order of first appearance), classOf [n + 1] indexing `SYNTHETIC_CLASSES`.
 * - `openSynthetic({ seed, tiles })` → `Dataset` of kind `synthetic`; samples are generated on demand.
 *
 * Gotchas: a tile depends only on (seed, index, options) — its random stream is a hash of seed and
 * index, never a shared generator, so tiles can be generated in any order or in parallel. Nuclei
 * overlap (the later one is on top in the instance map; their hematoxylin adds in the image) and may
 * be cut by the tile border. "dead" is rare (≈ 3 % of nuclei). Changing any table below changes
 * every tile: bump the version of stages that cache synthetic data.
 */
import { type ClassDesign, hash32, mulberry32, type OrganDesign, renderTile, uniform } from "./_synthetic_render.ts";
import { type Dataset, DatasetError, relabelContiguous, type Sample } from "./sample.ts";

/** Class names, in PanNuke's order; class number k is `SYNTHETIC_CLASSES[k]`. */
export const SYNTHETIC_CLASSES = ["neoplastic", "inflammatory", "connective", "dead", "epithelial"] as const;
export type SyntheticClass = (typeof SYNTHETIC_CLASSES)[number];

/** Organ names; one is drawn uniformly per tile unless `organ` is given. */
export const SYNTHETIC_ORGANS = ["breast", "colon", "lung", "kidney", "liver"] as const;
export type SyntheticOrgan = (typeof SYNTHETIC_ORGANS)[number];

/**
 * The look of each class, the design of the whole dataset in one place. Radii in px at PanNuke's
 * scale; darkness is hematoxylin concentration before the organ's intensity (in breast, over stroma,
 * 0.6 ≈ RGB (135, 82, 159), 1.0 ≈ (95, 56, 136), 1.4 ≈ (67, 39, 116)). Every range is sampled
 * uniformly per nucleus.
 *
 * | class        | radius   | aspect   | irregular | darkness  | texture   | rim       | intent, placement         |
 * |--------------|----------|----------|-----------|-----------|-----------|-----------|---------------------------|
 * | neoplastic   | 7.5–12.5 | 1.0–1.7  | 0.12–0.30 | 0.85–1.20 | 0.35–0.65 | 0.10–0.35 | large, lobulated, coarse; |
 * |              |          |          |           |           |           |           | sheets, some glands       |
 * | inflammatory | 3.8–5.8  | 1.0–1.25 | 0.00–0.06 | 1.15–1.50 | 0.04–0.12 | 0.00–0.05 | small, round, very dark,  |
 * |              |          |          |           |           |           |           | smooth; loose clusters    |
 * | connective   | 4.5–7.0  | 2.4–4.5  | 0.02–0.10 | 0.70–1.00 | 0.08–0.20 | 0.00–0.10 | spindle; along fibres     |
 * | dead         | 3.0–5.5  | 1.0–1.6  | 0.25–0.45 | 0.35–0.65 | 0.15–0.35 | 0.00–0.10 | small, jagged, pale (60 %)|
 * |   pyknotic   | 2.5–4.0  |          |           | 1.05–1.35 |           |           | or shrunken, dark (40 %)  |
 * | epithelial   | 5.8–9.0  | 1.1–1.7  | 0.03–0.10 | 0.60–0.90 | 0.12–0.25 | 0.15–0.40 | oval, vesicular; lining   |
 * |              |          |          |           |           |           |           | lumens, sheets            |
 *
 * Ranges overlap between neighbours (neoplastic/epithelial in size and aspect, inflammatory/dead/
 * pyknotic in size and darkness, connective/epithelial in darkness) so no single attribute
 * separates the classes; organ stain intensity (±10 % per tile on top) blurs darkness further.
 */
export const SYNTHETIC_CLASS_DESIGN: Readonly<Record<SyntheticClass, ClassDesign>> = {
  neoplastic: {
    radius: [7.5, 12.5],
    aspect: [1.0, 1.7],
    irregularity: [0.12, 0.3],
    harmonics: 5,
    darkness: [0.85, 1.2],
    texture: [0.35, 0.65],
    coarseness: 0.85,
    rim: [0.1, 0.35],
    cytoplasm: 0.35,
    cluster: 0.75,
    lining: 0.3,
    alongFibres: false,
  },
  inflammatory: {
    radius: [3.8, 5.8],
    aspect: [1.0, 1.25],
    irregularity: [0, 0.06],
    harmonics: 3,
    darkness: [1.15, 1.5],
    texture: [0.04, 0.12],
    coarseness: 0.1,
    rim: [0, 0.05],
    cytoplasm: 0,
    cluster: 0.5,
    lining: 0,
    alongFibres: false,
  },
  connective: {
    radius: [4.5, 7.0],
    aspect: [2.4, 4.5],
    irregularity: [0.02, 0.1],
    harmonics: 3,
    darkness: [0.7, 1.0],
    texture: [0.08, 0.2],
    coarseness: 0.3,
    rim: [0, 0.1],
    cytoplasm: 0,
    cluster: 0.3,
    lining: 0,
    alongFibres: true,
  },
  dead: {
    radius: [3.0, 5.5],
    aspect: [1.0, 1.6],
    irregularity: [0.25, 0.45],
    harmonics: 8,
    darkness: [0.35, 0.65],
    texture: [0.15, 0.35],
    coarseness: 0.6,
    rim: [0, 0.1],
    cytoplasm: 0.6, // apoptotic bodies sit in hypereosinophilic cytoplasm
    cluster: 0.1,
    lining: 0,
    alongFibres: false,
    variant: { share: 0.4, radius: [2.5, 4.0], darkness: [1.05, 1.35] },
  },
  epithelial: {
    radius: [5.8, 9.0],
    aspect: [1.1, 1.7],
    irregularity: [0.03, 0.1],
    harmonics: 4,
    darkness: [0.6, 0.9],
    texture: [0.12, 0.25],
    coarseness: 0.4,
    rim: [0.15, 0.4],
    cytoplasm: 0.45,
    cluster: 0.8,
    lining: 0.6,
    alongFibres: false,
  },
};

/**
 * The look of each organ. The H vector starts from Ruifrok & Johnston's (0.65, 0.70, 0.29); the E
 * vector from (0.15, 0.95, 0.38), which absorbs more blue than Ruifrok's (0.07, 0.99, 0.11) and so
 * gives pink rather than magenta stroma, as in stain vectors estimated from real slides (Macenko).
 * Both are shifted per organ (bluer colon, redder kidney, browner liver), as stain batches differ
 * between PanNuke's source hospitals. `mix` is in class order; "dead" gets 1.8–3.4 %, which comes
 * out at ≈ 3 % of placed nuclei (small nuclei pass the occlusion limits more often than large).
 *
 * | organ  | H look        | E look       | background                          | dominant classes          |
 * |--------|---------------|--------------|-------------------------------------|---------------------------|
 * | breast | standard      | standard     | dense wavy collagen, fat holes      | neoplastic, connective    |
 * | colon  | blue, strong  | pale         | cellular lamina propria, glands     | epithelial, inflammatory  |
 * | lung   | red-purple    | pale pink    | thin septa, large air spaces        | inflammatory, connective  |
 * | kidney | standard      | bright red   | dense tubules, small lumens         | epithelial                |
 * | liver  | dark purple   | brown-pink   | solid plates, narrow sinusoids      | epithelial, neoplastic    |
 */
export const SYNTHETIC_ORGAN_DESIGN: Readonly<Record<SyntheticOrgan, OrganDesign>> = {
  breast: {
    hematoxylin: [0.65, 0.7, 0.29],
    eosin: [0.15, 0.95, 0.38],
    residual: [0.03, 0.04, 0.03],
    hIntensity: 1.35,
    stroma: 0.55,
    stromaH: 0.04,
    fibres: 0.45,
    fibrePeriod: 9,
    holes: -0.35,
    holeScale: 64,
    lumens: [0, 2],
    lumenRadius: [10, 22],
    lumenAspect: [1.0, 1.8],
    density: 1.0,
    mix: [0.42, 0.14, 0.3, 0.018, 0.122],
  },
  colon: {
    hematoxylin: [0.72, 0.74, 0.22],
    eosin: [0.18, 0.88, 0.42],
    residual: [0.04, 0.04, 0.02],
    hIntensity: 1.5,
    stroma: 0.42,
    stromaH: 0.1,
    fibres: 0.2,
    fibrePeriod: 6,
    holes: -0.65,
    holeScale: 40,
    lumens: [3, 6],
    lumenRadius: [9, 20],
    lumenAspect: [1.0, 1.8],
    density: 1.3,
    mix: [0.17, 0.32, 0.12, 0.026, 0.364],
  },
  lung: {
    hematoxylin: [0.6, 0.72, 0.36],
    eosin: [0.12, 0.92, 0.45],
    residual: [0.02, 0.03, 0.03],
    hIntensity: 1.2,
    stroma: 0.4,
    stromaH: 0.04,
    fibres: 0.35,
    fibrePeriod: 7,
    holes: 0.05,
    holeScale: 30,
    lumens: [0, 1],
    lumenRadius: [6, 14],
    lumenAspect: [1.0, 2.0],
    density: 0.75,
    mix: [0.22, 0.33, 0.25, 0.034, 0.166],
  },
  kidney: {
    hematoxylin: [0.64, 0.7, 0.3],
    eosin: [0.08, 1.0, 0.5],
    residual: [0.03, 0.04, 0.04],
    hIntensity: 1.3,
    stroma: 0.72,
    stromaH: 0.05,
    fibres: 0.12,
    fibrePeriod: 6,
    holes: -0.9,
    holeScale: 18,
    lumens: [8, 14],
    lumenRadius: [4, 10],
    lumenAspect: [1.0, 1.8],
    density: 1.1,
    mix: [0.12, 0.13, 0.13, 0.018, 0.602],
  },
  liver: {
    hematoxylin: [0.7, 0.76, 0.34],
    eosin: [0.25, 0.85, 0.55],
    residual: [0.05, 0.06, 0.06],
    hIntensity: 1.4,
    stroma: 0.65,
    stromaH: 0.06,
    fibres: 0.06,
    fibrePeriod: 5,
    holes: -0.9,
    holeScale: 14,
    lumens: [10, 16],
    lumenRadius: [1.5, 3.5],
    lumenAspect: [3, 6],
    density: 0.9,
    mix: [0.25, 0.17, 0.08, 0.018, 0.482],
  },
};

/** Generator settings; `SYNTHETIC_DEFAULTS` holds the defaults. */
export interface SyntheticConfig {
  /** tile side in px (tiles are square) */
  readonly size: number;
  /** nuclei attempted per 256² of tile, [min, max], before the organ's density factor */
  readonly nuclei: readonly [number, number];
  /** the dataset seed */
  readonly seed: number;
}

export const SYNTHETIC_DEFAULTS: SyntheticConfig = { size: 256, nuclei: [24, 90], seed: 0 };

/** Per-call options of `syntheticSample`; omitted fields take `SYNTHETIC_DEFAULTS`. */
export interface SyntheticOptions {
  readonly size?: number;
  readonly nuclei?: readonly [number, number];
  /** force the organ (previews, per-organ tests); by default drawn from (seed, index) */
  readonly organ?: SyntheticOrgan;
}

const CLASS_DESIGNS = SYNTHETIC_CLASSES.map((c) => SYNTHETIC_CLASS_DESIGN[c]);

/** The tile's random stream: a hash of (seed, index), so tiles are independent of each other. */
const tileRand = (seed: number, index: number) => {
  const lo = seed >>> 0, hi = Math.floor(seed / 4294967296) >>> 0; // any safe integer, negatives too
  return mulberry32(hash32(hash32(hash32(lo + 0x9e3779b9) ^ hi) ^ Math.imul(index >>> 0, 0x27d4eb2f)));
};

/** Tile `index` of the synthetic dataset with seed `seed`; same arguments → identical bytes. */
export const syntheticSample = (seed: number, index: number, options: SyntheticOptions = {}): Sample => {
  const size = options.size ?? SYNTHETIC_DEFAULTS.size;
  const [lo, hi] = options.nuclei ?? SYNTHETIC_DEFAULTS.nuclei;
  const rand = tileRand(seed, index);
  const drawn = SYNTHETIC_ORGANS[Math.floor(rand() * SYNTHETIC_ORGANS.length)] as SyntheticOrgan;
  const organ = options.organ ?? drawn; // drawn anyway, so forcing the organ keeps the rest of the stream
  const design = SYNTHETIC_ORGAN_DESIGN[organ];
  const count = Math.round(uniform(rand, [lo, hi]) * design.density * (size * size) / (256 * 256));
  const raw = renderTile(rand, size, count, design, CLASS_DESIGNS);
  // Fully covered or out-of-tile nuclei leave no pixels: relabel so ids are contiguous 1..n.
  const { instances, oldIds } = relabelContiguous(raw.owner);
  const classOf = new Int32Array(oldIds.length + 1); // [n + 1]
  classOf[0] = -1;
  oldIds.forEach((old, k) => classOf[k + 1] = raw.classOfRaw[old] as number);
  return { id: `${seed}/${index}`, organ, height: size, width: size, image: raw.image, instances, classOf };
};

/** The synthetic dataset: `tiles` samples generated on demand from `seed`. */
export const openSynthetic = (options: { seed: number; tiles: number; size?: number }): Dataset => {
  const { seed, tiles } = options;
  const size = options.size ?? SYNTHETIC_DEFAULTS.size;
  const file = `synthetic:${seed}`;
  if (!Number.isSafeInteger(seed)) throw new DatasetError({ file, reason: `seed must be an integer, found ${seed}` });
  if (!Number.isSafeInteger(tiles) || tiles < 0) {
    throw new DatasetError({ file, reason: `tiles must be a non-negative integer, found ${tiles}` });
  }
  if (!Number.isSafeInteger(size) || size < 16) {
    throw new DatasetError({ file, reason: `size must be an integer ≥ 16, found ${size}` });
  }
  return {
    kind: "synthetic",
    classes: SYNTHETIC_CLASSES,
    size: tiles,
    sample: (i) =>
      Number.isSafeInteger(i) && i >= 0 && i < tiles
        ? Promise.resolve(syntheticSample(seed, i, { size }))
        : Promise.reject(new DatasetError({ file, reason: `sample ${i} out of range 0..${tiles - 1}` })),
    close: () => {},
  };
};
