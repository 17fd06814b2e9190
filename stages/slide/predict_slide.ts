/**
 * A whole slide predicted at the model's resolution, tissue only, in bounded memory, its nuclei written as they
 * become final: `predictSlide(source, model, options)` → `OUT/NAME.geojson` (QuPath), `OUT/NAME.csv` (one row per
 * nucleus), `OUT/NAME.tissue.png` (the tissue found) and `OUT/NAME.overlay.png` (the nuclei on a thumbnail).
 *
 * Steps:
 * 1. Resolution (`slideResolution`): the slide's µm/px — `--mpp`/`--magnification` when given, else the file's own
 *    (`source.mpp`), else its objective power, else the model's — gives `factor` = level-0 pixels per model pixel
 *    (model µm/px ÷ slide µm/px; 1 for a 40× slide and a 40× model).
 * 2. Pixels at the model's resolution (`readPlan`, `resampledSource`): the pyramid level with the largest
 *    downsample ≤ factor is read (never a coarser one, which would have to be upsampled and lose detail), and each
 *    region is resized from it by the rest of the factor with Lanczos (sharp, as `scaleImage` does for images).
 *    Wrapped as an ImageSource whose level 0 is the model's resolution, the slide goes through `predictStreaming`
 *    unchanged, and every coordinate it hands out is multiplied by the factor to land in level-0 pixels. Within 2 %
 *    of a level's own resolution that level is read as is: no resampling, and at factor 1 the pixels, tiles and
 *    nuclei are exactly those of the whole-image path on the same pixels (tests/predict_slide_cli_test.ts).
 * 3. Tissue (`slideThumbnail`, tissue.ts): a thumbnail of at most `thumbnailPixels` (4 Mpx), from the finest
 *    level that small or block-averaged from the smallest; `tissueMask` on it; the tiles whose owned region holds
 *    any tissue are predicted, every other one is never read (`allTiles` predicts them all).
 * 4. Outputs, band by band from `onBand`: each nucleus as a `Nucleus` (nuclei.ts: centroid, box, contour, area in
 *    level-0 pixels), with its 11 mask features (mask_features.ts) measured at the model's resolution as the image
 *    path measures them (`bandFeatures`: the band's nuclei re-read in chunks of ≤ 4096 columns), to the GeoJSON
 *    through `detectionsOf` (the image path's own detections) and to the CSV; its outline (or a dot) marked on
 *    the thumbnail in its class colour.
 *
 * Gotchas:
 * - Files are written here, not in a task, because a slide's nuclei are only ever held one band at a time; the
 *   GeoJSON and CSV are atomic (writers.ts: `.partial` until closed), the PNGs written whole then renamed.
 * - Areas are level-0 pixels: a model-resolution count × factor², not an integer when resampled.
 * - Resampled regions are aligned to within half a model pixel (each read is resized, then cut at the rounded
 *   offset); tiles overlap, so this cannot cut a nucleus, only shift it by at most that much.
 * - Attribute words need the training data's fitted bins (`words`, from `--data`); without them the description is
 *   the class alone ("an epithelial nucleus"). With them, each nucleus is described from the features measured at
 *   the model's resolution, as the image path describes its nuclei (nuclei.ts `attributeReader`).
 * - Features are read from a second read of each band's nuclei (the first one's RGB is gone by then): about twice
 *   the reading, bounded memory (a chunk is ≤ 2T + 4 rows × 4096 + a nucleus columns).
 */
import sharp from "sharp";
import { FEATURE_NAMES, maskFeatures } from "../attributes/mask_features.ts";
import type { DecodeOptions } from "../model/decoding.ts";
import { attributeReader, classColour, describe, type Nucleus } from "../predict/nuclei.ts";
import type { AttributeWords } from "../attributes/stages.ts";
import { detectionsOf } from "../predict/nuclei.ts";
import type { LoadedModel } from "../predict/model_tiles.ts";
import { modelTilePredictor, type StepTimer, untimed } from "../predict/model_tiles.ts";
import { mppOfMagnification } from "../predict/scale.ts";
import { type TilePlacement, tilePlacements } from "../predict/tiling.ts";
import type { TtaOptions } from "../predict/tta.ts";
import type { ImageSource, SlideLevel } from "./source.ts";
import { instanceCrop, predictStreaming, streamedContour, type StreamedNucleus } from "./stream.ts";
import { tissueMask, tissueOverlayPng, tissueTiles } from "./tissue.ts";
import { type CsvColumn, csvStream, geoJsonStream, NUCLEUS_COLUMNS } from "./writers.ts";
import { type CacheCounts, cachedTilePredictor, runKey, type TileCache } from "./tile_cache.ts";
import * as tf from "@tensorflow/tfjs";

/** Within this relative difference two resolutions are the same: no resampling. */
export const SAME_RESOLUTION = 0.02;

/** The thumbnail that tissue is detected on has at most this many pixels (4 Mpx, ≈ 12 MiB of RGB). */
export const THUMBNAIL_PIXELS = 2 ** 22;

/**
 * The CSV's columns: NUCLEUS_COLUMNS, with its second "area" — the mask feature, in model pixels — renamed
 * `model_area`, so that the header names each column once (the first "area" is the nucleus's, in level-0 pixels).
 */
export const SLIDE_COLUMNS: ReadonlyArray<CsvColumn<Nucleus>> = NUCLEUS_COLUMNS.map((c, i) =>
  NUCLEUS_COLUMNS.findIndex((d) => d.name === c.name) === i ? c : { ...c, name: `model_${c.name}` }
);

/** Columns of a band measured at once by `bandFeatures`: its nuclei starting within this many columns. */
export const FEATURE_CHUNK = 4096;

/**
 * The 11 mask features (mask_features.ts) of a band's nuclei, at the model's resolution, keyed by id: the nuclei
 * are painted into crops of their union box padded by 2 pixels (the Sobel gradient's neighbourhood), one per run
 * of nuclei starting within `FEATURE_CHUNK` columns, and the crop's RGB is read again from `source` (the model's
 * resolution). What `maskFeatures` gives on the whole image, since a nucleus's features depend only on its own
 * pixels and the RGB around them (other instances are non-object either way) — except along the image's edges,
 * where the crop reads white beyond the slide.
 */
export const bandFeatures = async (
  source: ImageSource,
  nuclei: ReadonlyArray<StreamedNucleus>,
): Promise<Map<number, Record<string, number | null>>> => {
  const out = new Map<number, Record<string, number | null>>(), pad = 2;
  const sorted = [...nuclei].sort((a, b) => a.bbox[0] - b.bbox[0]);
  for (let start = 0; start < sorted.length;) {
    let end = start;
    const x = (sorted[start] as StreamedNucleus).bbox[0];
    while (end < sorted.length && (sorted[end] as StreamedNucleus).bbox[0] < x + FEATURE_CHUNK) end++;
    const chunk = sorted.slice(start, end);
    start = end;
    const crop = instanceCrop(chunk);
    const h = crop.height + 2 * pad, w = crop.width + 2 * pad;
    const instances = new Int32Array(h * w); // [h, w], the crop's ids shifted by the padding
    for (let y = 0; y < crop.height; y++) {
      instances.set(crop.instances.subarray(y * crop.width, (y + 1) * crop.width), (y + pad) * w + pad);
    }
    const rgb = await source.readRegion(crop.x0 - pad, crop.y0 - pad, 0, w, h); // [h, w, 3]
    for (const r of maskFeatures(rgb, instances, h, w)) {
      out.set(
        crop.ids[r.id] as number,
        Object.fromEntries(FEATURE_NAMES.map((f) => [f, Number.isFinite(r[f]) ? r[f] : null])),
      );
    }
  }
  return out;
};

/** Where a slide's µm/px came from. */
export type MppFrom = "flag" | "slide" | "objective" | "model";

/** The resolution a slide is predicted at. */
export interface SlideResolution {
  /** µm per level-0 pixel */
  readonly mpp: number;
  readonly from: MppFrom;
  /** level-0 pixels per model pixel: model µm/px ÷ slide µm/px */
  readonly factor: number;
}

/**
 * The slide's µm/px (`mpp` when given — `--mpp` or `--magnification` —, else the file's, else its objective power's
 * by 40× ≈ 0.25 µm/px, else the model's own) and the factor from model pixels to level-0 pixels.
 *
 * @example
 * ```ts
 * import { slideResolution } from "./predict_slide.ts";
 * const at20x = { mpp: { x: 0.5, y: 0.5 }, levels: [] };
 * console.assert(slideResolution(at20x, 0.25).factor === 0.5); // one model pixel is half a slide pixel
 * ```
 */
export const slideResolution = (
  source: Pick<ImageSource, "mpp" | "objectivePower">,
  modelMpp: number,
  mpp?: number,
): SlideResolution => {
  const [value, from]: [number, MppFrom] = mpp !== undefined
    ? [mpp, "flag"]
    : source.mpp !== undefined
    ? [(source.mpp.x + source.mpp.y) / 2, "slide"]
    : source.objectivePower !== undefined && source.objectivePower > 0
    ? [mppOfMagnification(source.objectivePower), "objective"]
    : [modelMpp, "model"];
  return { mpp: value, from, factor: modelMpp / value };
};

/** Which level a slide is read at and how much its regions are resized. */
export interface ReadPlan {
  readonly level: number;
  /** level-0 pixels per model pixel (the resolution's factor, or the level's own downsample when within 2 %) */
  readonly factor: number;
  /** level pixels per model pixel: factor ÷ the level's downsample; exactly 1 when not resampled */
  readonly resize: number;
}

/**
 * The level with the largest downsample ≤ `factor` (2 % tolerance), so that regions are only ever shrunk or read as
 * they are; a level within 2 % of the factor is read as is. A factor below 1 (a slide coarser than the model)
 * reads level 0 upsampled: there is nothing finer.
 *
 * @example
 * ```ts
 * import { readPlan } from "./predict_slide.ts";
 * const levels = [{ width: 8, height: 8, downsample: 1 }, { width: 4, height: 4, downsample: 2 }];
 * console.assert(readPlan(levels, 2.01).level === 1 && readPlan(levels, 2.01).resize === 1);
 * console.assert(readPlan(levels, 3).level === 1 && readPlan(levels, 3).resize === 1.5);
 * ```
 */
export const readPlan = (levels: ReadonlyArray<SlideLevel>, factor: number): ReadPlan => {
  if (!(factor > 0)) throw new RangeError(`readPlan: factor must be positive, got ${factor}`);
  let level = 0;
  levels.forEach((l, i) => {
    if (l.downsample <= factor * (1 + SAME_RESOLUTION) && l.downsample > (levels[level] as SlideLevel).downsample) {
      level = i;
    }
  });
  const downsample = (levels[level] as SlideLevel | undefined)?.downsample ?? 1;
  const same = Math.abs(factor / downsample - 1) <= SAME_RESOLUTION;
  return same ? { level, factor: downsample, resize: 1 } : { level, factor, resize: factor / downsample };
};

/**
 * `source` seen at the model's resolution: one level of level-0 size ÷ factor (rounded) pixels whose regions
 * are read from `plan.level` and resized by `plan.resize` (Lanczos 3); with resize 1 the level's pixels as they are.
 * Only level 0 can be read.
 */
export const resampledSource = (source: ImageSource, plan: ReadPlan): ImageSource => {
  const level0 = source.levels[0] as SlideLevel, level = source.levels[plan.level] as SlideLevel;
  const { factor, resize } = plan, downsample = level.downsample;
  // a level read as is keeps its own size; a resampled one is level 0's ÷ factor, rounded
  const width = resize === 1 ? level.width : Math.max(1, Math.round(level0.width / factor));
  const height = resize === 1 ? level.height : Math.max(1, Math.round(level0.height / factor));
  const readRegion = async (x: number, y: number, at: number, w: number, h: number): Promise<Uint8Array> => {
    if (at !== 0) throw new RangeError(`readRegion(${source.path} at the model's resolution): only level 0, got ${at}`);
    if (resize === 1) {
      return source.readRegion(Math.round(x * downsample), Math.round(y * downsample), plan.level, w, h);
    }
    // the level's pixels under [x, x + w) × [y, y + h), with a margin of ≥ 2 model pixels for the kernel and rounding
    const margin = Math.ceil(2 * resize) + 2;
    const px0 = Math.floor(x * resize) - margin, py0 = Math.floor(y * resize) - margin;
    const pw = Math.ceil((x + w) * resize) + margin - px0, ph = Math.ceil((y + h) * resize) + margin - py0;
    const rgb = await source.readRegion(Math.round(px0 * downsample), Math.round(py0 * downsample), plan.level, pw, ph);
    const rw = Math.max(1, Math.round(pw / resize)), rh = Math.max(1, Math.round(ph / resize));
    const left = Math.round((x * resize - px0) / resize), top = Math.round((y * resize - py0) / resize);
    const data = await sharp(rgb, { raw: { width: pw, height: ph, channels: 3 } })
      .resize(rw, rh, { fit: "fill", kernel: "lanczos3" })
      .extract({ left, top, width: Math.min(w, rw - left), height: Math.min(h, rh - top) })
      .extend({ right: Math.max(0, w - (rw - left)), bottom: Math.max(0, h - (rh - top)), background: "white" })
      .raw()
      .toBuffer();
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  };
  return {
    ...source,
    levels: [{ width, height, downsample: 1 }],
    ...(source.mpp === undefined ? {} : { mpp: { x: source.mpp.x * factor, y: source.mpp.y * factor } }),
    readRegion,
    readAssociated: (name) => source.readAssociated(name),
    close: () => source.close(),
  };
};

/** A low-resolution RGB picture of the whole slide. */
export interface Thumbnail {
  readonly width: number;
  readonly height: number;
  /** [height, width, 3] */
  readonly rgb: Uint8Array;
  /** level-0 pixels per thumbnail pixel, per axis */
  readonly scaleX: number;
  readonly scaleY: number;
}

/**
 * The finest level of at most `maxPixels` pixels, read whole; when every level is larger (a flat image, a pyramid
 * without small levels), the smallest level averaged over k × k blocks (k the least that fits), read in strips so
 * that memory stays a few times the thumbnail's.
 */
export const slideThumbnail = async (source: ImageSource, maxPixels = THUMBNAIL_PIXELS): Promise<Thumbnail> => {
  const level0 = source.levels[0] as SlideLevel;
  let index = source.levels.findIndex((l) => l.width * l.height <= maxPixels);
  if (index < 0) index = source.levels.length - 1;
  const level = source.levels[index] as SlideLevel, d = level.downsample;
  const k = Math.max(1, Math.ceil(Math.sqrt((level.width * level.height) / maxPixels)));
  const width = Math.ceil(level.width / k), height = Math.ceil(level.height / k);
  const rgb = new Uint8Array(width * height * 3); // [height, width, 3]
  const stripRows = Math.max(1, Math.floor(2 ** 24 / (level.width * k))); // thumbnail rows per read
  for (let t0 = 0; t0 < height; t0 += stripRows) {
    const rows = Math.min(stripRows, height - t0);
    const strip = await source.readRegion(0, Math.round(t0 * k * d), index, level.width, rows * k); // [rows·k, W, 3]
    if (k === 1) {
      rgb.set(strip, t0 * width * 3);
      continue;
    }
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < width; c++) {
        let s0 = 0, s1 = 0, s2 = 0, n = 0;
        for (let dy = 0; dy < k; dy++) {
          for (let dx = 0; dx < k && c * k + dx < level.width; dx++) {
            const i = ((r * k + dy) * level.width + c * k + dx) * 3;
            s0 += strip[i] as number, s1 += strip[i + 1] as number, s2 += strip[i + 2] as number, n++;
          }
        }
        rgb.set([Math.round(s0 / n), Math.round(s1 / n), Math.round(s2 / n)], ((t0 + r) * width + c) * 3);
      }
    }
  }
  return { width, height, rgb, scaleX: level0.width / width, scaleY: level0.height / height };
};

/**
 * A streamed nucleus (model-resolution pixels) as a `Nucleus` in level-0 pixels: centroid (mean of its pixel
 * centres, 2 decimals as nuclei.ts rounds), box, contour (`streamedContour`) and area, all × `factor` (area × factor²);
 * `features` as measured at the model's resolution (`bandFeatures`).
 */
export const slideNucleus = (
  n: StreamedNucleus,
  classes: ReadonlyArray<string>,
  factor: number,
  features: Readonly<Record<string, number | null>> = {},
  read: ReturnType<typeof attributeReader> = attributeReader(undefined),
): Nucleus => {
  const [x0, y0, x1, y1] = n.bbox, w = x1 - x0;
  let sx = 0, sy = 0;
  for (let i = 0; i < n.mask.length; i++) {
    if (n.mask[i] !== 1) continue;
    sx += x0 + (i % w) + 0.5, sy += y0 + Math.floor(i / w) + 0.5;
  }
  const className = n.classId >= 0 ? classes[n.classId] ?? null : null;
  const round2 = (v: number) => Math.round(v * 100) / 100;
  const { attributes } = read(features);
  return {
    id: n.id,
    class: className ?? "unknown",
    score: Math.round(n.score * 1e4) / 1e4,
    centroid: [round2((sx / n.area) * factor), round2((sy / n.area) * factor)],
    bbox: factor === 1
      ? [x0, y0, x1, y1]
      : [Math.floor(x0 * factor), Math.floor(y0 * factor), Math.ceil(x1 * factor), Math.ceil(y1 * factor)],
    contour: factor === 1 ? streamedContour(n) : streamedContour(n).map(([x, y]) => [x * factor, y * factor]),
    area: factor === 1 ? n.area : round2(n.area * factor * factor),
    attributes,
    features,
    description: describe(Object.values(attributes), className),
  };
};

/** Options of `predictSlide`. */
export interface SlideOptions {
  /** output folder (must exist) and the slide's name in it: OUT/NAME.geojson, .csv, .tissue.png, .overlay.png */
  readonly out: string;
  readonly name: string;
  /** µm/px of the model's training data */
  readonly modelMpp: number;
  /** µm/px of the slide's level 0, overriding the file's (`--mpp`, `--magnification`) */
  readonly mpp?: number;
  /** pixels shared by neighbouring tiles, at the model's resolution */
  readonly overlap: number;
  readonly batch: number;
  readonly decode?: DecodeOptions;
  readonly tta?: TtaOptions;
  /** a fixed saturation threshold of the tissue (`--tissue-threshold`); default Otsu's */
  readonly tissueThreshold?: number;
  /** predict every tile, tissue or not (the tissue PNG is still written) */
  readonly allTiles?: boolean;
  readonly thumbnailPixels?: number;
  /** after each batch: tiles done, tiles to predict */
  readonly onProgress?: (done: number, total: number) => void;
  /** a timing hook (bench/slide_bench.ts): sees "tissue", "forward", "decode", "features", "contours", "write" */
  readonly time?: StepTimer;
  /**
   * resumable runs (tile_cache.ts): the tile predictions are kept in `open(run key)`, the run key made of the slide's
   * and the checkpoint's content digests and everything else the predictions depend on
   */
  readonly cache?: { readonly open: (run: string) => TileCache; readonly slide: string; readonly model: string };
  /** the training data's fitted attribute bins (`--data`): each nucleus described in words, as the image path does */
  readonly words?: AttributeWords;
}

/** What `predictSlide` did. */
export interface SlideSummary {
  /** level-0 size */
  readonly width: number;
  readonly height: number;
  readonly mpp: number;
  readonly mppFrom: MppFrom;
  readonly level: number;
  readonly factor: number;
  readonly resampled: boolean;
  /** the size predicted, at the model's resolution */
  readonly modelWidth: number;
  readonly modelHeight: number;
  /** tiles of the whole tiling, and those predicted (with tissue) */
  readonly tiles: number;
  readonly predicted: number;
  readonly tissueFraction: number;
  readonly tissueThreshold: number;
  readonly thumbnail: { readonly width: number; readonly height: number };
  readonly nuclei: number;
  /** nuclei per class name */
  readonly counts: Readonly<Record<string, number>>;
  /** written, relative to `out` */
  readonly files: ReadonlyArray<string>;
  /** with `cache`: tiles whose predictions came from the cache (a resumed or repeated run) */
  readonly cachedTiles?: number;
}

/**
 * The key of a slide's run (tile_cache.ts `runKey`): every input of its tile predictions but the tiles' positions —
 * the slide's and checkpoint's content digests (`digests`), the backend (started: `tf.getBackend()`), the read plan,
 * the tiling, the decoding. `predictSlide` keys its batches with it; `deno task predict --queue` names a slide's job
 * after it without predicting (tasks/_predict_slides.ts).
 */
export const slideRunKey = (
  source: Pick<ImageSource, "mpp" | "objectivePower" | "levels">,
  tile: number,
  options: Pick<SlideOptions, "modelMpp" | "mpp" | "overlap" | "batch" | "decode" | "tta">,
  digests: { readonly slide: string; readonly model: string },
): string => {
  const plan = readPlan(source.levels, slideResolution(source, options.modelMpp, options.mpp).factor);
  return runKey({
    slide: digests.slide,
    model: digests.model,
    backend: tf.getBackend(),
    plan: { level: plan.level, factor: plan.factor, resize: plan.resize },
    tile,
    overlap: options.overlap,
    batch: options.batch,
    decode: JSON.parse(JSON.stringify(options.decode ?? null)),
    // votes as a number (the key's form before averaging existed), averaging as "average"
    tta: options.tta === undefined ? null : "votes" in options.tta ? options.tta.votes : "average",
  });
};

/** Writes `bytes` to `path` through `path.partial` and a rename, so no half-written file has the final name. */
const writeWhole = async (path: string, bytes: Uint8Array) => {
  await Deno.writeFile(`${path}.partial`, bytes);
  await Deno.rename(`${path}.partial`, path);
};

/**
 * Predicts the tissue of a slide with `model` and writes its outputs as they come (see the module comment).
 *
 * @example
 * ```ts ignore
 * const source = await openImageSource("case.svs");
 * const summary = await predictSlide(source, await loadModel("run/checkpoint.safetensors"), {
 *   out: "predictions", name: "case", modelMpp: 0.25, overlap: 64, batch: 4,
 * }); // predictions/case.geojson, case.csv, case.tissue.png, case.overlay.png
 * ```
 */
export const predictSlide = async (
  source: ImageSource,
  model: LoadedModel,
  options: SlideOptions,
): Promise<SlideSummary> => {
  const level0 = source.levels[0];
  if (level0 === undefined) throw new RangeError(`predictSlide: ${source.path} has no level 0`);
  const { out, name, overlap, batch } = options, tile = model.tile, time = options.time ?? untimed;
  const resolution = slideResolution(source, options.modelMpp, options.mpp);
  const plan = readPlan(source.levels, resolution.factor);
  const virtual = resampledSource(source, plan);
  const { width: mw, height: mh } = virtual.levels[0] as SlideLevel;

  // tissue, on a thumbnail; the tiles of the model-resolution tiling that hold any
  const thumb = await slideThumbnail(source, options.thumbnailPixels);
  const tissue = await time("tissue", () =>
    Promise.resolve(tissueMask(
      thumb.rgb,
      thumb.height,
      thumb.width,
      options.tissueThreshold === undefined ? {} : { threshold: options.tissueThreshold },
    )));
  const all = tilePlacements(mh, mw, tile, overlap).length;
  const key = (p: Pick<TilePlacement, "y0" | "x0">) => `${p.y0},${p.x0}`;
  const keep = new Set(tissueTiles(tissue.mask, thumb.height, thumb.width, mh, mw, { tile, overlap }, 0).map(key));
  const files = [`${name}.tissue.png`, `${name}.geojson`, `${name}.csv`, `${name}.overlay.png`];
  await time(
    "write",
    async () =>
      writeWhole(`${out}/${files[0]}`, await tissueOverlayPng(thumb.rgb, thumb.height, thumb.width, tissue.mask)),
  );

  // nuclei, band by band, into the streams and onto the overlay
  const geojson = await geoJsonStream(`${out}/${files[1]}`);
  const csv = await csvStream(`${out}/${files[2]}`, SLIDE_COLUMNS).catch(async (e) => {
    await geojson.abort().catch(() => {});
    throw e;
  });
  const overlay = Uint8Array.from(thumb.rgb); // [thumb.height, thumb.width, 3]
  const counts: Record<string, number> = Object.fromEntries(model.classes.map((c) => [c, 0]));
  // a nucleus on the thumbnail: a disc of its equivalent radius (at least its centre pixel), or a ring where that
  // radius is 3 thumbnail pixels or more, so that the nucleus stays visible under it
  const mark = (n: Nucleus, colour: readonly [number, number, number]) => {
    const cx = n.centroid[0] / thumb.scaleX, cy = n.centroid[1] / thumb.scaleY;
    const r = Math.sqrt(n.area / Math.PI) / thumb.scaleX, inner = r >= 3 ? (r - 1.5) ** 2 : -1;
    for (let y = Math.floor(cy - r); y <= Math.floor(cy + r); y++) {
      for (let x = Math.floor(cx - r); x <= Math.floor(cx + r); x++) {
        if (x < 0 || y < 0 || x >= thumb.width || y >= thumb.height) continue;
        const d2 = (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2;
        const centre = x === Math.floor(cx) && y === Math.floor(cy);
        if ((d2 <= r * r && d2 >= inner) || (centre && r < 3)) overlay.set(colour, (y * thumb.width + x) * 3);
      }
    }
  };
  try {
    const read = attributeReader(options.words);
    const predictor = modelTilePredictor(model, options.decode, options.tta, time);
    const cacheCounts: CacheCounts = { hitBatches: 0, hitTiles: 0, predictedTiles: 0 };
    const cache = options.cache, run = cache === undefined ? undefined : slideRunKey(source, tile, options, cache);
    const stream = await predictStreaming(
      virtual,
      cache === undefined || run === undefined
        ? predictor
        : cachedTilePredictor(predictor, cache.open(run), run, cacheCounts),
      {
        tile,
        overlap,
        batch,
        ...(options.allTiles === true ? {} : { select: (p: TilePlacement) => keep.has(key(p)) }),
        ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
        onBand: async (band) => {
          const features = await time("features", () => bandFeatures(virtual, band.nuclei));
          const nuclei = await time(
            "contours",
            () =>
              Promise.resolve(
                band.nuclei.map((n) => slideNucleus(n, model.classes, plan.factor, features.get(n.id), read)),
              ),
          );
          await time("write", async () => {
            for (const n of nuclei) {
              counts[n.class] = (counts[n.class] ?? 0) + 1;
              mark(n, classColour(model.classes.indexOf(n.class)));
            }
            await geojson.add(detectionsOf(nuclei, model.classes));
            await csv.add(nuclei);
          });
        },
      },
    );
    await time("write", async () => {
      await geojson.close();
      await csv.close();
      const png = await sharp(overlay, { raw: { width: thumb.width, height: thumb.height, channels: 3 } }).png()
        .toBuffer();
      await writeWhole(`${out}/${files[3]}`, new Uint8Array(png));
    });
    return {
      width: level0.width,
      height: level0.height,
      mpp: resolution.mpp,
      mppFrom: resolution.from,
      level: plan.level,
      factor: plan.factor,
      resampled: plan.resize !== 1,
      modelWidth: mw,
      modelHeight: mh,
      tiles: all,
      predicted: stream.tiles,
      tissueFraction: tissue.fraction,
      tissueThreshold: tissue.threshold,
      thumbnail: { width: thumb.width, height: thumb.height },
      nuclei: stream.nuclei,
      counts,
      files,
      ...(cache === undefined ? {} : { cachedTiles: cacheCounts.hitTiles }),
    };
  } catch (e) {
    await geojson.abort().catch(() => {}); // the prediction's error is the one to report
    await csv.abort().catch(() => {});
    throw e;
  }
};
