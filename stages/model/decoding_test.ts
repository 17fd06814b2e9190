import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { decodeInstances, type DecodeOptions, decodeValues, defaultDecodeOptions } from "./decoding.ts";
import { defaultDenseDecodeOptions } from "./dense_decoding.ts";

await tf.setBackend("cpu");

Deno.test("decoding: confident queries become non-overlapping instances; no-object and weak queries are dropped", () => {
  // 4 queries, 2 classes + no-object; masks 4×4 upsampled to 8×8
  const big = 20, L = -20;
  const logits = tf.tensor2d([
    [big, 0, 0], // class 0, confident
    [0, big, 0], // class 1, confident
    [0, 0, big], // no object
    [0.1, 0, 0], // weak (≈ 0.37)
  ]);
  const m = (f: (y: number, x: number) => boolean) =>
    Array.from({ length: 16 }, (_, i) => (f(Math.floor(i / 4), i % 4) ? big : L));
  const masks = tf.tensor3d([m((_, x) => x < 2), m((_, x) => x >= 2), m(() => true), m(() => true)].flat(), [4, 4, 4]);
  const d = decodeInstances(logits, masks, 8, 8, { ...defaultDecodeOptions, score: "class" });
  assert.deepEqual(Array.from(d.classOf), [-1, 0, 1]);
  assert.equal(d.instances[0], 1);
  assert.equal(d.instances[7], 2);
  assert.equal(new Set(d.instances).size, 2, "every pixel belongs to one of the two instances");
  tf.dispose([logits, masks]);
});

Deno.test("decoding: a segment that keeps less than the overlap fraction of its mask is dropped", () => {
  const logits = tf.tensor2d([[10, 0], [9, 0]]); // both class 0, the first more confident
  const masks = tf.tensor3d([...Array(16).fill(10), ...Array.from({ length: 16 }, (_, i) => (i < 12 ? 10 : -10))], [
    2,
    4,
    4,
  ]);
  const d = decodeInstances(logits, masks, 4, 4, { ...defaultDecodeOptions, score: "class", overlapThreshold: 0.8 });
  assert.deepEqual(Array.from(d.classOf), [-1, 0], "the second query is covered by the first");
  assert.ok(d.instances.every((v) => v === 1));
  tf.dispose([logits, masks]);
});

Deno.test("decoding by objectness: a nucleus split between two classes is kept, labelled with the better class", () => {
  // p ≈ [0.45, 0.45, 0.1]: no class reaches 0.5, but 1 − p(no object) = 0.9 does
  const logits = tf.tensor2d([[Math.log(4.5), Math.log(4.5) - 0.01, 0], [0, 0, 5]]);
  const masks = tf.tensor3d([...Array(16).fill(10), ...Array(16).fill(10)], [2, 4, 4]);
  const classRule = { ...defaultDecodeOptions, score: "class" as const };
  assert.deepEqual(Array.from(decodeInstances(logits, masks, 4, 4, classRule).classOf), [-1], "class rule: dropped");
  const d = decodeInstances(logits, masks, 4, 4);
  assert.deepEqual(Array.from(d.classOf), [-1, 0]);
  assert.ok(Math.abs((d.scores[1] as number) - 0.9) < 1e-3, `score ${d.scores[1]}`);
  assert.ok(d.instances.every((v) => v === 1), "the no-object query (p ≈ 0.99) takes no pixel");
  tf.dispose([logits, masks]);
});

/** The decoding as it was written first, on tfjs's resizeBilinear: the reference for the JS version. */
const referenceDecode = (
  logits: tf.Tensor2D,
  masks: tf.Tensor3D,
  height: number,
  width: number,
  options: DecodeOptions,
) => {
  const [q, c1] = logits.shape, classes = c1 - 1;
  const probs = tf.tidy(() => tf.softmax(logits).dataSync());
  const kept: Array<{ query: number; label: number; score: number }> = [];
  for (let i = 0; i < q; i++) {
    let label = 0, best = -1;
    const candidates = options.score === "objectness" ? classes : c1;
    for (let c = 0; c < candidates; c++) {
      if ((probs[i * c1 + c] as number) > best) [best, label] = [probs[i * c1 + c] as number, c];
    }
    const score = options.score === "objectness" ? 1 - (probs[i * c1 + classes] as number) : best;
    if (label < classes && score > options.scoreThreshold) kept.push({ query: i, label, score });
  }
  const n = height * width, instances = new Int32Array(n);
  if (kept.length === 0) return { instances, classOf: [-1] };
  const maskProbs = tf.tidy(() => {
    const up = tf.image.resizeBilinear(
      tf.transpose(tf.gather(masks, kept.map((k) => k.query)), [1, 2, 0]) as tf.Tensor3D,
      [height, width],
    );
    return tf.sigmoid(up).dataSync(); // [H·W·K]
  });
  const k = kept.length, owner = new Int32Array(n).fill(-1), own = new Int32Array(k), area = new Int32Array(k);
  for (let p = 0; p < n; p++) {
    let best = -1, bestValue = 0;
    for (let j = 0; j < k; j++) {
      const prob = maskProbs[p * k + j] as number;
      if (prob >= options.maskThreshold) area[j] = (area[j] as number) + 1;
      const value = (kept[j] as { score: number }).score * prob;
      if (value > bestValue) [best, bestValue] = [j, value];
    }
    if (best >= 0 && (maskProbs[p * k + best] as number) >= options.maskThreshold) {
      owner[p] = best;
      own[best] = (own[best] as number) + 1;
    }
  }
  const idOf = new Int32Array(k), classOf = [-1];
  for (let j = 0; j < k; j++) {
    if ((own[j] as number) > 0 && (own[j] as number) / (area[j] as number) >= options.overlapThreshold) {
      classOf.push((kept[j] as { label: number }).label);
      idOf[j] = classOf.length - 1;
    }
  }
  for (let p = 0; p < n; p++) if ((owner[p] as number) >= 0) instances[p] = idOf[owner[p] as number] as number;
  return { instances, classOf };
};

Deno.test("decoding: the JS upsampling and argmax agree with tfjs's resizeBilinear version on random blobs", () => {
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (
    const [h, size, options] of [
      [16, 32, defaultDecodeOptions],
      [16, 64, { ...defaultDecodeOptions, score: "class", overlapThreshold: 0.8 }],
      [20, 50, { ...defaultDecodeOptions, scoreThreshold: 0.3, maskThreshold: 0.4 }],
    ] as const
  ) {
    const q = 30, classes = 3;
    // each query: a blob (logit 8 at its centre falling off) plus noise, so queries overlap and compete
    const data = new Float32Array(q * h * h);
    for (let j = 0; j < q; j++) {
      const cy = rand() * h, cx = rand() * h, r = 1 + rand() * 4;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < h; x++) {
          data[j * h * h + y * h + x] = 8 - 8 * Math.hypot(y - cy, x - cx) / r + (rand() - 0.5) * 2;
        }
      }
    }
    const logits = tf.tensor2d(Array.from({ length: q * (classes + 1) }, () => (rand() - 0.5) * 8), [q, classes + 1]);
    const masks = tf.tensor3d(data, [q, h, h]);
    const got = decodeInstances(logits, masks, size, size, options),
      want = referenceDecode(logits, masks, size, size, options);
    assert.ok(want.classOf.length > 3, "the case keeps several instances");
    assert.deepEqual(Array.from(got.classOf), want.classOf);
    assert.deepEqual(Array.from(got.instances), Array.from(want.instances));
    tf.dispose([logits, masks]);
  }
});

Deno.test("decoding with a foreground map: background pixels are owned by no query; a query mostly on background is dropped", () => {
  // 2 confident queries on a 4×4 grid (no upsampling): query 0 covers the left half, query 1 the
  // right half; the foreground map keeps the left half and one column of the right half
  const big = 20, L = -20;
  const logits = [big, 0, big, 0]; // [Q·(C+1)], one class + no-object
  const m = (f: (x: number) => boolean) => Array.from({ length: 16 }, (_, i) => (f(i % 4) ? big : L));
  const masks = [...m((x) => x < 2), ...m((x) => x >= 2)];
  // dense maps [h·w·3]: the foreground logit first, distance maps 0
  const maps = (inside: (x: number) => boolean) =>
    Array.from({ length: 16 }, (_, i) => [inside(i % 4) ? big : L, 0, 0]).flat();
  const fg = maps((x) => x < 3); // columns 0–2
  const shape = { queries: 2, classes: 1, h: 4, w: 4 };
  const without = decodeValues(logits, masks, shape, 4, 4, { ...defaultDecodeOptions, foregroundThreshold: 0.5 });
  assert.equal(new Set(without.instances).size, 2, "no map given: the option changes nothing");
  // query 1 keeps column 2 (4 of its 8 pixels: half, kept); column 3 becomes background
  const half = decodeValues(logits, masks, shape, 4, 4, { ...defaultDecodeOptions, foregroundThreshold: 0.5 }, {
    dense: fg,
  });
  assert.deepEqual(Array.from(half.instances), Array(4).fill([1, 1, 2, 0]).flat());
  // only column 0 is foreground: query 1 keeps nothing and is dropped, query 0 keeps half of its pixels
  const narrow = maps((x) => x === 0);
  const one = decodeValues(logits, masks, shape, 4, 4, { ...defaultDecodeOptions, foregroundThreshold: 0.5 }, {
    dense: narrow,
  });
  assert.deepEqual(Array.from(one.classOf), [-1, 0]);
  assert.deepEqual(Array.from(one.instances), Array(4).fill([1, 0, 0, 0]).flat());
});

Deno.test("decoding with a type map: each dense nucleus takes the class of its summed type probabilities", () => {
  // 2 confident queries of class 0 (of 2) on a 4×4 grid, left and right halves; the dense decoding finds them as
  // two nuclei (foreground everywhere, h jumps between columns 1 and 2)
  const big = 20, L = -20;
  const logits = [big, 0, L, big, 0, L]; // [Q·(C+1)]: both queries say class 0
  const m = (f: (x: number) => boolean) => Array.from({ length: 16 }, (_, i) => (f(i % 4) ? big : L));
  const masks = [...m((x) => x < 2), ...m((x) => x >= 2)];
  const dense = Array.from({ length: 16 }, (_, i) => [big, i % 4 < 2 ? 0.5 : -0.5, 0]).flat();
  const shape = { queries: 2, classes: 2, h: 4, w: 4 };
  const options = {
    ...defaultDecodeOptions,
    instances: "hybrid" as const,
    dense: { ...defaultDenseDecodeOptions, minArea: 1 },
  };
  const plain = decodeValues(logits, masks, shape, 4, 4, options, { dense });
  assert.deepEqual(Array.from(plain.classOf), [-1, 0, 0], "without a type map: the queries' class");
  // the type map [h·w·3] (background, class 0, class 1): class 1 on the right half; on the left, class 0 on three
  // columns' worth of probability against class 1 on one
  const types = Array.from({ length: 16 }, (_, i) => {
    const x = i % 4;
    return x >= 2 ? [L, L, big] : x === 0 ? [L, L, big] : [L, big, L];
  }).flat();
  const withTypes = decodeValues(logits, masks, shape, 4, 4, options, { dense, types });
  const left = withTypes.instances[0] as number, right = withTypes.instances[3] as number;
  assert.notEqual(left, right);
  assert.equal(withTypes.classOf[right], 1, "the right nucleus reads class 1 from the map");
  // the left nucleus: columns 0 (class 1) and 1 (class 0) tie; the first class wins ties
  assert.equal(withTypes.classOf[left], 0);
  assert.deepEqual(Array.from(withTypes.instances), Array.from(plain.instances), "the instances are unchanged");
  assert.throws(
    () => decodeValues(logits, masks, shape, 4, 4, options, { dense, types: types.slice(3) }),
    /type logits/,
  );
});

Deno.test("decoding classBias: offsets of the log class probabilities move a query's class, not whether it is kept", () => {
  // one query, p ≈ [0.6, 0.3, 0.1]: class 0; with −1 on class 0, log 0.6 − 1 < log 0.3: class 1; the score stays
  const logits = [Math.log(6), Math.log(3), 0];
  const masks = Array(16).fill(20);
  const shape = { queries: 1, classes: 2, h: 4, w: 4 };
  const plain = decodeValues(logits, masks, shape, 4, 4);
  const biased = decodeValues(logits, masks, shape, 4, 4, { ...defaultDecodeOptions, classBias: [-1, 0] });
  assert.deepEqual(Array.from(plain.classOf), [-1, 0]);
  assert.deepEqual(Array.from(biased.classOf), [-1, 1]);
  assert.deepEqual(Array.from(biased.scores), Array.from(plain.scores));
  assert.deepEqual(Array.from(biased.instances), Array.from(plain.instances));
  assert.throws(
    () => decodeValues(logits, masks, shape, 4, 4, { ...defaultDecodeOptions, classBias: [0] }),
    /--class-bias has 1 values for this model's 2 classes/,
  );
});

Deno.test("decoding by centres: a nucleus no kept query owns takes the class of the query strongest at its centroid", () => {
  // 16×16, two centre peaks (stride 4: cells (1, 0) and (1, 3), pixels (6, 2) and (6, 14)) part the foreground into a
  // left and a right nucleus; query 0 (class 0, confident) covers the left, query 1 (class 1) the right
  // but is mostly "no object", so it is not kept and owns nothing: the right nucleus used to take the tile's most
  // frequent class (0)
  const big = 20, L = -20, n = 16;
  const logits = [big, 0, L, L, 0, big]; // [Q·(C+1)]: query 1's best real class is 1, its objectness ≈ e^−20
  const m = (f: (x: number) => boolean) => Array.from({ length: n * n }, (_, i) => (f(i % n) ? big : L));
  const masks = [...m((x) => x < 6), ...m((x) => x >= 6)]; // query 0 stops short of where the nuclei part (x ≈ 8)
  const dense = Array.from({ length: n * n }, () => [big, 0, 0]).flat();
  const centers = new Array(16).fill(-6); // [4·4]
  centers[1 * 4 + 0] = 3, centers[1 * 4 + 3] = 3;
  const shape = { queries: 2, classes: 2, h: n, w: n };
  const options = { ...defaultDecodeOptions, instances: "centers" as const, dense: defaultDenseDecodeOptions };
  const d = decodeValues(logits, masks, shape, n, n, options, { dense, centers, ch: 4, cw: 4 });
  const left = d.instances[6 * n + 2] as number, right = d.instances[6 * n + 14] as number;
  assert.ok(left > 0 && right > 0 && left !== right, `two nuclei: ${left}, ${right}`);
  assert.equal(d.classOf[left], 0, "the left nucleus: its owning query's class");
  assert.equal(d.classOf[right], 1, "the right nucleus: the class of the (unkept) query at its centroid");
});
