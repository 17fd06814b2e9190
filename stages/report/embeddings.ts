/**
 * The paper's embedding figure: the queries of a vision–language model that found a true nucleus
 * (predicted instance with IoU > 0.5), projected into the joint space (`embed`, as L_fix sees
 * them), laid out in 2-D by UMAP together with the class prompts' text embeddings (the anchors
 * the queries are pulled towards), coloured by the nucleus's true class.
 */
import * as tf from "@tensorflow/tfjs";
import { UMAP } from "umap-js";
import type { TopLevelSpec } from "vega-lite";
import { mulberry32 } from "../data/random.ts";
import type { Sample } from "../data/sample.ts";
import { CLASS_COLOURS } from "../data/overlay.ts";
import { embed } from "../model/alignment.ts";
import { applyModel } from "../model/model.ts";
import { promptEmbeddings } from "../model/vision_language.ts";
import { decodeTile, type LoadedModel } from "../predict/model_tiles.ts";

/** Joint-space vectors of matched queries (with their nuclei's true classes) and of the class prompts. */
export interface MatchedEmbeddings {
  readonly vectors: number[][]; // [N, E]
  readonly labels: number[]; // [N]
  readonly anchors: number[][]; // [C, E]
  readonly classes: ReadonlyArray<string>;
  readonly tiles: number;
}

/** Pairs (predicted id → true id) with IoU > 0.5 of two instance maps of one tile (unique at that threshold). */
export const iouMatches = (truth: Int32Array, pred: Int32Array): Map<number, number> => {
  const overlap = new Map<number, number>(), areaT = new Map<number, number>(), areaP = new Map<number, number>();
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i] as number, p = pred[i] as number;
    if (t > 0) areaT.set(t, (areaT.get(t) ?? 0) + 1);
    if (p > 0) areaP.set(p, (areaP.get(p) ?? 0) + 1);
    if (t > 0 && p > 0) overlap.set(p * 2 ** 20 + t, (overlap.get(p * 2 ** 20 + t) ?? 0) + 1);
  }
  const out = new Map<number, number>();
  for (const [key, inter] of overlap) {
    const p = Math.floor(key / 2 ** 20), t = key % 2 ** 20;
    if (inter / ((areaP.get(p) as number) + (areaT.get(t) as number) - inter) > 0.5) out.set(p, t);
  }
  return out;
};

/** The matched queries' embeddings on `tiles` (of the model's tile size) and the class anchors. */
export const matchedEmbeddings = (model: LoadedModel, tiles: ReadonlyArray<Sample>, batch = 4): MatchedEmbeddings => {
  const { params, config, classes } = model;
  const vl = config.vl, vlParams = params.vl;
  if (vl === undefined || vlParams === undefined) {
    throw new RangeError("the model has no vision–language parts (train a --row other than baseline)");
  }
  const anchors = tf.tidy(() => promptEmbeddings(vlParams, vl, classes).arraySync()) as number[][];
  const vectors: number[][] = [], labels: number[] = [];
  const t = model.tile;
  for (let start = 0; start < tiles.length; start += batch) {
    const group = tiles.slice(start, start + batch);
    const images = new Float32Array(group.length * t * t * 3);
    group.forEach((s, i) => images.set(s.image, i * t * t * 3));
    const [queries, logits, masks] = tf.tidy(() => {
      const out = applyModel(params, config, classes.length, tf.tensor4d(images, [group.length, t, t, 3]));
      const last = out.predictions.at(-1);
      if (last === undefined || out.queries === undefined) throw new Error("the model returned no queries");
      return [out.queries, last.logits, last.masks]; // [B, Q, D], [B, Q, C+1], [B, Q, h, w]
    });
    const [, q, d] = queries.shape;
    const [, , h, w] = masks.shape as [number, number, number, number];
    const values = {
      logits: logits.dataSync() as Float32Array,
      masks: masks.dataSync() as Float32Array,
      shape: { queries: q, classes: classes.length, h, w },
    };
    const rows: number[] = [];
    group.forEach((s, i) => {
      const decoded = decodeTile(values, i, t);
      for (const [p, truthId] of iouMatches(s.instances, decoded.instances)) {
        const label = s.classOf[truthId] as number;
        if (label < 0) continue;
        rows.push(i * q + (decoded.queries[p] as number));
        labels.push(label);
      }
    });
    if (rows.length > 0) {
      const v = tf.tidy(() =>
        embed(tf.gather(tf.reshape(queries, [-1, d]), tf.tensor1d(rows, "int32")) as tf.Tensor2D, vlParams.visual)
          .arraySync()
      );
      vectors.push(...v);
    }
    tf.dispose([queries, logits, masks]);
  }
  return { vectors, labels, anchors, classes, tiles: tiles.length };
};

/** 2-D UMAP layout of points (seeded: the same points give the same layout). */
export const umapLayout = (points: number[][], seed = 0): number[][] => {
  const umap = new UMAP({
    nComponents: 2,
    nNeighbors: Math.max(2, Math.min(15, points.length - 1)),
    minDist: 0.1,
    random: mulberry32(seed),
  });
  return umap.fit(points);
};

const hex = (c: number) => {
  const [r, g, b] = CLASS_COLOURS[c % CLASS_COLOURS.length] as readonly [number, number, number];
  return `#${[r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("")}`;
};

/** Scatter of the layout: queries as dots, class anchors as large labelled diamonds, one colour per class. */
export const embeddingChart = (e: MatchedEmbeddings, layout: number[][]): TopLevelSpec => {
  const n = e.vectors.length;
  const values = layout.map(([x, y], i) => ({
    x,
    y,
    class: i < n ? e.classes[e.labels[i] as number] : e.classes[i - n],
    kind: i < n ? "query" : "class prompt",
  }));
  const colour = {
    field: "class",
    type: "nominal" as const,
    scale: { domain: [...e.classes], range: e.classes.map((_, c) => hex(c)) },
    title: "true class",
  };
  const axis = { title: null, labels: false, ticks: false, grid: false };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "UMAP of matched query embeddings and class text anchors",
      subtitle:
        `${n} queries that found a true nucleus (IoU > 0.5) on ${e.tiles} held-out tiles; diamonds: class prompts`,
    },
    width: 520,
    height: 420,
    data: { values },
    layer: [
      {
        transform: [{ filter: "datum.kind === 'query'" }],
        mark: { type: "circle", size: 14, opacity: 0.55 },
        encoding: {
          x: { field: "x", type: "quantitative", axis },
          y: { field: "y", type: "quantitative", axis },
          color: colour,
        },
      },
      {
        transform: [{ filter: "datum.kind === 'class prompt'" }],
        mark: { type: "point", shape: "diamond", filled: true, size: 420, stroke: "black", strokeWidth: 1.5 },
        encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" }, color: colour },
      },
      {
        transform: [{ filter: "datum.kind === 'class prompt'" }],
        mark: { type: "text", dy: -18, fontSize: 13, fontWeight: "bold" },
        encoding: {
          x: { field: "x", type: "quantitative" },
          y: { field: "y", type: "quantitative" },
          text: { field: "class" },
        },
      },
    ],
  } as TopLevelSpec;
};

/** Share of matched queries whose most similar class anchor (cosine; vectors are unit length) is their true class. */
export const nearestAnchorAccuracy = (e: MatchedEmbeddings): number => {
  if (e.vectors.length === 0) return NaN;
  let right = 0;
  e.vectors.forEach((v, i) => {
    let best = -1, bestDot = -Infinity;
    e.anchors.forEach((a, c) => {
      const dot = a.reduce((s, x, k) => s + x * (v[k] as number), 0);
      if (dot > bestDot) [best, bestDot] = [c, dot];
    });
    if (best === e.labels[i]) right++;
  });
  return right / e.vectors.length;
};
