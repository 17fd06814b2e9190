/**
 * Alignment losses: hand-computed values on tiny cases, a float64 re-computation from the formulas
 * on random inputs, gradients against float64 central differences (w.r.t. v, the text embeddings,
 * the category tokens, the features and projection through `embed`), the empty cases, the
 * background group's exclusion, and a flat tensor count.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { mulberry32, type Rng } from "../data/random.ts";
import { initializer } from "./layers.ts";
import {
  alignmentLoss,
  attributeLoss,
  type AttributeTarget,
  categoryCentreLoss,
  embed,
  fixedPromptLoss,
  initProjection,
  l2Normalize,
} from "./alignment.ts";

await tf.setBackend("cpu");

const value = (t: tf.Tensor): number => t.dataSync()[0] as number;
const close = (got: number, want: number, tol: number, what: string) =>
  assert.ok(Math.abs(got - want) <= tol, `${what}: ${got} vs ${want}`);
/** Runs `f` and returns its scalar's value, disposing it. */
const scalar = (f: () => tf.Scalar): number => {
  const s = f(), x = value(s);
  s.dispose();
  return x;
};

// ---------------------------------------------------------------------------------------------
// hand-computed cases (E = 2, unit vectors, so every cosine is a short product)

Deno.test("embed [[3, 4], [0, 0]] with identity projection → [[0.6, 0.8], [0, 0]] and a finite gradient at 0", () => {
  const x = tf.tensor2d([[3, 4], [0, 0]]); // [N=2, D=2]
  const projection = { weight: tf.eye(2) as tf.Tensor2D }; // [D, E]
  const v = embed(x, projection); // [2, 2]
  // ‖(3, 4)‖ = 5; the zero row is divided by ε and stays 0
  assert.deepEqual(Array.from(v.dataSync()), [0.6, 0.8, 0, 0].map(Math.fround));
  const g = tf.grad((t: tf.Tensor) => tf.sum(embed(t as tf.Tensor2D, projection)))(x); // [2, 2]
  const grad = Array.from(g.dataSync());
  // d/dx Σ x/‖x‖ at (3, 4): (1 − x·Σx/‖x‖²)/‖x‖ = (1 − 7·(3, 4)/25)/5 = (4/125, −3/125)
  close(grad[0] as number, 4 / 125, 1e-7, "∂/∂x0");
  close(grad[1] as number, -3 / 125, 1e-7, "∂/∂x1");
  assert.ok(grad.every(Number.isFinite), `gradient at the zero row: ${grad}`);
  tf.dispose([x, projection.weight, v, g]);
});

/** v1 = (1, 0) of class 0, v2 = (0.6, 0.8) of class 1; T0 = (1, 0), T1 = (0, 1). */
const handCase = () => ({
  v: tf.tensor2d([[1, 0], [0.6, 0.8]]), // [N=2, E=2]
  classText: tf.tensor2d([[1, 0], [0, 1]]), // [C=2, E=2]
  labels: Int32Array.of(0, 1),
});

Deno.test("fixedPromptLoss N=2 C=2 equals the hand computation at τ = 1 and τ = 0.5", () => {
  const { v, classText, labels } = handCase();
  // τ = 1: cosines v1·T = (1, 0), v2·T = (0.6, 0.8)
  //   −log(e¹/(e¹ + e⁰))       = log(1 + e⁻¹)   = 0.313262
  //   −log(e^0.8/(e^0.6 + e^0.8)) = log(1 + e^−0.2) = 0.598139  → mean 0.455700
  close(scalar(() => fixedPromptLoss(v, classText, labels, 1)), 0.455700, 1e-6, "τ = 1");
  // τ = 0.5 doubles the logits: (log(1 + e⁻²) + log(1 + e^−0.4))/2 = (0.126928 + 0.513015)/2 = 0.319972
  close(scalar(() => fixedPromptLoss(v, classText, labels, 0.5)), 0.319972, 1e-6, "τ = 0.5");
  // per-nucleus prompts [N, C, E] equal to the shared ones give the same value
  const tiled = tf.stack([classText, classText]) as tf.Tensor3D; // [N=2, C=2, E=2]
  close(scalar(() => fixedPromptLoss(v, tiled, labels, 1)), 0.455700, 1e-6, "[N, C, E] prompts");
  tf.dispose([v, classText, tiled]);
});

Deno.test("fixedPromptLoss [N, C, E] uses each nucleus's own prompts", () => {
  const v = tf.tensor2d([[1, 0], [0.6, 0.8]]); // [2, 2]
  // nucleus 2's prompts swap T0 and T1 (another organ): cosines (0.8, 0.6), positive class 1 →
  //   −log(e^0.6/(e^0.8 + e^0.6)) = log(1 + e^0.2) = 0.798139; nucleus 1 as before 0.313262 → mean 0.555700
  const text = tf.tensor3d([[[1, 0], [0, 1]], [[0, 1], [1, 0]]]); // [N=2, C=2, E=2]
  close(scalar(() => fixedPromptLoss(v, text, Int32Array.of(0, 1), 1)), 0.555700, 1e-6, "per-nucleus");
  tf.dispose([v, text]);
});

/** Size: words (1, 0), (0, 1), (−1, 0), only nucleus 1 known; shape: (0, 1), (0, −1), both known. */
const handAttributes = (): AttributeTarget[] => [
  { words: tf.tensor2d([[1, 0], [0, 1], [-1, 0]]), positive: Int32Array.of(0, -1) }, // [M=3, E=2]
  { words: tf.tensor2d([[0, 1], [0, -1]]), positive: Int32Array.of(1, 1) }, // [M=2, E=2]
];

Deno.test("attributeLoss 2 attributes, one unknown label, equals the hand computation (mean over attributes)", () => {
  const { v, classText } = handCase();
  const attributes = handAttributes();
  // attribute 0, N_0 = 1: v1 cosines (1, 0, −1), positive 0 → log(1 + e⁻¹ + e⁻²) = 0.407606
  // attribute 1, N_1 = 2: v1 cosines (0, 0) → log 2 = 0.693147;
  //   v2 cosines (0.8, −0.8), positive 1 → log(1 + e^1.6) = 1.783901; mean 1.238524
  // L_attr = (0.407606 + 1.238524)/2 = 0.823065
  close(scalar(() => attributeLoss(v, attributes, 1)), 0.823065, 1e-6, "τ_attr = 1");
  // an attribute with no known word is left out of the mean, not counted as 0
  const none = { words: tf.tensor2d([[1, 0], [0, 1]]), positive: Int32Array.of(-1, -1) }; // [2, 2]
  close(scalar(() => attributeLoss(v, [...attributes, none], 1)), 0.823065, 1e-6, "with an unknown attribute");
  // only unknown words: 0
  assert.equal(scalar(() => attributeLoss(v, [none], 1)), 0);
  assert.equal(scalar(() => attributeLoss(v, [], 1)), 0);
  tf.dispose([v, classText, none.words, ...attributes.map((a) => a.words)]);
});

Deno.test("alignmentLoss total = 1·L_fix + 0.3·L_attr by default, weights and temperatures configurable", () => {
  const { v, classText, labels } = handCase();
  const attributes = handAttributes();
  const loss = alignmentLoss(v, classText, labels, attributes, { tau: 1, tauAttr: 1 });
  close(value(loss.parts.fix), 0.455700, 1e-6, "fix");
  close(value(loss.parts.attr), 0.823065, 1e-6, "attr");
  close(value(loss.total), 0.455700 + 0.3 * 0.823065, 2e-6, "total"); // 0.702620
  const weighted = alignmentLoss(v, classText, labels, attributes, { tau: 1, tauAttr: 1, weightFix: 2, weightAttr: 1 });
  close(value(weighted.total), 2 * 0.455700 + 0.823065, 2e-6, "2·fix + attr");
  // defaults τ = 0.07, τ_attr = 0.15 are the standalone functions' defaults
  const byDefault = alignmentLoss(v, classText, labels, attributes);
  close(value(byDefault.parts.fix), scalar(() => fixedPromptLoss(v, classText, labels)), 1e-6, "default τ");
  close(value(byDefault.parts.attr), scalar(() => attributeLoss(v, attributes)), 1e-6, "default τ_attr");
  // τ = 0.07: v1 → log(1 + e^{−1/0.07}) = log(1 + 6.2e-7) ≈ 6.2e-7,
  //   v2 → log(1 + e^{−0.2/0.07}) = log(1 + e^−2.857143) = log(1.057433) = 0.055844 → mean 0.027922
  close(value(byDefault.parts.fix), 0.027922, 2e-6, "τ = 0.07 by hand");
  const parts = [loss, weighted, byDefault].flatMap((l) => [l.total, l.parts.fix, l.parts.attr]);
  tf.dispose([v, classText, ...attributes.map((a) => a.words), ...parts]);
});

Deno.test("categoryCentreLoss C=2 k=2 equals the hand computation; the background group does not count", () => {
  // class 0 tokens (1, 1), (1, −1) → mean (1, 0); class 1 tokens (0, 4), (0, 2) → mean (0, 3) → (0, 1)
  // background (5, 5), (7, −3) is left out. Identity projection; T0 = (0.6, 0.8), T1 = (0.8, −0.6).
  const tokens = tf.tensor2d([[1, 1], [1, -1], [0, 4], [0, 2], [5, 5], [7, -3]]); // [(C+1)·k = 6, D = 2]
  const text = tf.tensor2d([[0.6, 0.8], [0.8, -0.6]]); // [C=2, E=2]
  const projection = { weight: tf.eye(2) as tf.Tensor2D }; // [D, E]
  // q̄0·T = (0.6, 0.8), positive 0 → log(1 + e^0.2) = 0.798139
  // q̄1·T = (0.8, −0.6), positive 1 → log(1 + e^1.4) = 1.620417; mean 1.209278
  close(scalar(() => categoryCentreLoss(tokens, text, projection, 2, 1)), 1.209278, 1e-6, "τ_CT = 1");
  // other background tokens, same loss; a batch of two images = mean of the two losses
  const other = tf.tensor2d([[1, 1], [1, -1], [0, 4], [0, 2], [-9, 1], [0, 0]]); // [6, 2]
  close(scalar(() => categoryCentreLoss(other, text, projection, 2, 1)), 1.209278, 1e-6, "background moved");
  // image 2: class 0 mean (0, 1), class 1 mean (1, 0): q̄0·T = (0.8, −0.6) → log(1 + e^−1.4) = 0.220417,
  //   q̄1·T = (0.6, 0.8) → log(1 + e^−0.2) = 0.598139; mean 0.409278; batch mean (1.209278 + 0.409278)/2
  const swapped = tf.tensor2d([[0, 1], [0, 1], [2, 0], [2, 0], [1, 0], [0, 1]]); // [6, 2]
  const batch = tf.stack([tokens, swapped]) as tf.Tensor3D; // [B=2, 6, 2]
  close(scalar(() => categoryCentreLoss(batch, text, projection, 2, 1)), 0.809278, 1e-6, "B = 2");
  // the background rows get exactly zero gradient, every class row a non-zero one
  const g = tf.grad((t: tf.Tensor) => categoryCentreLoss(t as tf.Tensor2D, text, projection, 2, 1))(tokens); // [6, 2]
  const grad = Array.from(g.dataSync());
  assert.deepEqual(grad.slice(8), [0, 0, 0, 0]);
  for (let r = 0; r < 4; r++) {
    assert.ok(Math.hypot(grad[2 * r] as number, grad[2 * r + 1] as number) > 1e-3, `row ${r}`);
  }
  tf.dispose([tokens, text, projection.weight, other, swapped, batch, g]);
});

Deno.test("bad inputs are RangeErrors naming the loss and the argument", () => {
  const { v, classText } = handCase();
  const projection = { weight: tf.eye(2) as tf.Tensor2D };
  assert.throws(() => fixedPromptLoss(v, classText, Int32Array.of(0, 2)), /fixedPromptLoss: labels\[1\] = 2/);
  assert.throws(() => fixedPromptLoss(v, classText, Int32Array.of(0)), /fixedPromptLoss: labels has 1 entries/);
  const words = tf.tensor2d([[1, 0]]); // [M=1, E=2]
  assert.throws(() => attributeLoss(v, [{ words, positive: Int32Array.of(0, 1) }]), /attribute 0 positive\[1\] = 1/);
  const tokens = tf.zeros([5, 2]) as tf.Tensor2D; // not (C+1)·k = 6 rows
  assert.throws(() => categoryCentreLoss(tokens, classText, projection, 2), /categoryCentreLoss: tokens must hold/);
  tf.dispose([v, classText, projection.weight, words, tokens]);
});

// ---------------------------------------------------------------------------------------------
// float64 reference: the formulas in plain JS

const normal = (rng: Rng, n: number, scale = 1) =>
  Float64Array.from({ length: n }, () => scale * Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng()));
/** Random rows, normalised, rounded to float32 (the reference then sees exactly what tf sees). */
const unitRows = (rng: Rng, rows: number, e: number): Float64Array => {
  const x = normal(rng, rows * e);
  for (let r = 0; r < rows; r++) {
    const norm = Math.hypot(...x.subarray(r * e, (r + 1) * e));
    for (let j = 0; j < e; j++) x[r * e + j] = Math.fround((x[r * e + j] as number) / norm);
  }
  return x;
};
const dot = (a: Float64Array, i: number, b: Float64Array, j: number, e: number) => {
  let s = 0;
  for (let t = 0; t < e; t++) s += (a[i + t] as number) * (b[j + t] as number);
  return s;
};
/** −log softmax(logits)[p] */
const nll = (logits: number[], p: number) => {
  const mx = Math.max(...logits);
  return mx + Math.log(logits.reduce((s, l) => s + Math.exp(l - mx), 0)) - (logits[p] as number);
};

const refFix = (
  v: Float64Array,
  text: Float64Array,
  perNucleus: boolean,
  labels: Int32Array,
  e: number,
  tau: number,
) => {
  const n = labels.length, c = text.length / e / (perNucleus ? n : 1);
  let s = 0;
  for (let i = 0; i < n; i++) {
    const base = perNucleus ? i * c * e : 0;
    s += nll(Array.from({ length: c }, (_, j) => dot(v, i * e, text, base + j * e, e) / tau), labels[i] as number);
  }
  return s / n;
};

interface PlainAttribute {
  readonly words: Float64Array; // [M, E]
  readonly positive: Int32Array;
}
const refAttr = (v: Float64Array, attributes: ReadonlyArray<PlainAttribute>, e: number, tau: number) => {
  const losses = attributes.flatMap(({ words, positive }) => {
    const m = words.length / e, known = positive.filter((p) => p >= 0).length;
    if (known === 0) return [];
    let s = 0;
    positive.forEach((p, i) => {
      if (p >= 0) s += nll(Array.from({ length: m }, (_, j) => dot(v, i * e, words, j * e, e) / tau), p);
    });
    return [s / known];
  });
  return losses.length === 0 ? 0 : losses.reduce((a, b) => a + b, 0) / losses.length;
};

/** x [N, D] · W [D, E], rows normalised. */
const refEmbed = (x: Float64Array, w: Float64Array, d: number, e: number): Float64Array => {
  const n = x.length / d, out = new Float64Array(n * e);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < e; j++) {
      for (let t = 0; t < d; t++) {
        out[i * e + j] = (out[i * e + j] as number) + (x[i * d + t] as number) * (w[t * e + j] as number);
      }
    }
    const norm = Math.max(Math.hypot(...out.subarray(i * e, (i + 1) * e)), 1e-12);
    for (let j = 0; j < e; j++) out[i * e + j] = (out[i * e + j] as number) / norm;
  }
  return out;
};

const refCentre = (
  tokens: Float64Array,
  text: Float64Array,
  w: Float64Array,
  k: number,
  d: number,
  e: number,
  tau: number,
) => {
  const c = text.length / e, b = tokens.length / ((c + 1) * k * d);
  const means = new Float64Array(b * c * d);
  for (let bi = 0; bi < b; bi++) {
    for (let ci = 0; ci < c; ci++) {
      for (let t = 0; t < d; t++) {
        let s = 0;
        for (let i = 0; i < k; i++) s += tokens[((bi * (c + 1) + ci) * k + i) * d + t] as number;
        means[(bi * c + ci) * d + t] = s / k;
      }
    }
  }
  const q = refEmbed(means, w, d, e);
  let s = 0;
  for (let r = 0; r < b * c; r++) {
    s += nll(Array.from({ length: c }, (_, j) => dot(q, r * e, text, j * e, e) / tau), r % c);
  }
  return s / (b * c);
};

// a random problem: N = 7 nuclei, E = 6, C = 4 classes, 3 attributes (one with unknowns), tokens B = 2, k = 3, D = 5
const N = 7, E = 6, C = 4, K = 3, D = 5, B = 2;
const problem = () => {
  const rng = mulberry32(17);
  const x = Float64Array.from(normal(rng, N * D), Math.fround); // [N, D] features for embed
  const v = unitRows(rng, N, E); // [N, E]
  const text = unitRows(rng, C, E); // [C, E]
  const perNucleus = unitRows(rng, N * C, E); // [N, C, E]
  const labels = Int32Array.from({ length: N }, () => Math.floor(rng() * C));
  const attributes: PlainAttribute[] = [5, 3, 4].map((m, a) => ({
    words: unitRows(rng, m, E),
    positive: Int32Array.from({ length: N }, () => (a === 1 && rng() < 0.4 ? -1 : Math.floor(rng() * m))),
  }));
  const tokens = Float64Array.from(normal(rng, B * (C + 1) * K * D), Math.fround); // [B, (C+1)·k, D]
  const w = Float64Array.from(normal(rng, D * E, 1 / Math.sqrt(D)), Math.fround); // [D, E]
  return { x, v, text, perNucleus, labels, attributes, tokens, w };
};
const f32 = (a: Float64Array) => Float32Array.from(a);

Deno.test("losses on random N=7 E=6 C=4 (3 attributes, unknown words, B=2 k=3 tokens) equal the float64 formulas", () => {
  const p = problem();
  const v = tf.tensor2d(f32(p.v), [N, E]); // [N, E]
  const text = tf.tensor2d(f32(p.text), [C, E]); // [C, E]
  const perNucleus = tf.tensor3d(f32(p.perNucleus), [N, C, E]); // [N, C, E]
  const attributes = p.attributes.map((a) => ({
    words: tf.tensor2d(f32(a.words), [a.words.length / E, E]),
    positive: a.positive,
  }));
  const tokens = tf.tensor3d(f32(p.tokens), [B, (C + 1) * K, D]); // [B, (C+1)·k, D]
  const projection = { weight: tf.tensor2d(f32(p.w), [D, E]) }; // [D, E]
  const x = tf.tensor2d(f32(p.x), [N, D]); // [N, D]
  const rel = (got: number, want: number, what: string) => close(got, want, 2e-6 * Math.max(1, Math.abs(want)), what);
  rel(scalar(() => fixedPromptLoss(v, text, p.labels)), refFix(p.v, p.text, false, p.labels, E, 0.07), "L_fix");
  rel(
    scalar(() => fixedPromptLoss(v, perNucleus, p.labels)),
    refFix(p.v, p.perNucleus, true, p.labels, E, 0.07),
    "L_fix [N, C, E]",
  );
  rel(scalar(() => attributeLoss(v, attributes)), refAttr(p.v, p.attributes, E, 0.15), "L_attr");
  rel(
    scalar(() => categoryCentreLoss(tokens, text, projection, K)),
    refCentre(p.tokens, p.text, p.w, K, D, E, 0.07),
    "L_cent",
  );
  const embedded = embed(x, projection); // [N, E]
  const want = refEmbed(p.x, p.w, D, E);
  Array.from(embedded.dataSync()).forEach((got, i) => close(got, want[i] as number, 1e-6, `embed[${i}]`));
  // sanity of the problem: the attribute with unknowns has some, and the losses are not degenerate
  assert.ok(p.attributes[1]?.positive.some((q) => q < 0) && p.attributes[1]?.positive.some((q) => q >= 0));
  tf.dispose([v, text, perNucleus, tokens, projection.weight, x, embedded, ...attributes.map((a) => a.words)]);
});

// ---------------------------------------------------------------------------------------------
// gradients against float64 central differences of the reference

/**
 * Central differences of `f` at every entry of `a` (step 1e-6: truncation ~1e-12·f''' ≈ 1e-8 with
 * 1/τ³ ≈ 3000, rounding ~1e-10), compared with tf's float32 gradient: 1e-6 absolute + 1e-5 of the
 * largest entry (tf's float32 sums of ≤ 7 rows of ≤ 6 products).
 */
const checkGradient = (what: string, analytic: tf.Tensor, a: Float64Array, f: () => number) => {
  const got = analytic.dataSync(), eps = 1e-6;
  const numeric = Array.from(a, (_, i) => {
    const keep = a[i] as number;
    a[i] = keep + eps;
    const up = f();
    a[i] = keep - eps;
    const down = f();
    a[i] = keep;
    return (up - down) / (2 * eps);
  });
  const scale = Math.max(...numeric.map(Math.abs));
  assert.ok(scale > 1e-3, `${what}: gradient not exercised`);
  numeric.forEach((n, i) => close(got[i] as number, n, 1e-6 + 1e-5 * scale, `${what}[${i}]`));
};

Deno.test("∂L_fix/∂v, ∂L_fix/∂T (shared and per nucleus) match float64 central differences", () => {
  const p = problem();
  const v = tf.tensor2d(f32(p.v), [N, E]), text = tf.tensor2d(f32(p.text), [C, E]); // [N, E], [C, E]
  const perNucleus = tf.tensor3d(f32(p.perNucleus), [N, C, E]); // [N, C, E]
  const [gv, gt] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
    fixedPromptLoss(a as tf.Tensor2D, b as tf.Tensor2D, p.labels)
  )([v, text]);
  checkGradient("∂/∂v", gv as tf.Tensor, p.v, () => refFix(p.v, p.text, false, p.labels, E, 0.07));
  checkGradient("∂/∂T", gt as tf.Tensor, p.text, () => refFix(p.v, p.text, false, p.labels, E, 0.07));
  const [gv3, gt3] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
    fixedPromptLoss(a as tf.Tensor2D, b as tf.Tensor3D, p.labels)
  )([v, perNucleus]);
  checkGradient("∂/∂v [N, C, E]", gv3 as tf.Tensor, p.v, () => refFix(p.v, p.perNucleus, true, p.labels, E, 0.07));
  checkGradient(
    "∂/∂T [N, C, E]",
    gt3 as tf.Tensor,
    p.perNucleus,
    () => refFix(p.v, p.perNucleus, true, p.labels, E, 0.07),
  );
  tf.dispose([v, text, perNucleus, gv as tf.Tensor, gt as tf.Tensor, gv3 as tf.Tensor, gt3 as tf.Tensor]);
});

Deno.test("∂L_attr/∂v and ∂L_attr/∂words of every attribute match float64 central differences", () => {
  const p = problem();
  const v = tf.tensor2d(f32(p.v), [N, E]); // [N, E]
  const words = p.attributes.map((a) => tf.tensor2d(f32(a.words), [a.words.length / E, E])); // [M_a, E]
  const grads = tf.grads((...t: tf.Tensor[]) =>
    attributeLoss(
      t[0] as tf.Tensor2D,
      p.attributes.map((a, i) => ({ words: t[i + 1] as tf.Tensor2D, positive: a.positive })),
    )
  )([v, ...words]);
  const f = () => refAttr(p.v, p.attributes, E, 0.15);
  checkGradient("∂/∂v", grads[0] as tf.Tensor, p.v, f);
  p.attributes.forEach((a, i) => checkGradient(`∂/∂words ${i}`, grads[i + 1] as tf.Tensor, a.words, f));
  tf.dispose([v, ...words, ...grads]);
});

Deno.test("∂L_cent/∂tokens, ∂/∂T and ∂/∂projection match float64 central differences", () => {
  const p = problem();
  const tokens = tf.tensor3d(f32(p.tokens), [B, (C + 1) * K, D]); // [B, (C+1)·k, D]
  const text = tf.tensor2d(f32(p.text), [C, E]), w = tf.tensor2d(f32(p.w), [D, E]); // [C, E], [D, E]
  const [gk, gt, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
    categoryCentreLoss(a as tf.Tensor3D, b as tf.Tensor2D, { weight: c }, K)
  )([tokens, text, w]);
  const f = () => refCentre(p.tokens, p.text, p.w, K, D, E, 0.07);
  checkGradient("∂/∂tokens", gk as tf.Tensor, p.tokens, f);
  checkGradient("∂/∂T", gt as tf.Tensor, p.text, f);
  checkGradient("∂/∂W", gw as tf.Tensor, p.w, f);
  tf.dispose([tokens, text, w, gk as tf.Tensor, gt as tf.Tensor, gw as tf.Tensor]);
});

Deno.test("∂L_fix(embed(x))/∂x and ∂/∂projection match float64 central differences", () => {
  const p = problem();
  const x = tf.tensor2d(f32(p.x), [N, D]), w = tf.tensor2d(f32(p.w), [D, E]); // [N, D], [D, E]
  const text = tf.tensor2d(f32(p.text), [C, E]); // [C, E]
  const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
    fixedPromptLoss(embed(a as tf.Tensor2D, { weight: b }), text, p.labels)
  )([x, w]);
  const f = () => refFix(refEmbed(p.x, p.w, D, E), p.text, false, p.labels, E, 0.07);
  checkGradient("∂/∂x", gx as tf.Tensor, p.x, f);
  checkGradient("∂/∂W", gw as tf.Tensor, p.w, f);
  tf.dispose([x, w, text, gx as tf.Tensor, gw as tf.Tensor]);
});

// ---------------------------------------------------------------------------------------------
// empty cases, initialisation, tensor bookkeeping

Deno.test("N=0: L_fix, L_attr and alignmentLoss are 0 with zero, finite gradients w.r.t. every input", () => {
  const v = tf.zeros([0, 2]) as tf.Tensor2D; // [N=0, E=2]
  const text = tf.tensor2d([[1, 0], [0, 1]]); // [C=2, E]
  const words = tf.tensor2d([[1, 0], [0, 1], [-1, 0]]); // [M=3, E]
  const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
    alignmentLoss(a as tf.Tensor2D, b as tf.Tensor2D, new Int32Array(0), [{
      words: c as tf.Tensor2D,
      positive: new Int32Array(0),
    }]).total
  )([v, text, words]);
  assert.deepEqual(grads.map((g) => g.shape), [[0, 2], [2, 2], [3, 2]]);
  grads.slice(1).forEach((g) => assert.ok(Array.from(g.dataSync()).every((x) => x === 0), `gradient ${g.dataSync()}`));
  assert.equal(scalar(() => fixedPromptLoss(v, text, new Int32Array(0))), 0);
  assert.equal(scalar(() => attributeLoss(v, [{ words, positive: new Int32Array(0) }])), 0);
  tf.dispose([v, text, words, ...grads]);
});

Deno.test("an attribute with no known word: its vocabulary gets an exact zero gradient, the others don't", () => {
  const { v } = handCase();
  const attributes = handAttributes();
  const none = tf.tensor2d([[1, 0], [0, 1]]); // [M=2, E=2]
  const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
    attributeLoss(v, [
      { words: a as tf.Tensor2D, positive: Int32Array.of(0, -1) },
      { words: b as tf.Tensor2D, positive: Int32Array.of(1, 1) },
      { words: c as tf.Tensor2D, positive: Int32Array.of(-1, -1) },
    ])
  )([attributes[0]?.words as tf.Tensor, attributes[1]?.words as tf.Tensor, none]);
  const norms = grads.map((g) => Math.hypot(...g.dataSync()));
  assert.ok((norms[0] as number) > 1e-3 && (norms[1] as number) > 1e-3, `${norms}`);
  assert.ok(Array.from((grads[2] as tf.Tensor).dataSync()).every((x) => x === 0));
  tf.dispose([v, none, ...grads, ...attributes.map((a) => a.words)]);
});

Deno.test("initProjection D=256 E=64: N(0, 1/D) truncated at ±2σ, no bias; l2Normalize rows have norm 1", () => {
  const projection = initProjection(initializer(3), 256, 64);
  assert.deepEqual(projection.weight.shape, [256, 64]);
  assert.equal(projection.bias, undefined);
  const w = Array.from(projection.weight.dataSync()), sigma = 1 / 16;
  const std = Math.sqrt(w.reduce((s, x) => s + x * x, 0) / w.length);
  assert.ok(w.every((x) => Math.abs(x) <= 2 * sigma + 1e-7));
  // a normal truncated at ±2σ has standard deviation 0.880σ
  assert.ok(Math.abs(std / sigma - 0.880) < 0.02, `std ${std / sigma}σ`);
  const rows = tf.tidy(() => tf.norm(l2Normalize(tf.randomNormal([5, 64], 0, 3, "float32", 1)), "euclidean", 1));
  Array.from(rows.dataSync()).forEach((r) => close(r, 1, 1e-6, "row norm"));
  tf.dispose([projection.weight, rows]);
});

Deno.test("tensor count is flat across repeated loss + gradient steps", () => {
  const p = problem();
  const init = initializer(5);
  const projection = initProjection(init, D, E);
  const x = tf.tensor2d(f32(p.x), [N, D]); // [N, D]
  const text = tf.tensor2d(f32(p.text), [C, E]); // [C, E]
  const tokens = tf.variable(tf.tensor2d(f32(p.tokens.subarray(0, (C + 1) * K * D)), [(C + 1) * K, D])); // [(C+1)·k, D]
  const attributes = p.attributes.map((a) => ({
    words: tf.tensor2d(f32(a.words), [a.words.length / E, E]),
    positive: a.positive,
  }));
  const step = () => {
    const { value, grads } = tf.variableGrads(() => {
      const loss = alignmentLoss(embed(x, projection), text, p.labels, attributes);
      return tf.add(loss.total, tf.mul(2, categoryCentreLoss(tokens, text, projection, K))) as tf.Scalar;
    });
    tf.dispose([value, ...Object.values(grads)]);
  };
  step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) step();
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([projection.weight, x, text, tokens, ...attributes.map((a) => a.words)]);
});
