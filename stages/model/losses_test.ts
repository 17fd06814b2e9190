/**
 * Mask2Former losses: values against a float64 re-computation from the formulas (same matching
 * and points), gradients of each part against float64 central differences of that re-computation,
 * importance sampling, a tiny overfit, and a flat tensor count across training steps.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { deriveSeed, mulberry32, type Rng } from "../data/random.ts";
import { bilinearTaps, type InstanceTargets, matchQueries } from "./matcher.ts";
import {
  type DecoderOutput,
  lossFromPlan,
  type LossPlan,
  maskFormerLoss,
  mostUncertain,
  planLoss,
  uncertainPoints,
} from "./losses.ts";

await tf.setBackend("cpu");

const normal = (rng: Rng, n: number, scale: number) =>
  Float32Array.from({ length: n }, () => scale * Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng()));

// ---------------------------------------------------------------------------------------------
// float64 reference: the same formulas in plain JS, for a fixed plan

interface Sizes {
  readonly B: number;
  readonly Q: number;
  readonly C1: number;
  readonly h: number;
  readonly w: number;
  readonly H: number;
  readonly W: number;
}
interface PlainTarget {
  readonly classes: Int32Array;
  readonly masks: Float64Array; // [N, H, W]
}

const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const sample = (m: Float64Array, offset: number, h: number, w: number, xy: Float32Array, p: number): number => {
  const { index, weight } = bilinearTaps(xy.subarray(2 * p, 2 * p + 2), h, w);
  return [0, 1, 2, 3].reduce((s, k) => s + (weight[k] as number) * (m[offset + (index[k] as number)] as number), 0);
};

/** Parts summed over layers; `logits[l]` `[B·Q·C1]`, `masks[l]` `[B·Q·h·w]`. */
const referenceParts = (
  logits: ReadonlyArray<Float64Array>,
  masks: ReadonlyArray<Float64Array>,
  targets: ReadonlyArray<PlainTarget>,
  plan: LossPlan,
  { Q, C1, h, w, H, W }: Sizes,
  points: number,
) => {
  const norm = Math.max(1, targets.reduce((n, t) => n + t.classes.length, 0));
  const parts = { class: 0, mask: 0, dice: 0 };
  plan.layers.forEach((images, l) => {
    const lg = logits[l] as Float64Array, mk = masks[l] as Float64Array;
    let num = 0, den = 0;
    images.forEach((image, b) => {
      const target = targets[b] as PlainTarget;
      const label = new Int32Array(Q).fill(C1 - 1);
      image.queryIndex.forEach((q, i) => label[q] = target.classes[image.targetIndex[i] as number] as number);
      for (let q = 0; q < Q; q++) {
        const row = Array.from(lg.subarray((b * Q + q) * C1, (b * Q + q + 1) * C1));
        const mx = Math.max(...row), lse = mx + Math.log(row.reduce((s, v) => s + Math.exp(v - mx), 0));
        const y = label[q] as number, weight = y === C1 - 1 ? 0.1 : 1;
        num += weight * (lse - (row[y] as number));
        den += weight;
      }
      image.queryIndex.forEach((q, i) => {
        const n = image.targetIndex[i] as number, xy = image.coords.subarray(i * points * 2, (i + 1) * points * 2);
        let bce = 0, sp = 0, st = 0, spt = 0;
        for (let p = 0; p < points; p++) {
          const x = sample(mk, (b * Q + q) * h * w, h, w, xy, p), t = sample(target.masks, n * H * W, H, W, xy, p);
          bce += softplus(x) - x * t;
          sp += sigmoid(x), st += t, spt += sigmoid(x) * t;
        }
        parts.mask += bce / points / norm;
        parts.dice += (1 - (2 * spt + 1) / (sp + st + 1)) / norm;
      });
    });
    parts.class += num / den;
  });
  return parts;
};

// ---------------------------------------------------------------------------------------------
// a small random problem: 2 decoder layers, 2 images (3 and 1 instances), predictions 4×5, targets 6×6

const sizes: Sizes = { B: 2, Q: 4, C1: 3, h: 4, w: 5, H: 6, W: 6 };
const POINTS = 24;
const options = { points: POINTS, oversample: 3, importanceRatio: 0.75, seed: 11 };

const problem = () => {
  const { B, Q, C1, h, w, H, W } = sizes, rng = mulberry32(5);
  const logits = [0, 1].map(() => normal(rng, B * Q * C1, 1.5));
  const masks = [0, 1].map(() => normal(rng, B * Q * h * w, 2));
  const plain: PlainTarget[] = [3, 1].map((N) => ({
    classes: Int32Array.from({ length: N }, () => Math.floor(rng() * (C1 - 1))),
    masks: Float64Array.from({ length: N * H * W }, () => (rng() < 0.45 ? 1 : 0)),
  }));
  return { logits, masks, plain };
};

const toTensors = (logits: ReadonlyArray<Float32Array>, masks: ReadonlyArray<Float32Array>) => {
  const { B, Q, C1, h, w } = sizes;
  return logits.map((lg, l): DecoderOutput => ({
    logits: tf.tensor3d(lg, [B, Q, C1]), // [B, Q, C+1]
    masks: tf.tensor4d(masks[l] as Float32Array, [B, Q, h, w]), // [B, Q, h, w]
  }));
};
const toTargets = (plain: ReadonlyArray<PlainTarget>): InstanceTargets[] =>
  plain.map((t) => ({
    classes: t.classes,
    masks: tf.tensor3d(Float32Array.from(t.masks), [t.classes.length, sizes.H, sizes.W]), // [N, H, W]
  }));

Deno.test("maskFormerLoss layers=2 B=2 Q=4 equals the float64 formulas at the planned matches and points", () => {
  const { logits, masks, plain } = problem();
  const outputs = toTensors(logits, masks), targets = toTargets(plain);
  const plan = planLoss(outputs, targets, options);
  // the plan matches each layer's images exactly as the matcher does on its own
  plan.layers.forEach((images, l) =>
    images.forEach((image, b) => {
      assert.equal(image.coords.length, image.queryIndex.length * POINTS * 2);
      assert.equal(image.queryIndex.length, plain[b]?.classes.length);
      const lo = outputs[l] as DecoderOutput;
      const again = tf.tidy(() => {
        const lg = tf.squeeze(tf.slice(lo.logits, [b, 0, 0], [1, -1, -1]), [0]) as tf.Tensor2D; // [Q, C+1]
        const mk = tf.squeeze(tf.slice(lo.masks, [b, 0, 0, 0], [1, -1, -1, -1]), [0]) as tf.Tensor3D; // [Q, h, w]
        const seed = deriveSeed(options.seed, 2 * (l * sizes.B + b));
        const match = matchQueries(lg, mk, targets[b] as InstanceTargets, { points: POINTS, seed });
        return tf.tensor2d([Array.from(match.queryIndex), Array.from(match.targetIndex)], undefined, "int32"); // [2, M]
      });
      assert.deepEqual(Array.from(again.dataSync()), [...image.queryIndex, ...image.targetIndex]);
      again.dispose();
    })
  );
  const loss = maskFormerLoss(outputs, targets, options);
  const f64 = (a: ReadonlyArray<Float32Array>) => a.map((x) => Float64Array.from(x));
  const ref = referenceParts(f64(logits), f64(masks), plain, plan, sizes, POINTS);
  const got = {
    class: loss.parts.class.dataSync()[0],
    mask: loss.parts.mask.dataSync()[0],
    dice: loss.parts.dice.dataSync()[0],
  };
  for (const k of ["class", "mask", "dice"] as const) {
    assert.ok(Math.abs((got[k] as number) - ref[k]) <= 1e-5 * Math.abs(ref[k]), `${k}: ${got[k]} vs ${ref[k]}`);
  }
  const total = 2 * ref.class + 5 * ref.mask + 5 * ref.dice;
  assert.ok(Math.abs((loss.total.dataSync()[0] as number) - total) <= 1e-5 * total);
  tf.dispose([loss.total, loss.parts.class, loss.parts.mask, loss.parts.dice]);
  tf.dispose(outputs.flatMap((o) => [o.logits, o.masks]).concat(targets.map((t) => t.masks)));
});

Deno.test("gradients of class, mask and dice parts w.r.t. logits and mask logits match float64 central differences", () => {
  const { logits, masks, plain } = problem();
  const outputs = toTensors(logits, masks), targets = toTargets(plain);
  const plan = planLoss(outputs, targets, options);
  const xs = outputs.flatMap((o) => [o.logits, o.masks]);
  const rebuild = (t: tf.Tensor[]): DecoderOutput[] =>
    [0, 1].map((l) => ({ logits: t[2 * l] as tf.Tensor3D, masks: t[2 * l + 1] as tf.Tensor4D }));
  const f64 = (a: ReadonlyArray<Float32Array>) => a.map((x) => Float64Array.from(x));
  for (const part of ["class", "mask", "dice"] as const) {
    // a part that does not depend on an input cannot be differentiated by tf.grads: take its inputs only
    const on = part === "class" ? [0, 2] : [1, 3];
    const partOf = (loss: (o: DecoderOutput[]) => tf.Scalar) => (...t: tf.Tensor[]) =>
      loss(rebuild(xs.map((x, i) => on.includes(i) ? t[on.indexOf(i)] as tf.Tensor : x)));
    const picked = on.map((i) => xs[i] as tf.Tensor);
    const grads = tf.grads(partOf((o) => lossFromPlan(o, targets, plan, options).parts[part]))(picked);
    // the planned decisions are what maskFormerLoss takes inside a gradient too: same gradient
    const whole = tf.grads(partOf((o) => maskFormerLoss(o, targets, options).parts[part]))(picked);
    grads.forEach((g, i) => assert.deepEqual(Array.from(g.dataSync()), Array.from((whole[i] as tf.Tensor).dataSync())));
    // float64 central differences of the float64 formulas: step 1e-5 → truncation ~1e-10 and
    // rounding ~1e-11, so the comparison measures tf's float32 arithmetic (≈ 6e-8 relative per op,
    // sums of ≤ 24 points and ≤ 8 rows → ≲ 1e-6 relative): 1e-6 absolute + 1e-5 of the largest entry.
    const lg = f64(logits), mk = f64(masks), eps = 1e-5;
    const value = () => referenceParts(lg, mk, plain, plan, sizes, POINTS)[part];
    [lg[0], mk[0], lg[1], mk[1]].forEach((arr, j) => {
      const a = arr as Float64Array;
      const g = on.includes(j) ? grads[on.indexOf(j)] : undefined;
      const analytic = g === undefined ? new Array<number>(a.length).fill(0) : Array.from(g.dataSync());
      const numeric = Array.from(a, (_, i) => {
        const keep = a[i] as number;
        a[i] = keep + eps;
        const up = value();
        a[i] = keep - eps;
        const down = value();
        a[i] = keep;
        return (up - down) / (2 * eps);
      });
      const scale = Math.max(...numeric.map(Math.abs));
      numeric.forEach((n, i) =>
        assert.ok(
          Math.abs((analytic[i] as number) - n) <= 1e-6 + 1e-5 * scale,
          `${part} ${j % 2 ? "masks" : "logits"} layer ${j >> 1} [${i}]: ${analytic[i]} vs ${n}`,
        )
      );
      assert.ok(on.includes(j) ? scale > 1e-3 : true, `${part}: gradient ${j} is not exercised`);
      if (part === "class" && j % 2 === 1) assert.equal(scale, 0); // masks do not move the class loss
      if (part !== "class" && j % 2 === 0) assert.equal(scale, 0); // nor logits the mask losses
    });
    tf.dispose([...grads, ...whole]);
  }
  tf.dispose(xs.concat(targets.map((t) => t.masks)));
});

Deno.test("uncertainPoints P=200 keeps the 150 most uncertain candidates (logit 0 on x < 7/16) plus 50 uniform", () => {
  // columns 0–3 have logit 0, columns 4–7 logit 20: |logit| = 0 exactly where x·8 − ½ ≤ 3
  const masks = tf.tile(tf.tensor3d([[[0, 0, 0, 0, 20, 20, 20, 20]]]), [2, 8, 1]) as tf.Tensor3D; // [2, 8, 8]
  const coords = uncertainPoints(masks, mulberry32(4), 200, 3, 0.75);
  assert.equal(coords.length, 2 * 200 * 2);
  for (let m = 0; m < 2; m++) {
    const xs = Array.from({ length: 200 }, (_, p) => coords[(m * 200 + p) * 2] as number);
    assert.ok(
      xs.slice(0, 150).every((x) => x <= 7 / 16 + 1e-6),
      `mask ${m}: an uncertain point lies in the certain half`,
    );
    assert.ok(xs.slice(150).some((x) => x > 0.6), `mask ${m}: the uniform points miss the certain half`);
  }
  masks.dispose();
});

Deno.test("mostUncertain equals a stable sort by |logit| on 200 random rows with ties, k from 0 to n", () => {
  const rng = mulberry32(21);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rng() * 40);
    // few distinct values (and their negatives) so that ties are common
    const logits = Float32Array.from({ length: n }, () => (Math.floor(rng() * 7) - 3) * 0.5);
    const k = Math.floor(rng() * (n + 2));
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
      Math.abs(logits[a] as number) - Math.abs(logits[b] as number) || a - b
    );
    const expected = order.slice(0, k).sort((a, b) => a - b);
    assert.deepEqual(Array.from(mostUncertain(logits, k)), expected, `trial ${trial}: n=${n} k=${k}`);
  }
});

Deno.test("maskFormerLoss with no instances: class loss only, all queries no-object, mask parts 0", () => {
  const logits = tf.tensor3d([[[1, 2, 0.5], [0, 0, 3]]]); // [B=1, Q=2, C+1=3]
  const masks = tf.zeros([1, 2, 4, 4]) as tf.Tensor4D; // [1, 2, 4, 4]
  const empty = { classes: new Int32Array(0), masks: tf.zeros([0, 4, 4]) as tf.Tensor3D }; // [0, 4, 4]
  const loss = maskFormerLoss([{ logits, masks }], [empty], { points: 16 });
  // −log softmax of the last class, each row weighted 0.1, weighted mean = plain mean
  const lse = (r: number[]) => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
  const expected = ((lse([1, 2, 0.5]) - 0.5) + (lse([0, 0, 3]) - 3)) / 2;
  assert.ok(Math.abs((loss.parts.class.dataSync()[0] as number) - expected) < 1e-6);
  assert.equal(loss.parts.mask.dataSync()[0], 0);
  assert.equal(loss.parts.dice.dataSync()[0], 0);
  tf.dispose([logits, masks, empty.masks, loss.total, loss.parts.class, loss.parts.mask, loss.parts.dice]);
});

// ---------------------------------------------------------------------------------------------
// training: a learnable set of query logits and masks (no network) fitted to one target set

// Bilinear point labels of a binary mask are fractional within a pixel of its edges, and the
// importance sampling puts 75 % of the points near edges, so BCE and dice keep a floor of order
// (edge pixels / area): on 32×32 the loss fell only 90.1 %, on 64×64 it falls ≈ 94 %.
const S = 64;
/** Three rectangles of classes 0, 1, 2 on a 64×64 grid, away from the border. */
const rectangles = (): { classes: Int32Array; masks: Float32Array } => {
  const boxes = [[6, 6, 28, 32], [36, 10, 58, 30], [12, 38, 52, 58]]; // [r0, c0, r1, c1)
  const masks = new Float32Array(3 * S * S);
  boxes.forEach(([r0, c0, r1, c1], n) => {
    for (let r = r0 as number; r < (r1 as number); r++) {
      for (let c = c0 as number; c < (c1 as number); c++) masks[n * S * S + r * S + c] = 1;
    }
  });
  return { classes: Int32Array.of(0, 1, 2), masks };
};

const learnable = (seed: number) => {
  const rng = mulberry32(seed);
  return {
    logits: tf.variable(tf.tensor3d(normal(rng, 1 * 5 * 4, 0.5), [1, 5, 4])), // [B=1, Q=5, C+1=4]
    masks: tf.variable(tf.tensor4d(normal(rng, 1 * 5 * S * S, 0.5), [1, 5, S, S])), // [1, 5, S, S]
  };
};

Deno.test("overfit Q=5 to 3 rectangles: total loss falls > 90 %, matched masks reach IoU > 0.9", () => {
  const { classes, masks } = rectangles();
  const target = { classes, masks: tf.tensor3d(masks, [3, S, S]) }; // [3, S, S]
  const params = learnable(1);
  const outputs = [{ logits: params.logits as tf.Tensor3D, masks: params.masks as tf.Tensor4D }];
  const optimizer = tf.train.adam(0.1);
  const opts = { points: 512, seed: 0 };
  const lossAt = (step: number) => {
    const loss = maskFormerLoss(outputs, [target], { ...opts, seed: step });
    const value = loss.total.dataSync()[0] as number;
    tf.dispose([loss.total, loss.parts.class, loss.parts.mask, loss.parts.dice]);
    return value;
  };
  const initial = lossAt(0);
  for (let step = 0; step < 300; step++) {
    const cost = optimizer.minimize(() => maskFormerLoss(outputs, [target], { ...opts, seed: step }).total, true);
    cost?.dispose();
  }
  const final = lossAt(1000);
  assert.ok(final < 0.1 * initial, `loss ${initial} → ${final}`);
  // the matched queries' masks (logit > 0) against their rectangles, and their classes
  const match = tf.tidy(() => {
    const lg = tf.squeeze(params.logits, [0]) as tf.Tensor2D; // [Q, C+1]
    const mk = tf.squeeze(params.masks, [0]) as tf.Tensor3D; // [Q, S, S]
    const m = matchQueries(lg, mk, target, { points: 4096, seed: 1 });
    return tf.tensor2d([Array.from(m.queryIndex), Array.from(m.targetIndex)], undefined, "int32"); // [2, 3]
  });
  const [q, n] = [match.dataSync().slice(0, 3), match.dataSync().slice(3)];
  const predicted = params.masks.dataSync(), logits = params.logits.dataSync();
  q.forEach((query, i) => {
    const t = n[i] as number;
    let inter = 0, union = 0;
    for (let p = 0; p < S * S; p++) {
      const a = (predicted[query * S * S + p] as number) > 0, b = (masks[t * S * S + p] as number) > 0;
      inter += a && b ? 1 : 0;
      union += a || b ? 1 : 0;
    }
    assert.ok(inter / union > 0.9, `query ${query} ↔ target ${t}: IoU ${inter / union}`);
    const row = Array.from(logits.slice(query * 4, query * 4 + 4));
    assert.equal(row.indexOf(Math.max(...row)), classes[t], `query ${query} class`);
  });
  tf.dispose([match, target.masks, params.logits, params.masks]);
  optimizer.dispose();
});

Deno.test("tensor count is flat across repeated loss + gradient steps", () => {
  const { classes, masks } = rectangles();
  const target = { classes, masks: tf.tensor3d(masks, [3, S, S]) }; // [3, S, S]
  const params = learnable(2);
  const layers = [0, 1].map(() => ({ logits: params.logits as tf.Tensor3D, masks: params.masks as tf.Tensor4D }));
  const step = (seed: number) => {
    const { value, grads } = tf.variableGrads(() => maskFormerLoss(layers, [target], { points: 128, seed }).total);
    tf.dispose([value, ...Object.values(grads)]);
  };
  step(0);
  const before = tf.memory().numTensors;
  for (let i = 1; i <= 5; i++) step(i);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([target.masks, params.logits, params.masks]);
});
