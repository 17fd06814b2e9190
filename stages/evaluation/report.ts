/** Markdown tables of evaluation results, for the terminal and for reports. */
import type { Breakdown } from "./breakdown.ts";
import type { InstanceMetrics } from "./instance_metrics.ts";
import { PANNUKE_CLASSES } from "./pannuke.ts";
import type { FolderMetrics, PannukeMetrics } from "./stages.ts";

const f = (
  v: number,
  digits = 4,
): string => (Number.isNaN(v) ? "NaN" : Number.isInteger(v) ? String(v) : v.toFixed(digits));
const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string =>
  [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)]
    .join("\n");

export const instancesMarkdown = (m: InstanceMetrics): string =>
  table(["PQ", "DQ", "SQ", "TP", "FP", "FN", "AJI", "AJI+", "Dice"], [
    [m.pq, m.dq, m.sq, m.tp, m.fp, m.fn, m.aji, m.ajiPlus, m.dice].map((v) => f(v)),
  ]);

export const pannukeMarkdown = (m: PannukeMetrics): string =>
  [
    table(["bPQ", "mPQ", "Det F1", "Precision", "Recall", "Type acc.", "Cls F1"], [[
      m.bPQ,
      m.mPQ,
      m.detection.f1,
      m.detection.precision,
      m.detection.recall,
      m.detection.accuracy,
      m.detection.clsF1,
    ].map((v) => f(v))]),
    "",
    table(["class", "PQ", "F1"], PANNUKE_CLASSES.map((c) => [c, f(m.classPQ[c]), f(m.detection.typeF1[c])])),
    "",
    table(["tissue", "bPQ", "mPQ"], Object.entries(m.tissues).map(([t, v]) => [t, f(v.bPQ), f(v.mPQ)])),
    "",
    `${m.perImage.length} images`,
  ].join("\n");

export const folderMarkdown = (m: FolderMetrics): string =>
  [
    table(["images", "PQ", "DQ", "SQ", "AJI", "AJI+", "Dice"], [
      [m.images, m.pq, m.dq, m.sq, m.aji, m.ajiPlus, m.dice].map((v) => f(v)),
    ]),
    "",
    table(["Det F1", "Precision", "Recall", "Type acc.", "Cls F1"], [
      [m.detection.f1, m.detection.precision, m.detection.recall, m.detection.accuracy, m.detection.clsF1].map((v) =>
        f(v)
      ),
    ]),
    ...(Object.keys(m.detection.typeF1).length > 0
      ? ["", table(["class", "F1"], Object.entries(m.detection.typeF1).map(([c, v]) => [c, f(v)]))]
      : []),
  ].join("\n");

const pct = (v: number): string => (Number.isNaN(v) ? "—" : `${(100 * v).toFixed(1)} %`);
const delta = (v: number, from: number): string =>
  Number.isNaN(v) || Number.isNaN(from) ? "—" : `${v - from >= 0 ? "+" : "−"}${Math.abs(v - from).toFixed(4)}`;

type Share = { readonly count: number; readonly share: number };

/** The report of `evaluate breakdown`: summary line, detection table, error categories, confusion, type F1. */
export const breakdownMarkdown = (b: Breakdown): string => {
  const d = b.pooled, fnc = b.falseNegatives, fpc = b.falsePositives, cf = b.counterfactualPQ;
  const errors: ReadonlyArray<{ what: string; fn?: Share; fp?: Share; pq: number }> = [
    { what: "missed truths (found)", fn: fnc.missed, pq: cf.missedFound },
    { what: "spurious predictions (removed)", fp: fpc.spurious, pq: cf.spuriousRemoved },
    { what: "merged truths / merging predictions", fn: fnc.merged, fp: fpc.merge, pq: cf.mergedFound },
    { what: "split truths / fragments", fn: fnc.split, fp: fpc.fragment, pq: cf.splitFound },
    {
      what: "poorly segmented, IoU ≤ τ (matched)",
      fn: fnc.poorlySegmented,
      fp: fpc.poorlySegmented,
      pq: cf.poorlySegmentedFound,
    },
    { what: "SQ of the matched nuclei (SQ = 1)", pq: cf.perfectSQ },
  ];
  const biggest = errors.reduce((best, e) => (e.pq > best.pq ? e : best));
  const clean = d.fp + d.fn === 0 && !(d.sq < 1 - 1e-6);
  const summary =
    `**PQ ${f(d.pq)}** pooled over ${b.images} image${b.images === 1 ? "" : "s"} (mean per-image PQ ${
      f(b.meanPQ)
    }) = DQ ${f(d.dq)} × SQ ${f(d.sq)}; ${d.tp} TP, ${d.fp} FP, ${d.fn} FN; ` +
    (clean
      ? "no errors."
      : `largest counterfactual gain: ${biggest.what} → PQ ≤ ${f(biggest.pq)} (${delta(biggest.pq, d.pq)}).`);
  const out = [
    summary,
    "",
    table(["τ", "truth", "pred", "TP", "FP", "FN", "precision", "recall", "DQ (F1)", "SQ", "PQ", "mean PQ"], [
      [b.iou, d.truth, d.pred, d.tp, d.fp, d.fn, d.precision, d.recall, d.dq, d.sq, d.pq, b.meanPQ].map((v) => f(v)),
    ]),
    "",
    table(
      ["error", "FN", "share of FN", "FP", "share of FP", "counterfactual PQ (upper bound)", "ΔPQ"],
      errors.map((e) => [
        e.what,
        e.fn === undefined ? "" : String(e.fn.count),
        e.fn === undefined ? "" : pct(e.fn.share),
        e.fp === undefined ? "" : String(e.fp.count),
        e.fp === undefined ? "" : pct(e.fp.share),
        f(e.pq),
        delta(e.pq, d.pq),
      ]),
    ),
    "",
    "Counterfactual PQ: the pooled PQ if only that row were fixed, fixed nuclei at today's SQ (an upper bound; " +
    "rows do not add up). FN: missed = < 50 % covered by predictions; merged = its main prediction also covers " +
    "≥ 50 % of another truth; split = ≥ 2 predictions cover ≥ 20 % of it. FP: spurious = < 50 % on truth; " +
    "fragment = on a split truth; merge = covers ≥ 50 % of ≥ 2 truths.",
  ];
  const t = b.types;
  if (t !== null) {
    const name = (c: number) => t.names[t.types.indexOf(c)] ?? String(c);
    const scored = [...new Set([...Object.keys(t.pqPairs.typeF1), ...Object.keys(t.centroidPairs.typeF1)])]
      .map(Number).sort((x, y) => x - y);
    out.push(
      "",
      `Types of the ${d.tp} matched pairs (rows truth, columns prediction):`,
      "",
      table(
        ["truth ↓ pred →", ...t.names, "unmatched (FN)"],
        [
          ...t.names.map((n, i) => [n, ...(t.confusion[i] ?? []).map(String), String(t.unmatchedTrue[i])]),
          ["unmatched (FP)", ...t.unmatchedPred.map(String), ""],
        ],
      ),
      "",
      table(["class", "F1 on PQ pairs", "F1 on centroid pairs (as evaluate folder)"], [
        ...scored.map((c) => [
          name(c),
          f(t.pqPairs.typeF1[String(c)] ?? NaN),
          f(t.centroidPairs.typeF1[String(c)] ?? NaN),
        ]),
        ["Cls F1 (mean, types ≥ 1)", f(t.pqPairs.clsF1), f(t.centroidPairs.clsF1)],
        ["detection F1", f(t.pqPairs.f1), f(t.centroidPairs.f1)],
        ["type accuracy", f(t.pqPairs.accuracy), f(t.centroidPairs.accuracy)],
      ]),
    );
  }
  return out.join("\n");
};
