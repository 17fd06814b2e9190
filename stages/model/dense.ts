/**
 * Dense auxiliary supervision on the pixel decoder's mask features (the `conv` preset): a 1×1 head
 * predicts, at the mask stride, a foreground logit and HoVer-Net's horizontal and vertical
 * distance maps (each nucleus's pixels' offsets from its centroid, scaled to [−1, 1] on each side).
 * Mask2Former's losses supervise a few thousand sampled points of matched queries; these maps
 * supervise every cell, which shapes the mask features faster from scratch, and the foreground
 * probability is a decoding aid (decoding.ts: pixels and nuclei it calls background are dropped).
 *
 *   maskFeatures [B, h, w, D] ─ 1×1 ─► dense [B, h, w, 3]: foreground logit, horizontal, vertical
 *
 * Losses (HoVer-Net, Graham et al. 2019, §3.3): BCE + dice on the foreground, MSE on the distance
 * maps over every cell (0 on background).
 */
import * as tf from "@tensorflow/tfjs";
import { conv, type ConvParams, type Initializer } from "./layers.ts";
import { softplus } from "./softplus.ts";

export interface DenseParams<P extends tf.Tensor = tf.Variable> {
  readonly head: ConvParams<P>; // 1×1, D → 3
}

export const initDense = (init: Initializer, d: number): DenseParams => ({
  head: { weight: init.truncNormal([1, 1, d, 3], 0.01), bias: init.zeros([3]) },
});

/** The dense maps [B, h, w, 3] (foreground logit, horizontal, vertical) of mask features [B, h, w, D]. */
export const denseMaps = (p: DenseParams<tf.Tensor>, maskFeatures: tf.Tensor4D): tf.Tensor4D =>
  conv(maskFeatures, p.head); // [B, h, w, 3]

/**
 * Targets at `stride` of an H×W instance map: `[h·w·3]` (foreground fraction of the cell, mean
 * horizontal and vertical distance), h = H/stride. Per nucleus, x − cx is divided by its largest
 * value on each side of the centroid (HoVer-Net's normalisation), so both sides reach ±1.
 */
export const denseTargets = (instances: ArrayLike<number>, height: number, width: number, stride: number) => {
  const full = new Float32Array(height * width * 3);
  const stats = new Map<number, { sy: number; sx: number; n: number }>();
  for (let p = 0; p < height * width; p++) {
    const id = instances[p] as number;
    if (id <= 0) continue;
    const s = stats.get(id) ?? { sy: 0, sx: 0, n: 0 };
    s.sy += Math.floor(p / width), s.sx += p % width, s.n++;
    stats.set(id, s);
  }
  // per nucleus, the largest offset on each side: [left, right, up, down]
  const reach = new Map<number, [number, number, number, number]>();
  for (let p = 0; p < height * width; p++) {
    const id = instances[p] as number, s = stats.get(id);
    if (s === undefined) continue;
    const dx = p % width - s.sx / s.n, dy = Math.floor(p / width) - s.sy / s.n;
    const r = reach.get(id) ?? [0, 0, 0, 0];
    if (-dx > r[0]) r[0] = -dx;
    if (dx > r[1]) r[1] = dx;
    if (-dy > r[2]) r[2] = -dy;
    if (dy > r[3]) r[3] = dy;
    reach.set(id, r);
  }
  for (let p = 0; p < height * width; p++) {
    const id = instances[p] as number, s = stats.get(id), r = reach.get(id);
    if (s === undefined || r === undefined) continue;
    const dx = p % width - s.sx / s.n, dy = Math.floor(p / width) - s.sy / s.n;
    full[p * 3] = 1;
    full[p * 3 + 1] = dx < 0 ? (r[0] > 0 ? dx / r[0] : 0) : (r[1] > 0 ? dx / r[1] : 0);
    full[p * 3 + 2] = dy < 0 ? (r[2] > 0 ? dy / r[2] : 0) : (r[3] > 0 ? dy / r[3] : 0);
  }
  if (stride === 1) return full;
  const h = Math.floor(height / stride), w = Math.floor(width / stride), area = stride * stride;
  const out = new Float32Array(h * w * 3);
  for (let y = 0; y < h * stride; y++) {
    for (let x = 0; x < w * stride; x++) {
      const from = (y * width + x) * 3, to = (Math.floor(y / stride) * w + Math.floor(x / stride)) * 3;
      for (let c = 0; c < 3; c++) out[to + c] = (out[to + c] as number) + (full[from + c] as number) / area;
    }
  }
  return out;
};

/** The dense losses of predicted maps [B, h, w, 3] against targets [B, h, w, 3]: BCE, dice (foreground) and MSE (distances). */
export const denseLoss = (
  predicted: tf.Tensor4D,
  targets: tf.Tensor4D,
): { bce: tf.Scalar; dice: tf.Scalar; distance: tf.Scalar } =>
  tf.tidy(() => {
    const [b, h, w] = predicted.shape;
    const logits = tf.reshape(tf.slice(predicted, [0, 0, 0, 0], [b, h, w, 1]), [b, h * w]); // [B, h·w]
    const fg = tf.reshape(tf.slice(targets, [0, 0, 0, 0], [b, h, w, 1]), [b, h * w]); // [B, h·w]
    // BCE with logits: softplus(x) − t·x
    const bce = tf.mean(tf.sub(softplus(logits), tf.mul(fg, logits))) as tf.Scalar;
    const p = tf.sigmoid(logits);
    const inter = tf.sum(tf.mul(p, fg), 1), total = tf.add(tf.sum(p, 1), tf.sum(fg, 1)); // [B]
    const dice = tf.mean(tf.sub(1, tf.div(tf.add(tf.mul(inter, 2), 1), tf.add(total, 1)))) as tf.Scalar;
    const hv = tf.slice(predicted, [0, 0, 0, 1], [b, h, w, 2]),
      hvTarget = tf.slice(targets, [0, 0, 0, 1], [b, h, w, 2]);
    const distance = tf.mean(tf.square(tf.sub(hv, hvTarget))) as tf.Scalar;
    return { bce, dice, distance };
  });
