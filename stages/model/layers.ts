/**
 * Small building blocks shared by the model modules: linear layers, LayerNorm over the channel
 * axis, exact GELU, 2-D convolutions in NHWC, and seeded initialisers. Parameters are plain
 * records of tensors (tf.Variable when trainable), applied by pure functions.
 */
import * as tf from "@tensorflow/tfjs";
import { mulberry32 } from "../data/random.ts";

/** A linear layer, stored as `x · weight + bias` (weight `[in, out]`). */
export interface LinearParams<P extends tf.Tensor = tf.Variable> {
  readonly weight: P; // [in, out]
  readonly bias?: P; // [out]
}

/** LayerNorm over the channel axis (also SAM's LayerNorm2d, since we are NHWC). */
export interface NormParams<P extends tf.Tensor = tf.Variable> {
  readonly weight: P; // [C]
  readonly bias: P; // [C]
}

/** A convolution with HWIO weights. */
export interface ConvParams<P extends tf.Tensor = tf.Variable> {
  readonly weight: P; // [kh, kw, in, out]
  readonly bias?: P; // [out]
}

/** Seeded normal / truncated-normal / He initialisers that own their tensors as variables. */
export const initializer = (seed: number) => {
  const rand = mulberry32(seed);
  const normal = () => {
    // Box–Muller from the seeded uniform stream
    const u = Math.max(rand(), 1e-12), v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const fill = (shape: number[], sample: () => number) =>
    tf.variable(tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, sample), shape), true);
  return {
    /** N(0, σ²) truncated at ±2σ */
    truncNormal: (shape: number[], sigma = 0.02) =>
      fill(shape, () => {
        for (;;) {
          const z = normal();
          if (Math.abs(z) <= 2) return z * sigma;
        }
      }),
    /** He normal for a fan-in */
    he: (shape: number[], fanIn: number) => fill(shape, () => normal() * Math.sqrt(2 / fanIn)),
    zeros: (shape: number[]) => tf.variable(tf.zeros(shape), true),
    ones: (shape: number[]) => tf.variable(tf.ones(shape), true),
  };
};
export type Initializer = ReturnType<typeof initializer>;

/**
 * Variables from tfjs's seeded truncated normal (one seed per call: `seed`, `seed + 1`, …), zeros
 * and ones — the SAM encoder's and the CLIP text tower's initialisers, so that their parameters are
 * deterministic in `seed` alone.
 */
export const seededVariables = (seed: number) => {
  let nextSeed = seed;
  const own = (t: tf.Tensor): tf.Variable => {
    const v = tf.variable(t, true);
    t.dispose();
    return v;
  };
  return {
    /**
     * truncated normal N(0, std²) cut at 2σ. tfjs reads a falsy seed as "none" and draws one from Math.random, so
     * seed 0 (every run's default) is passed as 0.5: the first tensor of a seed-0 model was random in every process,
     * and two runs of the same command differed (tests/train_kill_test.ts found it). The other seeds are integers, so
     * 0.5 is no other call's seed.
     */
    normal: (shape: number[], std: number) => {
      const s = nextSeed++;
      return own(tf.truncatedNormal(shape, 0, std, "float32", s === 0 ? 0.5 : s));
    },
    zeros: (shape: number[]) => own(tf.zeros(shape)),
    ones: (shape: number[]) => own(tf.ones(shape)),
  };
};

export const initLinear = (init: Initializer, nIn: number, nOut: number, bias = true): LinearParams => ({
  weight: init.truncNormal([nIn, nOut]),
  ...(bias ? { bias: init.zeros([nOut]) } : {}),
});

export const initNorm = (init: Initializer, c: number): NormParams => ({
  weight: init.ones([c]),
  bias: init.zeros([c]),
});

export const initConv = (init: Initializer, k: number, nIn: number, nOut: number, bias = true): ConvParams => ({
  weight: init.he([k, k, nIn, nOut], k * k * nIn),
  ...(bias ? { bias: init.zeros([nOut]) } : {}),
});

/** `x · W + b` on 2-D activations (BACKEND-NOTES: keep matmuls 2-D). */
export const linear = (x: tf.Tensor2D, p: LinearParams<tf.Tensor>): tf.Tensor2D => {
  const y: tf.Tensor2D = tf.matMul(x, p.weight as tf.Tensor2D); // [M, out]
  return p.bias === undefined ? y : tf.add<tf.Tensor2D>(y, p.bias); // [M, out]
};

/** LayerNorm over the last axis (two-pass variance, as PyTorch). */
export const layerNorm = <T extends tf.Tensor>(x: T, p: NormParams<tf.Tensor>, eps: number): T => {
  const mean = tf.mean(x, -1, true); // [..., 1]
  const centred = tf.sub(x, mean); // [..., C]
  const variance = tf.mean(tf.square(centred), -1, true); // [..., 1]
  return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, eps))), p.weight), p.bias); // [..., C]
};

/** Exact GELU, 0.5·x·(1 + erf(x/√2)) (PyTorch nn.GELU default). */
export const gelu = <T extends tf.Tensor>(x: T): T =>
  tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)) as T;

/** A 2-D convolution (NHWC, HWIO weights). */
export const conv = (
  x: tf.Tensor4D,
  p: ConvParams<tf.Tensor>,
  stride = 1,
  pad: "same" | "valid" = "same",
): tf.Tensor4D => {
  const y = tf.conv2d(x, p.weight as tf.Tensor4D, stride, pad); // [B, H', W', out]
  return p.bias === undefined ? y : tf.add<tf.Tensor4D>(y, p.bias);
};

/** Applies `f` to [B, H, W, C] as [B·H·W, C] (2-D matmuls) and restores the spatial shape. */
export const pointwise = (x: tf.Tensor4D, f: (x2: tf.Tensor2D) => tf.Tensor2D): tf.Tensor4D => {
  const [b, h, w, c] = x.shape;
  const y = f(tf.reshape(x, [b * h * w, c])); // [B·H·W, C']
  return tf.reshape(y, [b, h, w, y.shape[1]]); // [B, H, W, C']
};

/** Every tensor of a nested parameter record, in a stable (key) order. */
export const parameterList = (params: unknown): tf.Tensor[] => {
  if (params instanceof tf.Tensor) return [params];
  if (Array.isArray(params)) return params.flatMap(parameterList);
  if (typeof params === "object" && params !== null) {
    return Object.keys(params).sort().flatMap((k) => parameterList((params as Record<string, unknown>)[k]));
  }
  return [];
};
