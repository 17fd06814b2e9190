/**
 * The paper's ablation table from per-(row, seed) scores: mean ± sample standard deviation over
 * seeds of detection F1, mean class F1, PQ (bPQ), AJI and per-class PQ, as Markdown, and a grouped
 * bar chart (SVG; the task renders it to PNG with sharp).
 *
 * Gotchas: a metric that is undefined for a seed (null: e.g. no tile holds the class) is left out
 * of that row's mean; with one seed the spread is shown as "–".
 */
import type { Scores } from "./scores.ts";

/** One trained and scored (row, seed). */
export interface AblationRun {
  readonly row: string;
  readonly seed: number;
  readonly scores: Scores;
}

/** Mean and sample standard deviation (NaN with fewer than two values) over the defined values. */
export interface Spread {
  readonly mean: number;
  readonly sd: number;
  readonly n: number;
}

export const spread = (values: ReadonlyArray<number | null>): Spread => {
  const xs = values.filter((v): v is number => v !== null && Number.isFinite(v));
  const n = xs.length;
  const mean = n === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / n;
  const sd = n < 2 ? NaN : Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  return { mean, sd, n };
};

/** The table's headline metrics, in column order. */
export const HEADLINE = [
  ["Det F1", (s: Scores) => s.detectionF1],
  ["Cls F1", (s: Scores) => s.meanClassF1],
  ["PQ", (s: Scores) => s.bPQ],
  ["AJI", (s: Scores) => s.aji],
] as const;

export interface AblationRow {
  readonly row: string;
  readonly seeds: ReadonlyArray<number>;
  readonly headline: Record<string, Spread>;
  readonly classPQ: Record<string, Spread>;
}

/** Per row (in `rows` order), the spreads of every metric over its seeds. */
export const summarise = (
  runs: ReadonlyArray<AblationRun>,
  rows: ReadonlyArray<string>,
  classes: ReadonlyArray<string>,
): AblationRow[] =>
  rows.map((row) => {
    const mine = runs.filter((r) => r.row === row);
    return {
      row,
      seeds: mine.map((r) => r.seed),
      headline: Object.fromEntries(HEADLINE.map(([name, get]) => [name, spread(mine.map((r) => get(r.scores)))])),
      classPQ: Object.fromEntries(classes.map((c) => [c, spread(mine.map((r) => r.scores.classPQ[c] ?? null))])),
    };
  });

const cell = (s: Spread | undefined): string =>
  s === undefined || Number.isNaN(s.mean)
    ? "–"
    : `${s.mean.toFixed(3)} ± ${Number.isNaN(s.sd) ? "–" : s.sd.toFixed(3)}`;

/** The Markdown table: one line per row, headline metrics then per-class PQ. */
export const ablationMarkdown = (summary: ReadonlyArray<AblationRow>, classes: ReadonlyArray<string>): string => {
  const header = ["row", "seeds", ...HEADLINE.map(([n]) => n), ...classes.map((c) => `PQ ${c}`)];
  const lines = [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...summary.map((r) =>
      `| ${
        [
          r.row,
          String(r.seeds.length),
          ...HEADLINE.map(([n]) => cell(r.headline[n])),
          ...classes.map((c) => cell(r.classPQ[c])),
        ].join(" | ")
      } |`
    ),
  ];
  return lines.join("\n");
};

const PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"];
const escape = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/** Grouped bars: one group per headline metric, one bar per row (mean, with ±sd whiskers). */
export const ablationChartSvg = (summary: ReadonlyArray<AblationRow>, title: string): string => {
  const W = 860, H = 420, left = 60, right = 190, top = 40, bottom = 50;
  const plotW = W - left - right, plotH = H - top - bottom;
  const groups = HEADLINE.map(([n]) => n);
  const groupW = plotW / groups.length, barW = (groupW * 0.8) / Math.max(1, summary.length);
  const y = (v: number) => top + plotH * (1 - Math.max(0, Math.min(1, v)));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left}" y="24" font-size="15">${escape(title)}</text>`,
  ];
  for (let t = 0; t <= 5; t++) {
    const v = t / 5;
    parts.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${left - 8}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(1)}</text>`,
    );
  }
  groups.forEach((g, gi) => {
    const x0 = left + gi * groupW + groupW * 0.1;
    summary.forEach((r, ri) => {
      const s = r.headline[g];
      if (s === undefined || Number.isNaN(s.mean)) return;
      const x = x0 + ri * barW;
      const colour = PALETTE[ri % PALETTE.length] as string;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y(s.mean).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${
          (top + plotH - y(s.mean)).toFixed(1)
        }" fill="${colour}"/>`,
      );
      if (!Number.isNaN(s.sd)) {
        const cx = (x + (barW - 2) / 2).toFixed(1);
        parts.push(
          `<line x1="${cx}" x2="${cx}" y1="${y(s.mean + s.sd).toFixed(1)}" y2="${
            y(s.mean - s.sd).toFixed(1)
          }" stroke="black"/>`,
        );
      }
    });
    parts.push(`<text x="${x0 + groupW * 0.4}" y="${top + plotH + 20}" text-anchor="middle">${escape(g)}</text>`);
  });
  summary.forEach((r, ri) => {
    const ly = top + 10 + ri * 20;
    parts.push(
      `<rect x="${left + plotW + 20}" y="${ly}" width="12" height="12" fill="${PALETTE[ri % PALETTE.length]}"/>`,
      `<text x="${left + plotW + 38}" y="${ly + 10}">${
        escape(`${r.row} (${r.seeds.length} seed${r.seeds.length === 1 ? "" : "s"})`)
      }</text>`,
    );
  });
  parts.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="black"/>`, "</svg>");
  return parts.join("\n");
};
