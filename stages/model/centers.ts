/**
 * Nucleus-centre proposals: where the decoder's queries start (the `tiny` preset's choice).
 *
 * Why: Mask2Former's learned queries must each discover, from scratch, which of ≈ 70 look-alike
 * nuclei of a tile is theirs; on 2 CPU cores that takes far longer than the training budget. Here
 * a 1×1 head on the stride-4 mask features predicts a centre heat map (CenterNet's Gaussian
 * targets and penalty-reduced focal loss — dense supervision, so it learns in a few hundred
 * steps); the K strongest local maxima become the queries (content = the mask feature there,
 * position = the sine encoding of the peak), as Mask DINO's query selection does; and every
 * query's mask logits get a locality prior −γ·d² (d: distance to its peak in stride-4 cells,
 * γ learned), which separates neighbouring nuclei from the first step, as CondInst's relative
 * coordinates do. Matching, losses and decoding are unchanged: the queries stay a set.
 *
 * Mental model: `centerLogits` → `selectPeaks` (a decision: plain indices, not differentiated)
 * → `proposalQueries` (differentiable gather + projection, constant positions, the prior).
 */
import * as tf from "@tensorflow/tfjs";
import { conv, type ConvParams, type Initializer, initLinear, linear, type LinearParams } from "./layers.ts";
import { sineEncoding } from "./transformer_decoder.ts";

/** The default stride of the centre heat map and its targets (ModelConfig.centerStride: 2 reads the fine features). */
export const CENTER_STRIDE = 4;

export interface CenterParams<P extends tf.Tensor = tf.Variable> {
  /**
   * two 3×3 convs D → C → C before the head (the `conv` preset; absent: the 1×1 head reads the
   * features): on CoNSeP the 1×1 head's peaks were weak inside clumps of touching nuclei, the
   * largest loss of PQ (merged nuclei), and a head of its own sees each nucleus's neighbourhood
   */
  readonly branch?: readonly [ConvParams<P>, ConvParams<P>];
  readonly head: ConvParams<P>; // 1×1, C (or D) → 1 (centre logit)
  readonly content: LinearParams<P>; // D → D, mask feature at a peak → query content
  readonly logLocality: P; // [1] log γ of the prior −γ·d²
}

// CenterNet's heat-map bias: sigmoid(−2.19) ≈ 0.1 everywhere, with small head weights (σ 0.01, as
// FCOS/RetinaNet's classification heads) so that the focal loss starts small instead of at 10²–10³
// and the clipped gradient of the first steps is not spent on the heat map alone;
// γ = 1/(2·σ²) with σ = 12 px (3 stride-4 cells, 6 stride-2 cells)
const HEAD_BIAS = -2.19, HEAD_SIGMA = 0.01, LOCALITY_SIGMA_PX = 12;

/**
 * The centre head on D-channel features at `stride` (the heat map's, 4 or 2), with a branch of `branch` channels
 * (0: none).
 */
export const initCenters = (init: Initializer, d: number, branch = 0, stride = CENTER_STRIDE): CenterParams => {
  const he = (from: number, to: number): ConvParams => ({
    weight: init.he([3, 3, from, to], 9 * from),
    bias: init.zeros([to]),
  });
  return {
    ...(branch > 0 ? { branch: [he(d, branch), he(branch, branch)] as const } : {}),
    head: {
      weight: init.truncNormal([1, 1, branch > 0 ? branch : d, 1], HEAD_SIGMA),
      bias: tf.variable(tf.fill([1], HEAD_BIAS), true),
    },
    content: initLinear(init, d, d),
    logLocality: tf.variable(tf.fill([1], Math.log(1 / (2 * (LOCALITY_SIGMA_PX / stride) ** 2))), true),
  };
};

/** Centre logits of every cell: [B, h, w] from features [B, h, w, D] (stride 4, or 2 for fine centres). */
export const centerLogits = (p: CenterParams<tf.Tensor>, maskFeatures: tf.Tensor4D): tf.Tensor3D => {
  let x = maskFeatures;
  for (const layer of p.branch ?? []) x = tf.relu(conv(x, layer)); // [B, h, w, C]
  return tf.squeeze(conv(x, p.head), [3]) as tf.Tensor3D; // [B, h, w]
};

/** Chosen cells: flat indices into h·w and (y, x) in cells, `[B·K]` and `[B·K·2]`, image-major. */
export interface Peaks {
  readonly cells: Int32Array;
  readonly yx: Float32Array;
}

/**
 * The `k` best local maxima (3×3, ties kept) of each image's logits, strongest first; when an
 * image has fewer than `k` maxima the strongest other cells fill the rest. Reads values: call it
 * only where no gradient is needed through the choice.
 */
export const selectPeaks = (logits: tf.Tensor3D, k: number): Peaks => {
  const [b, h, w] = logits.shape, values = logits.dataSync();
  if (k > h * w) throw new RangeError(`selectPeaks: ${k} queries need at least as many cells, got ${h}×${w}`);
  const cells = new Int32Array(b * k), yx = new Float32Array(b * k * 2);
  for (let bi = 0; bi < b; bi++) {
    const at = (y: number, x: number) => values[bi * h * w + y * w + x] as number;
    const isPeak = (y: number, x: number) => {
      const v = at(y, x);
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy, xx = x + dx;
          if (yy >= 0 && yy < h && xx >= 0 && xx < w && at(yy, xx) > v) return false;
        }
      }
      return true;
    };
    const order = Array.from({ length: h * w }, (_, i) => i);
    const peak = order.map((i) => isPeak(Math.floor(i / w), i % w));
    // peaks first, then by logit (descending), then by index for determinism
    order.sort((i, j) =>
      Number(peak[j]) - Number(peak[i]) || at(Math.floor(j / w), j % w) - at(Math.floor(i / w), i % w) || i - j
    );
    for (let q = 0; q < k; q++) {
      const cell = order[q] as number;
      cells[bi * k + q] = cell;
      yx[(bi * k + q) * 2] = Math.floor(cell / w);
      yx[(bi * k + q) * 2 + 1] = cell % w;
    }
  }
  return { cells, yx };
};

/**
 * The queries from chosen peaks: content [B, K, D] (projected features of the centre grid,
 * differentiable), positions [B, K, D] (sine encoding of the peak, constant) and the mask prior
 * [B, K, mh·mw] on the mask grid `maskSize` (a multiple of the centre grid): −γ·d², d in
 * centre-grid cells between the peak and each mask cell's centre, differentiable in γ.
 */
export const proposalQueries = (
  p: CenterParams<tf.Tensor>,
  maskFeatures: tf.Tensor4D,
  peaks: Peaks,
  k: number,
  maskSize: readonly [number, number] = [maskFeatures.shape[1], maskFeatures.shape[2]],
): { content: tf.Tensor3D; positions: tf.Tensor3D; maskPrior: tf.Tensor3D } => {
  const [b, h, w, d] = maskFeatures.shape, [mh, mw] = maskSize, fy = mh / h, fx = mw / w;
  const flat = Int32Array.from(peaks.cells, (cell, i) => Math.floor(i / k) * h * w + cell);
  const picked = tf.gather(tf.reshape(maskFeatures, [b * h * w, d]), tf.tensor1d(flat, "int32")); // [B·K, D]
  const content = tf.reshape(linear(picked as tf.Tensor2D, p.content), [b, k, d]) as tf.Tensor3D; // [B, K, D]
  const ys = new Float32Array(b * k), xs = new Float32Array(b * k);
  for (let i = 0; i < b * k; i++) {
    ys[i] = ((peaks.yx[2 * i] as number) + 1) / h; // the normalisation of the levels' sine positions
    xs[i] = ((peaks.yx[2 * i + 1] as number) + 1) / w;
  }
  const positions = tf.reshape(sineEncoding(ys, xs, d), [b, k, d]) as tf.Tensor3D; // [B, K, D]
  const squared = new Float32Array(b * k * mh * mw);
  for (let i = 0; i < b * k; i++) {
    const py = peaks.yx[2 * i] as number, px = peaks.yx[2 * i + 1] as number;
    for (let y = 0; y < mh; y++) {
      const dy = (y + 0.5) / fy - 0.5 - py; // mask cell centre in centre-grid cells
      for (let x = 0; x < mw; x++) squared[(i * mh + y) * mw + x] = dy ** 2 + ((x + 0.5) / fx - 0.5 - px) ** 2;
    }
  }
  const gamma = tf.exp(p.logLocality); // [1]
  const maskPrior = tf.mul(tf.neg(tf.tensor3d(squared, [b, k, mh * mw])), gamma) as tf.Tensor3D; // [B, K, mh·mw]
  return { content, positions, maskPrior };
};

/**
 * CenterNet's targets on the stride-`stride` grid of an H×W instance map: each instance puts a
 * Gaussian at its centroid (σ = max(0.5, r/3) cells, r its equivalent radius) and exactly 1 at the
 * cell holding the centroid; overlapping Gaussians keep the maximum. Returns `[h·w]`, h = ⌈H/stride⌉.
 */
export const centerTargets = (instances: ArrayLike<number>, height: number, width: number, stride: number) => {
  const h = Math.ceil(height / stride), w = Math.ceil(width / stride);
  const sums = new Map<number, [number, number, number]>(); // id → [Σy, Σx, area]
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const id = instances[y * width + x] as number;
      if (id <= 0) continue;
      const s = sums.get(id) ?? [0, 0, 0];
      s[0] += y, s[1] += x, s[2] += 1;
      sums.set(id, s);
    }
  }
  const out = new Float32Array(h * w);
  for (const [sy, sx, area] of sums.values()) {
    // pixel centres → cell coordinates: pixel p covers cell ⌊p/stride⌋, centre at (p + 0.5)/stride − 0.5
    const cy = (sy / area + 0.5) / stride - 0.5, cx = (sx / area + 0.5) / stride - 0.5;
    const sigma = Math.max(0.5, Math.sqrt(area / Math.PI) / stride / 3), reach = Math.ceil(3 * sigma);
    const py = Math.min(h - 1, Math.max(0, Math.round(cy))), px = Math.min(w - 1, Math.max(0, Math.round(cx)));
    for (let y = Math.max(0, py - reach); y <= Math.min(h - 1, py + reach); y++) {
      for (let x = Math.max(0, px - reach); x <= Math.min(w - 1, px + reach); x++) {
        const g = Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma * sigma));
        if (g > (out[y * w + x] as number)) out[y * w + x] = g;
      }
    }
    out[py * w + px] = 1;
  }
  return out;
};

/**
 * CenterNet's penalty-reduced focal loss (α = 2, β = 4) of logits [B, h, w] against targets
 * [B, h, w]: −Σ [t = 1]·(1−p)^α·log p + [t < 1]·(1−t)^β·p^α·log(1−p), over the number of centres
 * (at least 1).
 */
export const centerFocalLoss = (logits: tf.Tensor3D, targets: tf.Tensor3D): tf.Scalar =>
  tf.tidy(() => {
    const p = tf.sigmoid(logits), logP = tf.neg(tf.softplus(tf.neg(logits))), log1P = tf.neg(tf.softplus(logits));
    const positive = tf.cast(tf.greaterEqual(targets, 1), "float32"); // [B, h, w]
    const pos = tf.mul(tf.mul(positive, tf.square(tf.sub(1, p))), logP);
    const negWeight = tf.mul(tf.sub(1, positive), tf.pow(tf.sub(1, targets), 4));
    const neg = tf.mul(tf.mul(negWeight, tf.square(p)), log1P);
    const count = tf.maximum(tf.sum(positive), 1);
    return tf.div(tf.neg(tf.sum(tf.add(pos, neg))), count) as tf.Scalar;
  });
