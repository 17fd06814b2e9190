/** Markdown tables of evaluation results, for the terminal and for reports. */
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
