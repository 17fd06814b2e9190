/**
 * From one image's predictions to instances (Mask2Former's panoptic inference): a query is kept
 * when its most likely class is a real class with probability > `scoreThreshold` (`score: "class"`,
 * Mask2Former's rule) or when it is an object with probability 1 − p(no object) > `scoreThreshold`
 * (`score: "objectness"`: a nucleus whose class is uncertain between look-alike classes is still a
 * nucleus; its label is the most likely real class); every pixel goes
 * to the kept query with the largest score × mask probability (so instances never overlap); a
 * query's segment is dropped when it keeps less than `overlapThreshold` of its own mask
 * (probability ≥ `maskThreshold`), or nothing. Masks are upsampled bilinearly to the image size.
 */
import * as tf from "@tensorflow/tfjs";

export interface DecodeOptions {
  /** what the threshold and the per-pixel argmax read: the best class probability, or 1 − p(no object) */
  readonly score: "class" | "objectness";
  readonly scoreThreshold: number;
  readonly maskThreshold: number;
  readonly overlapThreshold: number;
}

/**
 * Mask2Former's panoptic_inference uses the class rule, object_mask_threshold 0.8 and
 * overlap_threshold 0.8. For dense nuclei we default to objectness > 0.5 and overlap 0.5: on the
 * training tiles of a synthetic run (step 900, tiny) that raised bPQ from 0.30 to 0.38 and
 * detection F1 from 0.68 to 0.90 — at 0.8, touching nuclei whose masks still bleed into each other
 * were dropped. Mask2Former's rule is `{ score: "class", overlapThreshold: 0.8 }`.
 */
export const defaultDecodeOptions: DecodeOptions = {
  score: "objectness",
  scoreThreshold: 0.5,
  maskThreshold: 0.5,
  overlapThreshold: 0.5,
};

export interface DecodedInstances {
  readonly instances: Int32Array; // [H, W], 0 = background, ids 1..n
  readonly classOf: Int32Array; // [n + 1], classOf[0] = −1
  readonly scores: Float32Array; // [n + 1], scores[0] = 0
}

/** Decodes logits [Q, C+1] and mask logits [Q, h, w] into an H×W instance map. */
export const decodeInstances = (
  logits: tf.Tensor2D,
  masks: tf.Tensor3D,
  height: number,
  width: number,
  options: DecodeOptions = defaultDecodeOptions,
): DecodedInstances => {
  const [q, c1] = logits.shape, classes = c1 - 1;
  const probs = tf.tidy(() => tf.softmax(logits).dataSync()); // [Q·(C+1)]
  const kept: Array<{ query: number; label: number; score: number }> = [];
  for (let i = 0; i < q; i++) {
    const noObject = probs[i * c1 + classes] as number;
    let label = 0, best = -1;
    // objectness: the best real class labels the nucleus; class: the no-object class competes too
    const candidates = options.score === "objectness" ? classes : c1;
    for (let c = 0; c < candidates; c++) {
      if ((probs[i * c1 + c] as number) > best) [best, label] = [probs[i * c1 + c] as number, c];
    }
    const score = options.score === "objectness" ? 1 - noObject : best;
    if (label < classes && score > options.scoreThreshold) kept.push({ query: i, label, score });
  }
  const n = height * width;
  const instances = new Int32Array(n);
  if (kept.length === 0) return { instances, classOf: Int32Array.from([-1]), scores: Float32Array.from([0]) };
  const maskProbs = tf.tidy(() => {
    const selected = tf.gather(masks, kept.map((k) => k.query)); // [K, h, w]
    const up = tf.image.resizeBilinear(tf.transpose(selected, [1, 2, 0]) as tf.Tensor3D, [height, width]); // [H, W, K]
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
  const idOf = new Int32Array(k).fill(0), classOf = [-1], scores = [0];
  for (let j = 0; j < k; j++) {
    if (
      (area[j] as number) > 0 && (own[j] as number) > 0 &&
      (own[j] as number) / (area[j] as number) >= options.overlapThreshold
    ) {
      classOf.push((kept[j] as { label: number }).label);
      scores.push((kept[j] as { score: number }).score);
      idOf[j] = classOf.length - 1;
    }
  }
  for (let p = 0; p < n; p++) if ((owner[p] as number) >= 0) instances[p] = idOf[owner[p] as number] as number;
  return { instances, classOf: Int32Array.from(classOf), scores: Float32Array.from(scores) };
};
