/**
 * A class-stacked histogram of one attribute as SVG (rendered to PNG with sharp by the report):
 * 40 bins between the 1st and 99th percentile (outliers in the end bins), one colour per class,
 * the kept thresholds as dashed lines and each interval's word under the axis.
 */

const PALETTE = ["#d62728", "#2ca02c", "#1f77b4", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2"];

const escape = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

const quantile = (sorted: ReadonlyArray<number>, p: number): number => {
  const h = (sorted.length - 1) * p, lo = Math.floor(h);
  return lo + 1 >= sorted.length
    ? sorted[sorted.length - 1] as number
    : (sorted[lo] as number) + (h - lo) * ((sorted[lo + 1] as number) - (sorted[lo] as number));
};

/** The SVG text of the histogram. `values[k]` are the present values of class `classes[k]`. */
export const histogramSvg = (options: {
  readonly title: string;
  readonly classes: ReadonlyArray<string>;
  readonly values: ReadonlyArray<ReadonlyArray<number>>;
  readonly thresholds: ReadonlyArray<number>;
  readonly words: ReadonlyArray<string>;
}): string => {
  const W = 800, H = 420, left = 60, right = 210, top = 40, bottom = 80;
  const plotW = W - left - right, plotH = H - top - bottom, nBins = 40;
  const all = options.values.flat().sort((a, b) => a - b);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left}" y="24" font-size="16">${escape(options.title)}</text>`,
  ];
  if (all.length === 0) return [...parts, `<text x="${left}" y="${top + 40}">no values</text></svg>`].join("");
  let lo = quantile(all, 0.01), hi = quantile(all, 0.99);
  for (const t of options.thresholds) [lo, hi] = [Math.min(lo, t), Math.max(hi, t)];
  if (hi <= lo) hi = lo + 1;
  const binOf = (v: number) => Math.min(nBins - 1, Math.max(0, Math.floor(((v - lo) / (hi - lo)) * nBins)));
  const counts = options.values.map((vs) => {
    const c = new Array<number>(nBins).fill(0);
    for (const v of vs) c[binOf(v)] = (c[binOf(v)] as number) + 1;
    return c;
  });
  const totals = Array.from({ length: nBins }, (_, b) => counts.reduce((s, c) => s + (c[b] as number), 0));
  const maxTotal = Math.max(1, ...totals);
  const x = (v: number) => left + ((v - lo) / (hi - lo)) * plotW;
  const barW = plotW / nBins;
  for (let b = 0; b < nBins; b++) {
    let y = top + plotH;
    counts.forEach((c, k) => {
      const h = ((c[b] as number) / maxTotal) * plotH;
      if (h <= 0) return;
      y -= h;
      parts.push(
        `<rect x="${(left + b * barW).toFixed(1)}" y="${y.toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${
          h.toFixed(1)
        }" fill="${PALETTE[k % PALETTE.length]}"/>`,
      );
    });
  }
  parts.push(`<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="black"/>`);
  parts.push(
    `<text x="${left}" y="${top + plotH + 16}">${lo.toPrecision(3)}</text>`,
    `<text x="${left + plotW}" y="${top + plotH + 16}" text-anchor="end">${hi.toPrecision(3)}</text>`,
  );
  for (const t of options.thresholds) {
    parts.push(
      `<line x1="${x(t).toFixed(1)}" y1="${top}" x2="${x(t).toFixed(1)}" y2="${
        top + plotH
      }" stroke="black" stroke-dasharray="5,4"/>`,
    );
    parts.push(`<text x="${x(t).toFixed(1)}" y="${top - 4}" text-anchor="middle">${t.toPrecision(4)}</text>`);
  }
  const edges = [lo, ...options.thresholds, hi];
  options.words.forEach((w, j) => {
    const mid = (x(edges[j] as number) + x(edges[j + 1] as number)) / 2;
    // alternate rows so that the words of narrow neighbouring intervals do not overlap
    parts.push(
      `<text x="${mid.toFixed(1)}" y="${top + plotH + 36 + (j % 2) * 16}" text-anchor="middle" font-weight="bold">${
        escape(w)
      }</text>`,
    );
  });
  options.classes.forEach((c, k) => {
    const y = top + 10 + k * 20;
    parts.push(
      `<rect x="${left + plotW + 20}" y="${y - 10}" width="12" height="12" fill="${PALETTE[k % PALETTE.length]}"/>`,
    );
    parts.push(`<text x="${left + plotW + 38}" y="${y}">${escape(c)} (${options.values[k]?.length ?? 0})</text>`);
  });
  parts.push("</svg>");
  return parts.join("");
};
