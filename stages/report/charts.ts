/**
 * The report's plots as Vega-Lite specs (pure data → spec functions) and one renderer to PNG.
 *
 * Charts: training loss per part (rolling mean, log scale), per-class PQ (or F1 when the run has
 * no per-class PQ), the confusion matrix of matched nuclei, and grouped bars of ablation rows
 * (mean ± sd over seeds).
 *
 * Gotchas: `renderPng` runs vega headless (renderer "none": no canvas, so text widths are
 * estimated, generously) and rasterises the SVG with sharp (librsvg, system fonts), trimming the
 * blank margin the estimate leaves; log scales drop non-positive values,
 * so parts that are never positive are left out of the loss chart.
 */
import sharp from "sharp";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { type AblationRow, HEADLINE, type Spread } from "../model/ablation.ts";
import type { Confusion } from "./confusion.ts";

export type { TopLevelSpec };

/** Loss parts a training history may hold, in the order the chart lists them. */
export const LOSS_PARTS = ["total", "class", "mask", "dice", "center", "fix", "attr", "cent"] as const;

/** One logged training step: `step`, the loss parts, `ms` and whatever else the trainer logged (null = NaN). */
export type HistoryEntry = Readonly<Record<string, number | null>>;

const positive = (v: number | null | undefined): v is number => typeof v === "number" && Number.isFinite(v) && v > 0;

/** The known loss parts with at least one positive value in `history`, in LOSS_PARTS order. */
export const lossParts = (history: ReadonlyArray<HistoryEntry>): string[] =>
  LOSS_PARTS.filter((part) => history.some((h) => positive(h[part])));

/** Trailing rolling mean: value i is the mean of values max(0, i − window + 1) … i. */
export const rollingMean = (xs: ReadonlyArray<number>, window: number): number[] => {
  const out: number[] = [];
  let sum = 0;
  xs.forEach((x, i) => {
    sum += x;
    if (i >= window) sum -= xs[i - window] as number;
    out.push(sum / Math.min(i + 1, window));
  });
  return out;
};

/** At most this many points per line: long runs are thinned after smoothing. */
const MAX_POINTS = 1000;

/** Training loss per part vs step: one line per part present, rolling mean over `window` steps, log y. */
export const lossCurves = (history: ReadonlyArray<HistoryEntry>, window = 25): TopLevelSpec => {
  const parts = lossParts(history);
  const values = parts.flatMap((part) => {
    const kept = history.filter((h) => positive(h[part]) && typeof h.step === "number");
    const smooth = rollingMean(kept.map((h) => h[part] as number), window);
    const stride = Math.ceil(kept.length / MAX_POINTS);
    return kept.flatMap((h, i) =>
      i % stride === 0 || i === kept.length - 1 ? [{ step: h.step as number, part, loss: smooth[i] as number }] : []
    );
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Training loss per part",
      subtitle: `rolling mean over ${window} steps; log scale`,
      anchor: "start",
    },
    width: 640,
    height: 360,
    data: { values },
    mark: { type: "line", strokeWidth: 1.5, interpolate: "linear" },
    encoding: {
      x: { field: "step", type: "quantitative", title: "step" },
      y: { field: "loss", type: "quantitative", scale: { type: "log" }, title: `loss (mean of ${window} steps)` },
      color: { field: "part", type: "nominal", sort: parts, scale: { domain: parts }, title: "loss part" },
    },
  };
};

/** Per-class scores of a validation: PQ when the run has it, else F1 (null = undefined for the class). */
export interface ClassScores {
  readonly metric: "PQ" | "F1";
  readonly values: ReadonlyArray<{ readonly name: string; readonly value: number | null }>;
}

/** Chooses per-class PQ when present (and not empty), else per-class F1, in `classes` order. */
export const classScores = (
  validation: {
    readonly classF1: Readonly<Record<string, number | null>>;
    readonly classPQ?: Readonly<Record<string, number | null>>;
  },
  classes: ReadonlyArray<string>,
): ClassScores => {
  const pq = validation.classPQ;
  const usePQ = pq !== undefined && Object.keys(pq).length > 0;
  const source = usePQ ? pq : validation.classF1;
  const names = classes.length > 0 ? classes : Object.keys(source);
  return { metric: usePQ ? "PQ" : "F1", values: names.map((name) => ({ name, value: source[name] ?? null })) };
};

/** Bars of per-class PQ (or F1, said in the title), value printed on each bar, y in [0, 1]. */
export const classBars = (scores: ClassScores): TopLevelSpec => {
  const names = scores.values.map((v) => v.name);
  const values = scores.values.map((v) => ({
    class: v.name,
    value: v.value ?? 0,
    label: v.value === null ? "n/a" : v.value.toFixed(3),
  }));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: scores.metric === "PQ" ? "Per-class PQ (held-out split)" : "Per-class F1 (held-out split)",
      subtitle: scores.metric === "PQ"
        ? "panoptic quality of each class's nuclei"
        : "detection + classification F1 (this run has no per-class PQ)",
      anchor: "start",
    },
    width: Math.max(240, 90 * names.length),
    height: 300,
    data: { values },
    encoding: {
      x: { field: "class", type: "nominal", sort: names, title: "class", axis: { labelAngle: 0 } },
      y: {
        field: "value",
        type: "quantitative",
        scale: { domain: [0, 1] },
        title: scores.metric === "PQ" ? "PQ" : "F1",
      },
    },
    layer: [
      { mark: { type: "bar", color: "#4c72b0" } },
      { mark: { type: "text", dy: -8, fontSize: 12 }, encoding: { text: { field: "label" } } },
    ],
  };
};

/**
 * Heatmap of matched nuclei: rows true class, columns predicted class, each cell's count printed,
 * colour = the count's share of its row (so rows of rare classes read as well as common ones).
 */
export const confusionHeatmap = (confusion: Confusion, classes: ReadonlyArray<string>): TopLevelSpec => {
  const name = (c: number) => classes[c] ?? `class ${c}`;
  const names = Array.from({ length: confusion.classes }, (_, c) => name(c));
  const values = confusion.matched.flatMap((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count, p) => ({ truth: name(t), pred: name(p), count, share: total === 0 ? 0 : count / total }));
  });
  const side = Math.max(220, 110 * names.length);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Confusion of matched nuclei (IoU > 0.5)",
      subtitle: `${confusion.tiles} held-out tiles; cell = count, colour = share of the true class's row`,
      anchor: "start",
    },
    width: side,
    height: side,
    data: { values },
    encoding: {
      x: {
        field: "pred",
        type: "nominal",
        sort: names,
        title: "predicted class",
        axis: { labelAngle: 0, labelLimit: 200 },
      },
      y: { field: "truth", type: "nominal", sort: names, title: "true class" },
    },
    layer: [
      {
        mark: { type: "rect", stroke: "white" },
        encoding: {
          color: {
            field: "share",
            type: "quantitative",
            scale: { domain: [0, 1], scheme: "blues" },
            title: "row share",
          },
        },
      },
      {
        mark: { type: "text", fontSize: 13 },
        encoding: {
          text: { field: "count", type: "quantitative" },
          color: { condition: { test: "datum.share > 0.5", value: "white" }, value: "black" },
        },
      },
    ],
  };
};

/** Which metrics of an ablation summary to chart: the headline ones or the per-class PQs. */
export type AblationMetrics = "headline" | "classPQ";

/** Grouped bars: one group per metric, one bar per row (mean over seeds), ±sd whiskers when defined. */
export const ablationBars = (
  summary: ReadonlyArray<AblationRow>,
  metrics: AblationMetrics = "headline",
): TopLevelSpec => {
  const metricNames = metrics === "headline"
    ? HEADLINE.map(([n]) => n as string)
    : Object.keys(summary[0]?.classPQ ?? {});
  const label = (r: AblationRow) => `${r.row} (${r.seeds.length} seed${r.seeds.length === 1 ? "" : "s"})`;
  const rows = summary.map(label);
  const values = summary.flatMap((r) =>
    metricNames.flatMap((metric) => {
      const s: Spread | undefined = metrics === "headline" ? r.headline[metric] : r.classPQ[metric];
      if (s === undefined || !Number.isFinite(s.mean)) return [];
      const sd = Number.isFinite(s.sd) ? s.sd : null;
      return [{
        row: label(r),
        metric,
        mean: s.mean,
        lo: sd === null ? null : s.mean - sd,
        hi: sd === null ? null : s.mean + sd,
      }];
    })
  );
  const anySpread = values.some((v) => v.lo !== null);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: metrics === "headline" ? "Ablation: headline metrics per row" : "Ablation: per-class PQ per row",
      subtitle: anySpread ? "bar = mean over seeds, whisker = ±1 sample sd" : "bar = mean over seeds (one seed: no sd)",
      anchor: "start",
    },
    width: Math.max(360, metricNames.length * (rows.length * 16 + 30)),
    height: 320,
    data: { values },
    encoding: {
      x: { field: "metric", type: "nominal", sort: metricNames, title: null, axis: { labelAngle: 0 } },
      xOffset: { field: "row", type: "nominal", sort: rows },
    },
    layer: [
      {
        mark: { type: "bar" },
        encoding: {
          y: { field: "mean", type: "quantitative", scale: { domain: [0, 1] }, title: "score (mean over seeds)" },
          color: { field: "row", type: "nominal", sort: rows, title: "row", legend: { labelLimit: 320 } },
        },
      },
      {
        transform: [{ filter: "isValid(datum.lo)" }],
        mark: { type: "rule", color: "black" },
        encoding: { y: { field: "lo", type: "quantitative" }, y2: { field: "hi" } },
      },
    ],
  };
};

/**
 * Renders a spec to PNG: Vega-Lite → Vega → a headless view → SVG → sharp. `scale` multiplies the
 * pixel size (2 = crisp on high-density screens).
 *
 * @example
 * ```ts
 * import { classBars, renderPng } from "./charts.ts";
 * const png = await renderPng(classBars({ metric: "F1", values: [{ name: "a", value: 0.5 }] }));
 * console.log(png.length > 0);
 * ```
 */
export const renderPng = async (spec: TopLevelSpec, scale = 2): Promise<Uint8Array> => {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    const svg = await view.toSVG(scale);
    // headless vega over-estimates text widths (no canvas to measure): trim the blank margin it
    // leaves, then pad evenly
    const pad = Math.round(8 * scale);
    const png = await sharp(new TextEncoder().encode(svg))
      .flatten({ background: "#ffffff" })
      .trim({ background: "#ffffff", threshold: 1 })
      .extend({ top: pad, bottom: pad, left: pad, right: pad, background: "#ffffff" })
      .png()
      .toBuffer();
    return new Uint8Array(png);
  } finally {
    view.finalize();
  }
};
