/**
 * The attribute report: a Markdown page of what the attribute chain learned from a dataset —
 * per-class feature summaries, the selection (S, drops with partner and ρ), each binned
 * attribute's thresholds, words and class counts per interval (with its histogram PNG), and
 * example prompts. Pure: it formats stage outputs; the task writes the files.
 */
import type { AttributeFit } from "./fit.ts";
import { FEATURE_NAMES } from "./mask_features.ts";
import { histogramSvg } from "./plot.ts";
import type { Prompts } from "./stages.ts";
import { type FeatureTable, hasFlag } from "./table.ts";

const f = (
  v: number | null | undefined,
  digits = 4,
) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v.toPrecision(digits)).toString());
const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) =>
  [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)]
    .join("\n");

/** Mean and standard deviation of each feature per class (nuclei used by the fit). */
export const classSummaries = (t: FeatureTable, excludeBorder: boolean) =>
  t.classes.map((name, c) => {
    const idx: number[] = [];
    for (let i = 0; i < t.id.length; i++) {
      if (t.cls[i] === c && !(excludeBorder && hasFlag(t, i, "touches_border"))) idx.push(i);
    }
    const stats = Object.fromEntries(FEATURE_NAMES.map((feature) => {
      const col = t.columns[feature] as Float64Array;
      const xs = idx.map((i) => col[i] as number).filter((v) => !Number.isNaN(v));
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
      return [feature, { mean, sd }];
    }));
    return { name, n: idx.length, stats };
  });

/** The histogram SVG of every binned attribute, keyed by feature. */
export const attributeHistograms = (
  fit: AttributeFit,
  t: FeatureTable,
  excludeBorder: boolean,
): Record<string, string> =>
  Object.fromEntries(
    Object.entries(fit.binning).map(([feature, b]) => {
      const col = t.columns[feature] as Float64Array;
      const values = t.classes.map((_, c) => {
        const xs: number[] = [];
        for (let i = 0; i < t.id.length; i++) {
          if (t.cls[i] === c && !Number.isNaN(col[i]) && !(excludeBorder && hasFlag(t, i, "touches_border"))) {
            xs.push(col[i] as number);
          }
        }
        return xs;
      });
      return [
        feature,
        histogramSvg({
          title: `${feature} (${b.family})`,
          classes: t.classes,
          values,
          thresholds: b.thresholds,
          words: b.words,
        }),
      ];
    }),
  );

/** The Markdown report. `images[feature]` is the PNG file name of that attribute's histogram. */
export const reportMarkdown = (options: {
  readonly source: string;
  readonly fit: AttributeFit;
  readonly table: FeatureTable;
  readonly prompts: Prompts;
  readonly excludeBorder: boolean;
  readonly images: Readonly<Record<string, string>>;
}): string => {
  const { fit, table: t, prompts } = options;
  const out: string[] = [`# Attribute report: ${options.source}`, ""];
  out.push(
    `${t.sampleIds.length} images, ${t.id.length} nuclei; ${fit.n_samples} labelled nuclei used for the fit` +
      (options.excludeBorder ? " (nuclei touching the tile border left out)." : "."),
    "",
    table(["class", "nuclei"], fit.classes.map((c, k) => [c, String(fit.class_counts[k] ?? 0)])),
    "",
    "## Per-class feature summaries (mean ± sd)",
    "",
  );
  const summaries = classSummaries(t, options.excludeBorder);
  out.push(table(
    ["feature", ...summaries.map((s) => `${s.name} (${s.n})`)],
    FEATURE_NAMES.map((feature) => [
      feature,
      ...summaries.map((s) => `${f(s.stats[feature]?.mean, 3)} ± ${f(s.stats[feature]?.sd, 2)}`),
    ]),
  ));
  const sel = fit.selection;
  out.push("", "## Selection (§B1–B2)", "", `Selected: **${sel.selected.join(", ") || "none"}**`, "");
  out.push(table(
    ["rank", "feature", "S (median of abs. Cohen's d)", "status"],
    sel.ranking.map((r, k) => {
      const dropped = sel.dropped.find((d) => d.feature === r.feature);
      const status = sel.selected.includes(r.feature)
        ? "selected"
        : dropped !== undefined
        ? `dropped: redundant with ${dropped.redundant_with} (ρ = ${f(dropped.rho, 3)})`
        : "kept, beyond the first 4";
      return [String(k + 1), r.feature, f(r.S), status];
    }),
  ));
  if (sel.unranked.length > 0) out.push("", `Unranked (no class pair with variance): ${sel.unranked.join(", ")}`);
  out.push("", "## Binned attributes (§B3–B5)", "");
  for (const [feature, b] of Object.entries(fit.binning)) {
    out.push(
      `### ${feature} — ${b.family} (${
        b.direction === "+" ? "higher value → later word" : "higher value → earlier word"
      })`,
      "",
    );
    out.push(
      `Thresholds kept: ${b.thresholds.map((x) => f(x, 5)).join(", ") || "none"} (full-data candidates: ${
        b.thresholds_full.map((x) => f(x, 5)).join(", ") || "none"
      }; τ = ${f(b.tau)}).`,
      "",
    );
    out.push(table(
      ["interval", "word", "n", ...b.classes],
      b.intervals.map((iv) => [
        `(${iv.lower_exclusive === null ? "−∞" : f(iv.lower_exclusive, 5)}, ${
          iv.upper_inclusive === null ? "+∞" : f(iv.upper_inclusive, 5)
        }]`,
        iv.word,
        String(iv.n),
        ...iv.class_counts.map(String),
      ]),
    ));
    const image = options.images[feature];
    if (image !== undefined) out.push("", `![${feature}](${image})`);
    out.push("");
  }
  out.push("## Example prompts", "");
  const examples = t.classes.flatMap((c) =>
    prompts.nuclei.filter((n) => n.classPrompt?.includes(` ${c} `)).slice(0, 2)
  );
  for (const n of examples) {
    out.push(
      `- ${n.sample} #${n.id}: "${n.classPrompt}"; ${
        Object.entries(n.attributes).map(([a, p]) => `${a}: "${p ?? "–"}"`).join("; ")
      }`,
    );
  }
  const image = prompts.images.find((i) => i.text !== "");
  if (image !== undefined) out.push("", `Image-level text of ${image.sample}: "${image.text}"`);
  out.push("", "Attribute vocabularies (the negatives of L_attr):", "");
  for (const [a, words] of Object.entries(prompts.vocabulary)) {
    out.push(`- ${a}: ${words.map((w) => `"${w}"`).join(", ")}`);
  }
  return out.join("\n") + "\n";
};
