/**
 * Whole-slide benchmark (run by `deno task bench --only slide`): `predictSlide` on a synthetic pyramidal TIFF of
 * S × S pixels at 0.25 µm/px (`--slide-side`, default 8,192), with the `tiny` and the `conv` preset (`--slide-preset`
 * picks one). The slide is sharp's tiled (256²), JPEG-compressed pyramid, read by OpenSlide (generic-tiff) as
 * `deno task predict` reads it: white glass with four elliptical tissue islands (30–40 % tissue) filled with
 * CoNSeP training images when /work/shared/data/consep/Train/Images exists (IVAAN_CONSEP_IMAGES overrides it),
 * else with the synthetic H&E generator's tiles.
 *
 * The models are untrained: `initModel` with a fixed seed, saved as a checkpoint and read back by `loadModel`.
 * Throughput does not depend on the weights, but the number of nuclei an untrained model decodes does, so the
 * decode, contour, feature and write shares are not those of a trained model.
 *
 * Each preset runs in its own process (bench/slide_child.ts, under `deno task predict`'s permissions), so that its
 * peak RSS is its own (the WASM heap never shrinks); RSS is sampled after every read and step (VmHWM in
 * /proc/self/status would need --allow-all).
 *
 * Where the time goes: the source's `readRegion` is wrapped, and predictSlide's `time` hook sees the model's
 * forward pass (its outputs read back included), decoding, tissue detection, mask features, contours and writing.
 * Each step's time is its own (a read inside the features step counts as read); what is left — tiling, stitching,
 * the thumbnail's block averaging, the event loop — is "other".
 */
import sharp from "sharp";
import { Effect } from "effect";
import { encodeSafetensors } from "../pipeline/codec/safetensors.ts";
import { initBackend } from "../stages/backend/tf.ts";
import { syntheticSample } from "../stages/data/synthetic.ts";
import { PANNUKE_CLASSES } from "../stages/evaluation/pannuke.ts";
import { saveCheckpoint } from "../stages/model/checkpoint.ts";
import { initModel, MODEL_PRESETS } from "../stages/model/model.ts";
import { disposeModel, loadModel, type StepTimer } from "../stages/predict/model_tiles.ts";
import { openImageSource } from "../stages/slide/open.ts";
import { predictSlide } from "../stages/slide/predict_slide.ts";
import type { ImageSource } from "../stages/slide/source.ts";
import type { Row } from "./evaluation_bench.ts";

/** The presets benched, in the table's order. */
export const SLIDE_PRESETS = ["tiny", "conv"] as const;
export type SlidePreset = (typeof SLIDE_PRESETS)[number];

/** The slide's resolution: 40×, the models' own (no resampling). */
const MPP = 0.25;

/** HoVer-NeXt's published whole-slide speed on a GPU at 0.25 µm/px (not measured here). */
const HOVER_NEXT_S_PER_MM2 = 3.2;

const CONSEP = "/work/shared/data/consep/Train/Images";

/** The steps reported, in the table's order ("read" from the wrapped source, the rest from predictSlide's hook). */
const STEPS = ["read", "forward", "decode", "tissue", "features", "contours", "write"] as const;

/** RGB [h, w, 3] pictures to fill the tissue with, and where they came from. */
const tissuePictures = async (): Promise<{ from: string; pictures: Array<{ side: number; rgb: Uint8Array }> }> => {
  const dir = Deno.env.get("IVAAN_CONSEP_IMAGES") ?? CONSEP;
  const files = await Array.fromAsync(Deno.readDir(dir)).then(
    (entries) => entries.filter((e) => e.isFile && /\.png$/i.test(e.name)).map((e) => `${dir}/${e.name}`).sort(),
    () => [] as string[],
  );
  if (files.length > 0) {
    const pictures = [];
    for (const file of files.slice(0, 8)) {
      const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const side = Math.min(info.width, info.height), rgb = new Uint8Array(side * side * 3);
      for (let y = 0; y < side; y++) {
        rgb.set(data.subarray(y * info.width * 3, (y * info.width + side) * 3), y * side * 3);
      }
      pictures.push({ side, rgb });
    }
    return { from: `CoNSeP (${pictures.length} training images of ${dir})`, pictures };
  }
  const pictures = Array.from({ length: 4 }, (_, i) => {
    const s = syntheticSample(7, i, { size: 512 });
    return { side: s.width, rgb: s.image };
  });
  return { from: "the synthetic H&E generator (no CoNSeP images found)", pictures };
};

/** How the benchmark slide is built: its pyramid's compression, and the tissue islands' size (1: the default). */
export interface SlideBuild {
  /** `jpeg` (quality 90, as scanners write) or `none` (raw pixels: a file of ≈ 4·side² bytes with its pyramid) */
  readonly compression: "jpeg" | "none";
  /** the islands' semi-axes as a fraction of the default ones, in (0, 1]: less tissue, the same slide size */
  readonly islands: number;
}

export const DEFAULT_SLIDE_BUILD: SlideBuild = { compression: "jpeg", islands: 1 };

/**
 * Writes the benchmark slide: `side`² white glass (240 grey), four elliptical islands of tissue in a 2 × 2 grid
 * (semi-axes 0.44 and 0.38 of a cell, times `build.islands`: 52 % of the area at 1, 30–40 % tissue to the
 * detector, since CoNSeP's lumina and fat are pale) filled with `pictures` in a grid of their side; a tiled (256²)
 * pyramid at 0.25 µm/px, JPEG (quality 90) or uncompressed.
 */
const writeSlide = async (
  file: string,
  side: number,
  pictures: ReadonlyArray<{ side: number; rgb: Uint8Array }>,
  build: SlideBuild,
): Promise<void> => {
  const rgb = new Uint8Array(side * side * 3).fill(240); // [side, side, 3]
  const cell = side / 2, a = 0.44 * build.islands * cell, b = 0.38 * build.islands * cell;
  const grid = pictures[0]?.side ?? 1;
  for (let y = 0; y < side; y++) {
    const cy = (Math.floor(y / cell) + 0.5) * cell, dy = (y - cy) / b;
    if (Math.abs(dy) >= 1) continue;
    const half = a * Math.sqrt(1 - dy * dy);
    for (let gx = 0; gx < 2; gx++) {
      const cx = (gx + 0.5) * cell;
      for (let x = Math.ceil(cx - half); x < cx + half;) {
        // a span of one picture: its column runs to the picture's edge or the ellipse's
        const p = pictures[(Math.floor(y / grid) * 7 + Math.floor(x / grid)) % pictures.length] as {
          side: number;
          rgb: Uint8Array;
        };
        const px = x % p.side, py = y % p.side, end = Math.min(Math.ceil(cx + half), x + p.side - px);
        rgb.set(p.rgb.subarray((py * p.side + px) * 3, (py * p.side + px + end - x) * 3), (y * side + x) * 3);
        x = end;
      }
    }
  }
  await sharp(rgb, { raw: { width: side, height: side, channels: 3 }, limitInputPixels: false })
    .tiff({
      tile: true,
      tileWidth: 256,
      tileHeight: 256,
      pyramid: true,
      compression: build.compression,
      ...(build.compression === "jpeg" ? { quality: 90 } : {}),
      xres: 1000 / MPP, // sharp's resolution is in pixels per mm (stored per cm)
      yres: 1000 / MPP,
      resolutionUnit: "cm",
    })
    .toFile(file);
};

/** A ledger of the steps' own times (ms; nested steps subtracted from their parent) and the sampled RSS peak. */
const ledger = () => {
  const totals = new Map<string, number>();
  const open: number[] = []; // the time of the children of each open step
  let peak = Deno.memoryUsage().rss;
  const time: StepTimer = async (step, work) => {
    const t0 = performance.now();
    open.push(0);
    try {
      return await work();
    } finally {
      const elapsed = performance.now() - t0, children = open.pop() ?? 0;
      totals.set(step, (totals.get(step) ?? 0) + elapsed - children);
      if (open.length > 0) open[open.length - 1] = (open.at(-1) ?? 0) + elapsed;
      peak = Math.max(peak, Deno.memoryUsage().rss);
    }
  };
  return { time, totals, peak: () => peak };
};

/** `source` with every `readRegion` passed through `time` as the step "read". */
const timedSource = (source: ImageSource, time: StepTimer): ImageSource => ({
  ...source,
  readRegion: (x, y, level, w, h) => time("read", () => source.readRegion(x, y, level, w, h)),
  readAssociated: (name) => source.readAssociated(name),
  close: () => source.close(),
});

/** An untrained checkpoint of `preset` (initModel, seed 1, PanNuke's five classes), as `deno task train` saves one. */
const untrainedCheckpoint = async (file: string, preset: SlidePreset): Promise<void> => {
  const config = MODEL_PRESETS[preset];
  const params = initModel(config, PANNUKE_CLASSES.length, 1);
  const checkpoint = await saveCheckpoint(params, {
    format: "ivaan-checkpoint/1",
    step: "0",
    model: JSON.stringify(config),
    classes: JSON.stringify(PANNUKE_CLASSES),
  });
  await Deno.writeFile(file, encodeSafetensors(checkpoint));
  disposeModel({ params });
};

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1)} %`;

/** What one preset did on the slide (measured by `measureSlide`, in the child process bench/slide_child.ts). */
export interface SlideMeasurement {
  readonly reader: string;
  readonly matmul: string;
  readonly tile: number;
  readonly overlap: number;
  readonly tiles: number;
  readonly predicted: number;
  readonly tissueFraction: number;
  readonly width: number;
  readonly height: number;
  readonly nuclei: number;
  readonly wallSeconds: number;
  /** each step's own seconds (STEPS) */
  readonly steps: Readonly<Record<string, number>>;
  readonly rssBeforeBytes: number;
  /** `Deno.memoryUsage().rss` sampled after every read and step (/proc/self/status needs --allow-all) */
  readonly rssPeakBytes: number;
}

/**
 * `predictSlide` on `slide` with an untrained `preset` (its checkpoint and outputs in `dir`), timed step by step;
 * what bench/slide_child.ts runs, one preset per process, so that each peak RSS is that preset's alone.
 */
export const measureSlide = async (slide: string, preset: SlidePreset, dir: string): Promise<SlideMeasurement> => {
  const backend = await Effect.runPromise(initBackend("wasm"));
  const checkpoint = `${dir}/${preset}.safetensors`;
  await untrainedCheckpoint(checkpoint, preset);
  const model = await loadModel(checkpoint);
  const source = await openImageSource(slide);
  const out = `${dir}/${preset}`;
  await Deno.mkdir(out, { recursive: true });
  const { time, totals, peak } = ledger();
  const overlap = Math.floor(model.tile / 4); // deno task predict's default
  const rssBefore = Deno.memoryUsage().rss;
  const t0 = performance.now();
  const summary = await predictSlide(timedSource(source, time), model, {
    out,
    name: "slide",
    modelMpp: MPP,
    overlap,
    batch: 4,
    time,
  }).finally(() => {
    source.close();
    disposeModel(model);
  });
  const wallSeconds = (performance.now() - t0) / 1000;
  return {
    reader: source.reader,
    matmul: backend.matmul,
    tile: model.tile,
    overlap,
    tiles: summary.tiles,
    predicted: summary.predicted,
    tissueFraction: summary.tissueFraction,
    width: summary.width,
    height: summary.height,
    nuclei: summary.nuclei,
    wallSeconds,
    steps: Object.fromEntries(STEPS.map((s) => [s, (totals.get(s) ?? 0) / 1000])),
    rssBeforeBytes: rssBefore,
    rssPeakBytes: peak(),
  };
};

/** The permissions of `deno task predict` (deno.json), which the child runs under (the bench's folder is in /tmp). */
const PREDICT_PERMISSIONS = ["--allow-read", "--allow-write=.,/tmp", "--allow-env", "--allow-ffi"];

const measureInChild = async (slide: string, preset: SlidePreset, dir: string): Promise<SlideMeasurement> => {
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PREDICT_PERMISSIONS, new URL("./slide_child.ts", import.meta.url).pathname, slide, preset, dir],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (child.code !== 0) throw new Error(`bench: the slide child (${preset}) failed with code ${child.code}`);
  return JSON.parse(new TextDecoder().decode(child.stdout).trim().split("\n").at(-1) as string) as SlideMeasurement;
};

/** The rows of the slide section; its numbers also go into `results` under `slide.<preset>.<name>`. */
export const slideBench = async (
  dir: string,
  side: number,
  presets: ReadonlyArray<SlidePreset>,
  results: Record<string, number>,
  build: SlideBuild = DEFAULT_SLIDE_BUILD,
): Promise<Row[]> => {
  const { from, pictures } = await tissuePictures();
  const slide = `${dir}/slide.tif`;
  const built = performance.now();
  await writeSlide(slide, side, pictures, build);
  const buildSeconds = (performance.now() - built) / 1000;
  const fileBytes = (await Deno.stat(slide)).size;
  results["slide.fileBytes"] = fileBytes;
  const kind = build.compression === "jpeg" ? "a JPEG" : "an uncompressed";
  const rows: Row[] = [];
  for (const preset of presets) {
    const m = await measureInChild(slide, preset, dir);
    const wall = m.wallSeconds, stride = m.tile - m.overlap;
    // each predicted tile owns about a stride² square of the slide
    const mm2 = (m.predicted * stride * stride * MPP * MPP) / 1e6;
    const tissueMm2 = (m.tissueFraction * m.width * m.height * MPP * MPP) / 1e6;
    const sec = (step: string) => m.steps[step] ?? 0;
    const other = wall - STEPS.reduce((s, step) => s + sec(step), 0);
    const peakRss = m.rssPeakBytes;
    const title = `slide ${side}², ${preset} preset (untrained)`;
    const r = (name: string, value: number) => (results[`slide.${preset}.${name}`] = value);
    r("tiles", m.predicted), r("wallSeconds", wall), r("tilesPerSecond", m.predicted / wall);
    r("mm2PerMinute", (mm2 / wall) * 60), r("secondsPerMm2", wall / mm2), r("peakRssBytes", peakRss);
    r("forwardShare", sec("forward") / wall), r("nuclei", m.nuclei);
    for (const step of STEPS) r(`${step}Seconds`, sec(step));
    r("otherSeconds", other);
    rows.push(
      {
        name: `${title}: tissue tiles/s`,
        value: `${(m.predicted / wall).toFixed(2)} tiles/s`,
        note: `${m.predicted} of ${m.tiles} ${m.tile}² tiles (overlap ${m.overlap}, batch 4) with tissue (${
          pct(m.tissueFraction, 1)
        } tissue, ${tissueMm2.toFixed(2)} mm²), ${m.nuclei.toLocaleString("en-US")} nuclei, in ${
          wall.toFixed(1)
        } s wall; ${kind} pyramidal TIFF of ${
          mb(fileBytes)
        } at ${MPP} µm/px from ${from}, read by ${m.reader} (built in ${
          buildSeconds.toFixed(1)
        } s); an untrained model (initModel, seed 1, saved and loaded as a checkpoint): throughput only; ${m.matmul}`,
      },
      {
        name: `${title}: mm²/min of tissue tiles`,
        value: `${((mm2 / wall) * 60).toFixed(2)} mm²/min`,
        note:
          `${(wall / mm2).toFixed(1)} s/mm²; ${mm2.toFixed(2)} mm² = predicted tiles × ${stride}² px (each tile's ` +
          `share of the tiling) at ${MPP} µm/px`,
      },
      {
        name: `${title}: share of wall time in the model's forward`,
        value: pct(sec("forward"), wall),
        note: `goal ≥ 80 %; ${
          [
            ...STEPS.map((s) => `${s} ${sec(s).toFixed(1)} s (${pct(sec(s), wall)})`),
            `other ${other.toFixed(1)} s (${pct(other, wall)})`,
          ].join(", ")
        }; decode, contours, features and write depend on the nuclei an untrained model decodes`,
      },
      {
        name: `${title}: peak RSS`,
        value: mb(peakRss),
        note: `sampled after every read and step, in a process that loads the checkpoint and predicts the slide ` +
          `under deno task predict's permissions (the model's WASM heap included); ${
            mb(m.rssBeforeBytes)
          } before predictSlide`,
      },
    );
  }
  rows.push({
    name: "slide, HoVer-NeXt (published, not measured here)",
    value: `${HOVER_NEXT_S_PER_MM2} s/mm²`,
    note: `${(60 / HOVER_NEXT_S_PER_MM2).toFixed(1)} mm²/min, at ${MPP} µm/px on a GPU, as published; a peer figure ` +
      "for scale, not a same-machine comparison",
  });
  return rows;
};
