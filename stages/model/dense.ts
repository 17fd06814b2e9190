/**
 * Dense auxiliary supervision on the pixel decoder's mask features (the `conv` preset): a small
 * branch (two 3×3 convs, then 1×1) predicts, at the mask stride, a foreground logit and HoVer-Net's
 * horizontal and vertical distance maps (each nucleus's pixels' offsets from its centroid, scaled
 * to [−1, 1] on each side).
 * Mask2Former's losses supervise a few thousand sampled points of matched queries; these maps
 * supervise every cell, which shapes the mask features faster from scratch, and the foreground
 * probability is a decoding aid (decoding.ts: pixels and nuclei it calls background are dropped).
 *
 *   maskFeatures [B, h, w, D] ─ 3×3, ReLU ─ 3×3, ReLU ─► [B, h, w, C] ─ 1×1 ─► dense [B, h, w, 3]
 *   (foreground logit, horizontal, vertical; without the branch, C = 0, the 1×1 head reads D)
 *
 * Why the branch: a 1×1 head makes the distance maps a per-pixel linear read of features shared
 * with the masks, and measured on CoNSeP they came out too smooth to part touching nuclei (the
 * `dense` decoding's PQ 0.19); HoVer-Net gives each map a decoder of its own.
 *
 * Losses (HoVer-Net, Graham et al. 2019, §3.3): BCE + dice on the foreground, MSE on the distance
 * maps over every cell (0 on background), and MSGE: the squared error of the maps' gradients
 * (∂h/∂x, ∂v/∂y by central differences) over the nuclei's cells, which is what sharpens the jump
 * between two touching nuclei (the paper weights it 2, the others 1).
 */
import * as tf from "@tensorflow/tfjs";
import { conv, type ConvParams, type Initializer } from "./layers.ts";
import { softplus } from "./softplus.ts";

export interface DenseParams<P extends tf.Tensor = tf.Variable> {
  /** the branch's two 3×3 convs, D → C → C (absent: the 1×1 head reads the mask features) */
  readonly branch?: readonly [ConvParams<P>, ConvParams<P>];
  readonly head: ConvParams<P>; // 1×1, C (or D) → 3
}

/**
 * The dense head on D-channel mask features, with a branch of `branch` channels (0: none) and `out` outputs (3: the
 * foreground and distance maps; C + 1 for the type map of `typeTargets`).
 */
export const initDense = (init: Initializer, d: number, branch = 0, out = 3): DenseParams => {
  const he = (k: number, from: number, to: number): ConvParams => ({
    weight: init.he([k, k, from, to], k * k * from),
    bias: init.zeros([to]),
  });
  return {
    ...(branch > 0 ? { branch: [he(3, d, branch), he(3, branch, branch)] as const } : {}),
    head: { weight: init.truncNormal([1, 1, branch > 0 ? branch : d, out], 0.01), bias: init.zeros([out]) },
  };
};

/**
 * The dense maps [B, h, w, 3] (foreground logit, horizontal, vertical) of mask features [B, h, w, D]; with the type
 * head's parameters, the type logits [B, h, w, C + 1].
 */
export const denseMaps = (p: DenseParams<tf.Tensor>, maskFeatures: tf.Tensor4D): tf.Tensor4D => {
  let x = maskFeatures;
  for (const layer of p.branch ?? []) x = tf.relu(conv(x, layer)); // [B, h, w, C]
  return conv(x, p.head); // [B, h, w, 3]
};

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

/**
 * The dense losses of predicted maps [B, h, w, 3] against targets [B, h, w, 3]: BCE, dice
 * (foreground), MSE (distances) and MSGE (the distances' gradients on the nuclei).
 */
export const denseLoss = (
  predicted: tf.Tensor4D,
  targets: tf.Tensor4D,
): { bce: tf.Scalar; dice: tf.Scalar; distance: tf.Scalar; gradient: tf.Scalar } =>
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
    const gradient = gradientError(predicted, targets);
    return { bce, dice, distance, gradient };
  });

/**
 * MSGE: mean over the nuclei's cells of (∂h/∂x − ∂h′/∂x)² + (∂v/∂y − ∂v′/∂y)² (′: the target), central differences
 * on the interior cells; a cell counts by its foreground fraction (the target's channel 0).
 */
const gradientError = (predicted: tf.Tensor4D, targets: tf.Tensor4D): tf.Scalar =>
  tf.tidy(() => {
    const [b, h, w] = predicted.shape;
    if (h < 3 || w < 3) return tf.scalar(0);
    // channel c differenced along `axis` (1: y, 2: x) on the interior: [B, h−2, w−2, 1]
    const diff = (t: tf.Tensor4D, c: number, axis: 1 | 2): tf.Tensor4D => {
      const at = (dy: number, dx: number) => tf.slice(t, [0, 1 + dy, 1 + dx, c], [b, h - 2, w - 2, 1]);
      return axis === 2 ? tf.sub(at(0, 1), at(0, -1)) : tf.sub(at(1, 0), at(-1, 0));
    };
    const weight = tf.slice(targets, [0, 1, 1, 0], [b, h - 2, w - 2, 1]); // [B, h−2, w−2, 1]
    const squared = tf.add(
      tf.square(tf.sub(diff(predicted, 1, 2), diff(targets, 1, 2))),
      tf.square(tf.sub(diff(predicted, 2, 1), diff(targets, 2, 1))),
    ); // [B, h−2, w−2, 1]
    return tf.div(tf.sum(tf.mul(squared, weight)), tf.add(tf.sum(weight), 1e-6)) as tf.Scalar;
  });

/**
 * The type map's targets at `stride` of an H×W map of kept instances (1…N, 0 background) whose classes are
 * `classes` (instance k + 1 has class classes[k], in 0…C − 1): `[h·w·(C + 1)]`, each cell's fraction of background
 * (channel 0) and of each class's nuclei (channel c + 1). HoVer-Net's nuclear-type branch, at the mask stride: a
 * per-pixel class supervised on every cell, which learns types from far more samples than the matched queries.
 */
export const typeTargets = (
  instances: ArrayLike<number>,
  classes: ArrayLike<number>,
  height: number,
  width: number,
  stride: number,
  classCount: number,
): Float32Array => {
  const h = Math.floor(height / stride), w = Math.floor(width / stride), k = classCount + 1, area = stride * stride;
  const out = new Float32Array(h * w * k);
  for (let y = 0; y < h * stride; y++) {
    for (let x = 0; x < w * stride; x++) {
      const id = instances[y * width + x] as number;
      const c = id > 0 ? (classes[id - 1] as number) + 1 : 0;
      if (!(c >= 0 && c < k)) throw new RangeError(`typeTargets: instance ${id} has class ${c - 1} of ${classCount}`);
      const to = (Math.floor(y / stride) * w + Math.floor(x / stride)) * k + c;
      out[to] = (out[to] as number) + 1 / area;
    }
  }
  return out;
};

/**
 * The type map's loss: cross-entropy of logits [B, h, w, C + 1] against the soft targets of `typeTargets`
 * [B, h, w, C + 1], the mean over cells, plus the mean over the classes present in the batch of
 * 1 − dice (HoVer-Net's NC branch: CE + dice), which keeps rare classes from being drowned by background.
 */
export const typeLoss = (logits: tf.Tensor4D, targets: tf.Tensor4D): tf.Scalar =>
  tf.tidy(() => {
    const [b, h, w, k] = logits.shape;
    const flat = tf.reshape(logits, [b * h * w, k]), t = tf.reshape(targets, [b * h * w, k]); // [N, C+1]
    const logP = tf.logSoftmax(flat); // [N, C+1]
    const ce = tf.mean(tf.neg(tf.sum(tf.mul(t, logP), 1))) as tf.Scalar;
    const p = tf.exp(logP);
    const inter = tf.sum(tf.mul(p, t), 0), total = tf.add(tf.sum(p, 0), tf.sum(t, 0)); // [C+1]
    const present = tf.cast(tf.greater(tf.sum(t, 0), 0), "float32"); // [C+1]
    const dice = tf.sub(1, tf.div(tf.add(tf.mul(inter, 2), 1), tf.add(total, 1))); // [C+1]
    const meanDice = tf.div(tf.sum(tf.mul(dice, present)), tf.maximum(tf.sum(present), 1)) as tf.Scalar;
    return tf.add(ce, meanDice) as tf.Scalar;
  });
