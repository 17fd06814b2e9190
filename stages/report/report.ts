/**
 * A run's report: Markdown (and the same content as HTML) with tables and the figures to render,
 * for a training run (`deno task train`'s folder) or an ablation (`deno task ablate`'s folder).
 *
 * Inputs: what the task read from the run folder, decoded with the schemas below (checkpoint
 * metadata, ablation.json), plus the held-out confusion when the run has heldout/. Outputs: a
 * `Report` — the Markdown, which names each figure's PNG by a path relative to the report, and the
 * figures' Vega-Lite specs (charts.ts) for the task to render.
 *
 * Gotchas: JSON has no NaN, so undefined metrics arrive as null and print as "–"; the HTML comes
 * from `markdownToHtml`, which knows only what this module writes (headings, paragraphs, lists,
 * tables, images, code), not Markdown at large.
 */
import { Schema } from "effect";
import { ablationMarkdown, type AblationRun, HEADLINE, summarise } from "../model/ablation.ts";
import { Scores } from "../model/scores.ts";
import {
  ablationBars,
  classBars,
  classScores,
  confusionHeatmap,
  type HistoryEntry,
  lossCurves,
  lossParts,
  type TopLevelSpec,
} from "./charts.ts";
import { embeddingChart, type MatchedEmbeddings, nearestAnchorAccuracy } from "./embeddings.ts";
import type { Confusion } from "./confusion.ts";

const Metric = Schema.NullOr(Schema.Number);

/** The held-out validation a training run stores: the scores of `model.scores`, classPQ only in newer runs. */
export const Validation = Schema.Struct({
  ...Scores.fields,
  classPQ: Schema.optionalKey(Scores.fields.classPQ),
});
export type Validation = typeof Validation.Type;

/** The checkpoint's `__metadata__` (JSON strings) that the report reads; other keys are ignored. */
export const TrainingMetadata = Schema.Struct({
  config: Schema.fromJsonString(Schema.Record(Schema.String, Schema.Unknown)),
  classes: Schema.fromJsonString(Schema.Array(Schema.String)),
  history: Schema.fromJsonString(Schema.Array(Schema.Record(Schema.String, Metric))),
  validation: Schema.optionalKey(Schema.fromJsonString(Validation)),
  split: Schema.optionalKey(Schema.fromJsonString(Schema.Record(Schema.String, Schema.Number))),
  step: Schema.optionalKey(Schema.String),
});
export type TrainingMetadata = typeof TrainingMetadata.Type;

/** `deno task ablate`'s ablation.json (its `summary` is recomputed from `runs`, as NaN became null). */
export const AblationFile = Schema.Struct({
  command: Schema.optionalKey(Schema.String),
  rows: Schema.Array(Schema.String),
  runs: Schema.Array(Schema.Struct({ row: Schema.String, seed: Schema.Number, scores: Scores })),
});
export type AblationFile = typeof AblationFile.Type;

/** A training run as the task read it. */
export interface TrainingRun {
  /** the run folder, as given */
  readonly dir: string;
  readonly metadata: TrainingMetadata;
  /** summary.md, when present */
  readonly summary?: string;
  /** the held-out confusion, when heldout/masks.npy and pred.npy are present */
  readonly confusion?: Confusion;
  /** vision–language runs: matched query embeddings, their UMAP layout (queries, then anchors) */
  readonly embeddings?: { readonly matched: MatchedEmbeddings; readonly layout: number[][] };
  /** why there is no embedding figure, when the run could have one */
  readonly embeddingsSkipped?: string;
}

/** An ablation run as the task read it. */
export interface AblationRunDir {
  readonly dir: string;
  readonly ablation: AblationFile;
  /** ablation.md, when present */
  readonly markdown?: string;
}

/** A figure of the report: its PNG's file name (beside the report) and its spec. */
export interface Figure {
  readonly file: string;
  readonly alt: string;
  readonly spec: TopLevelSpec;
}

export interface Report {
  readonly title: string;
  readonly markdown: string;
  readonly figures: ReadonlyArray<Figure>;
}

const fmt = (x: number | null | undefined, digits = 3): string =>
  x === null || x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);

/** Losses span decades: 3 decimals from 1 up, 3 significant digits below. */
const fmtLoss = (x: number | null | undefined): string =>
  x === null || x === undefined || !Number.isFinite(x) ? "–" : Math.abs(x) >= 1 ? x.toFixed(3) : x.toPrecision(3);

const cellText = (s: string) => s.replaceAll("|", "\\|").replaceAll("\n", " ");

/** A Markdown table. */
const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string =>
  [
    `| ${header.map(cellText).join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.map(cellText).join(" | ")} |`),
  ].join("\n");

const image = (f: Figure) => `![${f.alt}](${f.file})`;

const baseName = (dir: string) => dir.replace(/\/+$/, "").split("/").at(-1) || dir;

const mean = (xs: ReadonlyArray<number>) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

const valueText = (v: unknown): string => (typeof v === "string" ? v : JSON.stringify(v));

/** The window of the loss chart's rolling mean and of the "final" column. */
export const SMOOTHING = 25;

/** The report of a training run: config, final losses, validation, per-class scores and 3 figures. */
export const trainingReport = (run: TrainingRun): Report => {
  const { config, classes, history, validation, split, step } = run.metadata;
  const title = `Training report: ${baseName(run.dir)}`;
  const figures: Figure[] = [];
  const out: string[] = [`# ${title}`, ""];
  const lastStep = history.at(-1)?.step;
  out.push(
    `Run folder \`${run.dir}\`; checkpoint at step ${step ?? lastStep ?? "?"}; ${classes.length} classes: ${
      classes.join(", ")
    }.`,
    "",
  );
  const known = (run.summary ?? "").split("\n").filter((l) => /^- (data|held-out predictions)\b/.test(l));
  out.push("The training command is not stored in the run.", "");
  if (known.length > 0) out.push("From summary.md:", "", ...known, "");

  out.push("## Configuration", "");
  const configRows = Object.entries(config).map(([k, v]) => [k, valueText(v)]);
  if (split !== undefined) {
    configRows.push(["split (samples)", Object.entries(split).map(([k, v]) => `${k} ${v}`).join(", ")]);
  }
  out.push(table(["setting", "value"], configRows), "");

  out.push("## Losses", "");
  const parts = lossParts(history);
  if (parts.length === 0) out.push("The run logged no losses.", "");
  else {
    const losses: Figure = {
      file: "report-losses.png",
      alt: "Training loss per part",
      spec: lossCurves(history, SMOOTHING),
    };
    figures.push(losses);
    const tail = history.slice(-SMOOTHING);
    const series = (h: ReadonlyArray<HistoryEntry>, key: string) =>
      h.map((e) => e[key]).filter((v): v is number => typeof v === "number" && Number.isFinite(v));
    out.push(
      image(losses),
      "",
      table(
        ["part", `step ${history[0]?.step ?? "?"}`, `step ${lastStep ?? "?"}`, `mean of the last ${tail.length} steps`],
        parts.map((p) => [p, fmtLoss(history[0]?.[p]), fmtLoss(history.at(-1)?.[p]), fmtLoss(mean(series(tail, p)))]),
      ),
      "",
    );
    const ms = mean(series(history, "ms"));
    if (Number.isFinite(ms)) out.push(`${history.length} steps logged, ${ms.toFixed(0)} ms per step on average.`, "");
  }

  out.push("## Held-out validation", "");
  if (validation === undefined) out.push("The checkpoint holds no validation.", "");
  else {
    const pqs = Object.values(validation.classPQ ?? {}).filter((v): v is number => v !== null);
    out.push(
      table(
        [
          "tiles",
          "bPQ",
          "AJI",
          "Det F1",
          "mean class F1",
          ...(validation.classPQ === undefined ? [] : ["mPQ (mean class PQ)"]),
        ],
        [[
          String(validation.tiles),
          fmt(validation.bPQ),
          fmt(validation.aji),
          fmt(validation.detectionF1),
          fmt(validation.meanClassF1),
          ...(validation.classPQ === undefined ? [] : [fmt(mean(pqs))]),
        ]],
      ),
      "",
    );
    const scores = classScores(validation, classes);
    const bars: Figure = {
      file: scores.metric === "PQ" ? "report-class-pq.png" : "report-class-f1.png",
      alt: `Per-class ${scores.metric}`,
      spec: classBars(scores),
    };
    figures.push(bars);
    out.push("## Per class", "", image(bars), "");
    if (scores.metric === "F1") out.push("This run stored no per-class PQ (older runs): the chart shows F1.", "");
    const c = run.confusion;
    out.push(
      table(
        [
          "class",
          "F1",
          ...(validation.classPQ === undefined ? [] : ["PQ"]),
          ...(c === undefined ? [] : ["true nuclei", "matched", "right class", "missed", "false predictions"]),
        ],
        classes.map((name, k) => {
          const row = c?.matched[k];
          const found = row === undefined ? 0 : row.reduce((a, b) => a + b, 0);
          return [
            name,
            fmt(validation.classF1[name]),
            ...(validation.classPQ === undefined ? [] : [fmt(validation.classPQ[name])]),
            ...(c === undefined || row === undefined ? [] : [
              String(found + (c.missed[k] ?? 0)),
              String(found),
              String(row[k] ?? 0),
              String(c.missed[k] ?? 0),
              String(c.falsePredictions[k] ?? 0),
            ]),
          ];
        }),
      ),
      "",
    );
  }

  out.push("## Confusion of matched nuclei", "");
  const c = run.confusion;
  if (c === undefined) {
    out.push("The run has no held-out predictions (heldout/masks.npy and heldout/pred.npy): no confusion matrix.", "");
  } else {
    const heat: Figure = {
      file: "report-confusion.png",
      alt: "Confusion of matched nuclei",
      spec: confusionHeatmap(c, classes),
    };
    figures.push(heat);
    const names = Array.from({ length: c.classes }, (_, k) => classes[k] ?? `class ${k}`);
    const matched = c.matched.reduce((s, r) => s + r.reduce((a, b) => a + b, 0), 0);
    const right = c.matched.reduce((s, r, k) => s + (r[k] ?? 0), 0);
    out.push(
      `Held-out tiles: ${c.tiles}. A true and a predicted nucleus match when their IoU is above 0.5 (at most one ` +
        `partner each); rows are true classes, columns predicted classes. ${matched} nuclei matched, ${right} of ` +
        `them with the right class (${fmt(matched === 0 ? NaN : (100 * right) / matched, 1)} %).`,
      "",
      image(heat),
      "",
      table(
        ["true \\ predicted", ...names, "missed"],
        [
          ...c.matched.map((row, k) => [names[k] as string, ...row.map(String), String(c.missed[k] ?? 0)]),
          ["false predictions", ...c.falsePredictions.map(String), ""],
        ],
      ),
      "",
    );
  }
  if (run.embeddings !== undefined) {
    const { matched, layout } = run.embeddings;
    const figure: Figure = {
      file: "report-embeddings.png",
      alt: "UMAP of matched query embeddings with class text anchors",
      spec: embeddingChart(matched, layout),
    };
    figures.push(figure);
    const nearest = nearestAnchorAccuracy(matched);
    out.push(
      "## Query embeddings and class text anchors",
      "",
      `The queries that found a true nucleus (IoU > 0.5) on ${matched.tiles} held-out tiles, projected into the ` +
        `joint space as L_fix sees them, and the class prompts' text embeddings, laid out together by UMAP ` +
        `(umap-js, seed 0). ${matched.vectors.length} queries; for ${fmt(100 * nearest, 1)} % of them the nearest ` +
        `class anchor (cosine) is their nucleus's true class.`,
      "",
      image(figure),
      "",
    );
  } else if (run.embeddingsSkipped !== undefined) {
    out.push("## Query embeddings and class text anchors", "", `No figure: ${run.embeddingsSkipped}`, "");
  }
  return { title, markdown: out.join("\n"), figures };
};

/** The report of an ablation: its command, the table of ablation.md, per-seed scores and grouped bars. */
export const ablationReport = (run: AblationRunDir): Report => {
  const { ablation } = run;
  const runs: AblationRun[] = ablation.runs.map((r) => ({ row: r.row, seed: r.seed, scores: r.scores }));
  const classes = Object.keys(runs[0]?.scores.classPQ ?? {});
  const summary = summarise(runs, ablation.rows, classes);
  const title = `Ablation report: ${baseName(run.dir)}`;
  const out: string[] = [`# ${title}`, ""];
  const seeds = [...new Set(runs.map((r) => r.seed))].sort((a, b) => a - b);
  out.push(
    `Run folder \`${run.dir}\`; ${ablation.rows.length} rows (${ablation.rows.join(", ")}); seeds ${
      seeds.join(", ")
    }; ${runs.length} trained models.`,
    "",
  );
  out.push(ablation.command === undefined ? "The command is not recorded." : `Command: \`${ablation.command}\``, "");
  // ablation.md's own description (its paragraphs other than the table and the command)
  const described = (run.markdown ?? "").split("\n\n").map((p) => p.trim()).filter((p) =>
    p !== "" && !p.startsWith("#") && !p.startsWith("|") && !p.startsWith("Command:")
  );
  if (described.length > 0) out.push(...described.flatMap((p) => [p, ""]));
  const headline: Figure = {
    file: "report-ablation.png",
    alt: "Ablation: headline metrics per row",
    spec: ablationBars(summary, "headline"),
  };
  const figures: Figure[] = [headline];
  out.push("## Summary (mean ± sample sd over seeds)", "", ablationMarkdown(summary, classes), "", image(headline), "");
  if (classes.length > 0) {
    const perClass: Figure = {
      file: "report-ablation-class-pq.png",
      alt: "Ablation: per-class PQ per row",
      spec: ablationBars(summary, "classPQ"),
    };
    figures.push(perClass);
    out.push(image(perClass), "");
  }
  out.push(
    "## Per seed",
    "",
    table(
      ["row", "seed", "tiles", ...HEADLINE.map(([n]) => n), ...classes.map((c) => `PQ ${c}`)],
      runs.map((r) => [
        r.row,
        String(r.seed),
        String(r.scores.tiles),
        ...HEADLINE.map(([, get]) => fmt(get(r.scores))),
        ...classes.map((c) => fmt(r.scores.classPQ[c])),
      ]),
    ),
    "",
  );
  return { title, markdown: out.join("\n"), figures };
};

const escapeHtml = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

/** Inline Markdown: `code`, ![alt](src), [text](href), **bold**; everything else escaped. */
const inline = (text: string): string =>
  text.split(/(`[^`]*`)/).map((piece) => {
    if (piece.length >= 2 && piece.startsWith("`") && piece.endsWith("`")) {
      return `<code>${escapeHtml(piece.slice(1, -1))}</code>`;
    }
    return escapeHtml(piece)
      .replace(/!\[([^\]]*)\]\(([^)\s]+)\)/g, '<img alt="$1" src="$2">')
      .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, '<a href="$2">$1</a>')
      .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
  }).join("");

/** Splits a table line into cells (`\|` is a literal bar). */
const cells = (line: string): string[] =>
  line.trim().replace(/^\|/, "").replace(/\|$/, "").split(/(?<!\\)\|/).map((c) => c.trim().replaceAll("\\|", "|"));

/**
 * The HTML page of Markdown as this module writes it: ATX headings, paragraphs, `- ` lists, pipe
 * tables, images, inline and fenced code. Images stay relative links.
 *
 * @example
 * ```ts
 * import { markdownToHtml } from "./report.ts";
 * console.log(markdownToHtml("# Title\n\n| a |\n|---|\n| 1 |", "Title").includes("<td>1</td>"));
 * ```
 */
export const markdownToHtml = (markdown: string, title: string): string => {
  const lines = markdown.split("\n");
  const body: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] as string;
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (line.trim() === "") i++;
    else if (line.startsWith("```")) {
      const code: string[] = [];
      for (i++; i < lines.length && !(lines[i] as string).startsWith("```"); i++) code.push(lines[i] as string);
      i++;
      body.push(`<pre><code>${escapeHtml(code.join("\n"))}</code></pre>`);
    } else if (heading !== null) {
      const level = (heading[1] as string).length;
      body.push(`<h${level}>${inline(heading[2] as string)}</h${level}>`);
      i++;
    } else if (line.startsWith("|")) {
      const rows: string[] = [];
      for (; i < lines.length && (lines[i] as string).startsWith("|"); i++) rows.push(lines[i] as string);
      const [head = "", , ...rest] = rows;
      body.push(
        "<table>",
        `<thead><tr>${cells(head).map((c) => `<th>${inline(c)}</th>`).join("")}</tr></thead>`,
        "<tbody>",
        ...rest.map((r) => `<tr>${cells(r).map((c) => `<td>${inline(c)}</td>`).join("")}</tr>`),
        "</tbody>",
        "</table>",
      );
    } else if (line.startsWith("- ")) {
      const items: string[] = [];
      for (; i < lines.length && (lines[i] as string).startsWith("- "); i++) items.push((lines[i] as string).slice(2));
      body.push("<ul>", ...items.map((it) => `<li>${inline(it)}</li>`), "</ul>");
    } else {
      const para: string[] = [];
      for (; i < lines.length; i++) {
        const l = lines[i] as string;
        if (l.trim() === "" || /^(#{1,6}\s|\||- |```)/.test(l)) break;
        para.push(l);
      }
      body.push(`<p>${inline(para.join(" "))}</p>`);
    }
  }
  return [
    "<!DOCTYPE html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    `<title>${escapeHtml(title)}</title>`,
    "<style>",
    "body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }",
    "table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }",
    "th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }",
    "th { background: #f3f3f3; }",
    "img { max-width: 100%; height: auto; }",
    "code { background: #f3f3f3; padding: 0 0.2em; }",
    "</style>",
    "</head>",
    "<body>",
    ...body,
    "</body>",
    "</html>",
    "",
  ].join("\n");
};
