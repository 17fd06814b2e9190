/**
 * Mask2Former's transformer decoder (Cheng et al., CVPR 2022): learnable query features and
 * positions; per layer masked cross-attention to one feature level (cycling s32 → s16 → s8), then
 * self-attention, then an FFN, each with a residual and post-LayerNorm; predictions (class logits
 * over C+1, mask logits = mask embedding · per-pixel features) before the first layer and after
 * every layer, for deep supervision.
 *
 * Masked attention: a query attends only where its previous mask prediction, resized to the level,
 * has sigmoid ≥ 0.5; the mask is detached from the graph; a query whose mask hides everything
 * attends everywhere (Mask2Former, mask2former_transformer_decoder.py).
 */
import * as tf from "@tensorflow/tfjs";
import { readsSynchronously } from "../backend/tf.ts";
import { hostValues } from "../backend/host_values.ts";
import { bilinearAxis, bilinearMix } from "./decoding.ts";
import {
  type Initializer,
  initLinear,
  initNorm,
  layerNorm,
  linear,
  type LinearParams,
  type NormParams,
} from "./layers.ts";

export interface DecoderConfig {
  readonly d: number; // D: decoder width
  readonly queries: number; // Q
  readonly layers: number;
  readonly heads: number;
  readonly ffn: number; // FFN hidden width
  readonly classes: number; // C (the no-object class is C)
}

export interface AttentionParams<P extends tf.Tensor> {
  readonly q: LinearParams<P>;
  readonly k: LinearParams<P>;
  readonly v: LinearParams<P>;
  readonly out: LinearParams<P>;
}

interface LayerParams<P extends tf.Tensor> {
  readonly cross: AttentionParams<P>;
  readonly crossNorm: NormParams<P>;
  readonly self: AttentionParams<P>;
  readonly selfNorm: NormParams<P>;
  readonly ffn1: LinearParams<P>;
  readonly ffn2: LinearParams<P>;
  readonly ffnNorm: NormParams<P>;
}

export interface DecoderParams<P extends tf.Tensor = tf.Variable> {
  /** learned queries (absent when every call brings its own `StartingQueries`) */
  readonly queryFeat?: P; // [Q, D]
  readonly queryPos?: P; // [Q, D]
  readonly levelEmbed: P; // [3, D]
  readonly layers: ReadonlyArray<LayerParams<P>>;
  readonly norm: NormParams<P>;
  readonly classHead: LinearParams<P>; // D → C + 1
  readonly maskEmbed: ReadonlyArray<LinearParams<P>>; // 3-layer MLP D → D
}

/** One set of predictions. */
export interface Prediction {
  readonly logits: tf.Tensor3D; // [B, Q, C+1]
  readonly masks: tf.Tensor4D; // [B, Q, H/4, W/4] logits
}

export const initAttention = (init: Initializer, d: number): AttentionParams<tf.Variable> => ({
  q: initLinear(init, d, d),
  k: initLinear(init, d, d),
  v: initLinear(init, d, d),
  out: initLinear(init, d, d),
});

export const initDecoder = (init: Initializer, c: DecoderConfig, learnedQueries = true): DecoderParams => ({
  ...(learnedQueries
    ? { queryFeat: init.truncNormal([c.queries, c.d], 1), queryPos: init.truncNormal([c.queries, c.d], 1) }
    : {}),
  levelEmbed: init.truncNormal([3, c.d], 1),
  layers: Array.from({ length: c.layers }, () => ({
    cross: initAttention(init, c.d),
    crossNorm: initNorm(init, c.d),
    self: initAttention(init, c.d),
    selfNorm: initNorm(init, c.d),
    ffn1: initLinear(init, c.d, c.ffn),
    ffn2: initLinear(init, c.ffn, c.d),
    ffnNorm: initNorm(init, c.d),
  })),
  norm: initNorm(init, c.d),
  classHead: initLinear(init, c.d, c.classes + 1),
  maskEmbed: [0, 1, 2].map(() => initLinear(init, c.d, c.d)),
});

/**
 * DETR's 2-D sine encoding of points with normalised coordinates (ys, xs): [N, D], the first half
 * encodes y, the second x; constant, no gradient.
 */
export const sineEncoding = (ys: Float32Array, xs: Float32Array, d: number): tf.Tensor2D => {
  const half = d / 2, out = new Float32Array(ys.length * d);
  for (let n = 0; n < ys.length; n++) {
    const ey = (ys[n] as number) * 2 * Math.PI, ex = (xs[n] as number) * 2 * Math.PI, base = n * d;
    for (let i = 0; i < half / 2; i++) {
      const freq = 1 / 10000 ** ((2 * i) / half);
      out[base + 2 * i] = Math.sin(ey * freq);
      out[base + 2 * i + 1] = Math.cos(ey * freq);
      out[base + half + 2 * i] = Math.sin(ex * freq);
      out[base + half + 2 * i + 1] = Math.cos(ex * freq);
    }
  }
  return tf.tensor2d(out, [ys.length, d]);
};

/** The sine encoding of an h×w grid's cells, row-major: [h·w, D], cell (y, x) at ((y+1)/h, (x+1)/w). */
const sinePositions = (h: number, w: number, d: number): tf.Tensor2D => {
  const ys = new Float32Array(h * w), xs = new Float32Array(h * w);
  for (let i = 0; i < h * w; i++) [ys[i], xs[i]] = [(Math.floor(i / w) + 1) / h, ((i % w) + 1) / w];
  return sineEncoding(ys, xs, d);
};

/**
 * Multi-head attention with 2-D matmuls per head batch: queries [B, Lq, D], keys/values [B, Lk, D],
 * optional additive bias [B, Lq, Lk] (0 or −1e9) shared by the heads.
 */
export const attention = (
  p: AttentionParams<tf.Tensor>,
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  heads: number,
  bias?: tf.Tensor3D,
): tf.Tensor3D => {
  const [b, lq, d] = q.shape, lk = k.shape[1], dh = d / heads;
  const proj = (x: tf.Tensor3D, lp: LinearParams<tf.Tensor>, l: number) =>
    tf.transpose(tf.reshape(linear(tf.reshape(x, [b * l, d]), lp), [b, l, heads, dh]), [0, 2, 1, 3]).reshape([
      b * heads,
      l,
      dh,
    ]) as tf.Tensor3D; // [B·h, L, dh]
  const qh = proj(q, p.q, lq), kh = proj(k, p.k, lk), vh = proj(v, p.v, lk);
  let scores = tf.mul(tf.matMul(qh, kh, false, true), 1 / Math.sqrt(dh)) as tf.Tensor3D; // [B·h, Lq, Lk]
  if (bias !== undefined) {
    scores = tf.reshape(tf.add(tf.reshape(scores, [b, heads, lq, lk]), tf.expandDims(bias, 1)), [b * heads, lq, lk]); // [B·h, Lq, Lk]
  }
  const out = tf.matMul(tf.softmax(scores), vh); // [B·h, Lq, dh]
  const merged = tf.reshape(tf.transpose(tf.reshape(out, [b, heads, lq, dh]), [0, 2, 1, 3]), [b * lq, d]); // [B·Lq, D]
  return tf.reshape(linear(merged as tf.Tensor2D, p.out), [b, lq, d]); // [B, Lq, D]
};

/** Class logits and mask logits (plus the optional mask prior [B, Q, h·w]) from the current query features. */
const predict = (
  p: DecoderParams<tf.Tensor>,
  queries: tf.Tensor3D,
  maskFeatures: tf.Tensor4D,
  maskPrior?: tf.Tensor3D,
): Prediction => {
  const [b, q, d] = queries.shape, [, h, w] = maskFeatures.shape;
  const x = layerNorm(tf.reshape(queries, [b * q, d]) as tf.Tensor2D, p.norm, 1e-5); // [B·Q, D]
  const logits = tf.reshape(linear(x, p.classHead), [b, q, -1]) as tf.Tensor3D; // [B, Q, C+1]
  let e = x;
  p.maskEmbed.forEach((lp, i) => (e = i < 2 ? tf.relu(linear(e, lp)) : linear(e, lp))); // [B·Q, D]
  const pixels = tf.reshape(maskFeatures, [b, h * w, d]); // [B, HW, D]
  const products = tf.matMul(tf.reshape(e, [b, q, d]), pixels, false, true); // [B, Q, HW]
  const masks = maskPrior === undefined ? products : tf.add(products, maskPrior); // [B, Q, HW]
  return { logits, masks: tf.reshape(masks, [b, q, h, w]) };
};

/**
 * The additive attention bias from mask logits [B, Q, H/s, W/s] resized to the level's h × w: 0
 * where sigmoid ≥ 0.5 (logit ≥ 0), −1e9 elsewhere, and 0 everywhere for a query whose mask hides
 * the whole level; detached. From plain numbers where values read synchronously (cheapest on
 * WASM), else as tensor ops (the same values).
 */
export const attentionBias = (masks: tf.Tensor4D, h: number, w: number): tf.Tensor3D => {
  if (readsSynchronously()) return biasFromValues(masks, h, w);
  const channelsLast = tf.transpose(masks, [0, 2, 3, 1]) as tf.Tensor4D; // [B, H/s, W/s, Q]
  return detachedBias(tf.image.resizeBilinear(channelsLast, [h, w])) as tf.Tensor3D; // [B, h, w, Q] → [B, Q, hw]
};

/**
 * The bias from the mask logits' values (read once: planning and point sampling read them too),
 * resized as tf.image.resizeBilinear (no corner alignment, no half-pixel centres) in JS — no
 * channels-last copy of the masks, which took ≈ 15 ms a layer at batch 4.
 */
const biasFromValues = (masks: tf.Tensor4D, h: number, w: number): tf.Tensor3D => {
  const [b, q, mh, mw] = masks.shape, values = hostValues(masks); // [B, Q, H/s, W/s]
  const rows = bilinearAxis(mh, h), cols = bilinearAxis(mw, w);
  const bias = new Float32Array(b * q * h * w), resized = new Float64Array(h * w);
  for (let m = 0; m < b * q; m++) {
    const base = m * mh * mw;
    let any = false;
    for (let y = 0; y < h; y++) {
      const top = base + (rows.lo[y] as number) * mw, bottom = base + (rows.hi[y] as number) * mw;
      const fy = rows.frac[y] as number;
      for (let x = 0; x < w; x++) {
        const l = cols.lo[x] as number, r = cols.hi[x] as number, fx = cols.frac[x] as number;
        const v = bilinearMix(
          values[top + l] as number,
          values[top + r] as number,
          values[bottom + l] as number,
          values[bottom + r] as number,
          fx,
          fy,
        );
        resized[y * w + x] = v;
        if (v >= 0) any = true; // sigmoid ≥ 0.5 ⇔ logit ≥ 0
      }
    }
    for (let i = 0; i < h * w; i++) bias[m * h * w + i] = !any || (resized[i] as number) >= 0 ? 0 : -1e9;
  }
  return tf.tensor3d(bias, [b, q, h * w]);
};

// the same bias on the device; a custom gradient of zeros detaches it (tfjs has no stopGradient)
const detachedBias = tf.customGrad((x, _save) => {
  const resized = x as tf.Tensor4D, [b, h, w, q] = resized.shape;
  const logits = tf.reshape(tf.transpose(resized, [0, 3, 1, 2]), [b, q, h * w]); // [B, Q, hw]
  const visible = tf.cast(tf.greaterEqual(logits, 0), "float32"); // [B, Q, hw]
  const hidesAll = tf.sub(1, tf.max(visible, 2, true)); // [B, Q, 1]
  const value = tf.mul(tf.sub(tf.maximum(visible, hidesAll), 1), 1e9) as tf.Tensor3D; // [B, Q, hw]
  return { value, gradFunc: (_dy: tf.Tensor) => tf.zerosLike(resized) };
});

/**
 * Image-dependent starting queries (centers.ts) instead of the learned ones: content and positions
 * [B, Q, D], and a prior [B, Q, h·w] added to every prediction's mask logits.
 */
export interface StartingQueries {
  readonly content: tf.Tensor3D;
  readonly positions: tf.Tensor3D;
  readonly maskPrior: tf.Tensor3D;
}

/**
 * Runs the decoder; returns the predictions before the first layer and after every layer.
 * `enhance` (IVAAN's SIM) transforms the last layer's queries before its prediction.
 */
export const applyDecoder = (
  p: DecoderParams<tf.Tensor>,
  c: DecoderConfig,
  levels: ReadonlyArray<tf.Tensor4D>,
  maskFeatures: tf.Tensor4D,
  start?: StartingQueries,
  enhance?: (queries: tf.Tensor3D) => tf.Tensor3D,
): Prediction[] => {
  const b = maskFeatures.shape[0];
  const memories = levels.map((lv, i) => {
    const [, h, w, d] = lv.shape;
    const pos = tf.add(sinePositions(h, w, d), tf.slice(p.levelEmbed, [i, 0], [1, d])); // [hw, D]
    return {
      h,
      w,
      value: tf.reshape(lv, [b, h * w, d]) as tf.Tensor3D,
      key: tf.add(tf.reshape(lv, [b, h * w, d]), pos) as tf.Tensor3D,
    };
  });
  const learned = (t: tf.Tensor | undefined) => {
    if (t === undefined) throw new RangeError("applyDecoder: a decoder without learned queries needs starting queries");
    return tf.tile(tf.expandDims(t, 0), [b, 1, 1]) as tf.Tensor3D; // [B, Q, D]
  };
  const queryPos = start?.positions ?? learned(p.queryPos); // [B, Q, D]
  let queries = start?.content ?? learned(p.queryFeat); // [B, Q, D]
  const prior = start?.maskPrior;
  const outputs: Prediction[] = [predict(p, queries, maskFeatures, prior)];
  const norm = (x: tf.Tensor3D, np: NormParams<tf.Tensor>) => layerNorm(x, np, 1e-5);
  p.layers.forEach((lp, l) => {
    const m = memories[l % memories.length] as (typeof memories)[number];
    const bias = attentionBias((outputs[outputs.length - 1] as Prediction).masks, m.h, m.w); // [B, Q, hw]
    const cross = attention(lp.cross, tf.add(queries, queryPos) as tf.Tensor3D, m.key, m.value, c.heads, bias);
    queries = norm(tf.add(queries, cross) as tf.Tensor3D, lp.crossNorm); // [B, Q, D]
    const qk = tf.add(queries, queryPos) as tf.Tensor3D;
    queries = norm(tf.add(queries, attention(lp.self, qk, qk, queries, c.heads)) as tf.Tensor3D, lp.selfNorm); // [B, Q, D]
    const [, q, d] = queries.shape;
    const hidden = tf.relu(linear(tf.reshape(queries, [b * q, d]), lp.ffn1)); // [B·Q, F]
    queries = norm(tf.add(queries, tf.reshape(linear(hidden, lp.ffn2), [b, q, d])) as tf.Tensor3D, lp.ffnNorm); // [B, Q, D]
    if (enhance !== undefined && l === p.layers.length - 1) queries = enhance(queries); // [B, Q, D]
    outputs.push(predict(p, queries, maskFeatures, prior));
  });
  return outputs;
};
