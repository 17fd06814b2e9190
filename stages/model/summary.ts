/**
 * The held-out part of a training run's `summary.md` as Markdown tables (3 decimals; a metric
 * with no value, e.g. the PQ of a class absent from the held-out tiles, is "–"), in place of the
 * raw JSON that `metrics.json` keeps for programs.
 */

/** A number to 3 decimals, or "–" when it is missing or not finite. */
const cell = (x: unknown): string => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(3) : "–");

/** The split line: "22 training images, 5 held out" (or what the metadata gives). */
export const splitLine = (split: string | undefined): string => {
  try {
    const s = JSON.parse(split ?? "null") as { train?: unknown; val?: unknown } | null;
    if (typeof s?.train === "number" && typeof s.val === "number") {
      return `${s.train} training images, ${s.val} held out${s.val === 0 ? " (no validation)" : ""}`;
    }
  } catch { /* shown as is below */ }
  return split ?? "unknown";
};

/**
 * The validation scores (as `metrics.json`'s `validation`) as two tables: the headline metrics,
 * then F1 and PQ per class. Empty validation (no held-out split) gives one line saying so.
 */
export const validationTables = (validation: Record<string, unknown>): string => {
  if (validation.tiles === undefined || validation.tiles === 0) return "No held-out validation (`--val-fraction 0`).";
  const classF1 = (validation.classF1 ?? {}) as Record<string, unknown>;
  const classPQ = (validation.classPQ ?? {}) as Record<string, unknown>;
  const classes = [...new Set([...Object.keys(classF1), ...Object.keys(classPQ)])];
  return [
    `| held-out tiles | bPQ | AJI | detection F1 | mean class F1 |`,
    `|---|---|---|---|---|`,
    `| ${validation.tiles} | ${cell(validation.bPQ)} | ${cell(validation.aji)} | ${cell(validation.detectionF1)} | ${
      cell(validation.meanClassF1)
    } |`,
    ...(classes.length === 0 ? [] : [
      "",
      `| class | F1 | PQ |`,
      `|---|---|---|`,
      ...classes.map((c) => `| ${c} | ${cell(classF1[c])} | ${cell(classPQ[c])} |`),
    ]),
  ].join("\n");
};
