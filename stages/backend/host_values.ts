/**
 * A tensor's values on the host, read once per buffer. Reading copies (on wasm, out of the WASM
 * heap: 31 MB for a batch's mask logits), and a forward reads the same mask logits up to three
 * times (the next layer's attention mask, the loss's planning, point sampling); tensors that share
 * a buffer (reshapes) share the read. Tensors are immutable, so a read never goes stale; the
 * values are read-only by contract and leave with their buffer (a WeakMap keyed by the data id).
 * Backends without synchronous reads need the values read first (`prefetch`).
 */
import type * as tf from "@tensorflow/tfjs";

const reads = new WeakMap<object, tf.TypedArray>();

/** The values of `t` (read-only), read once per data buffer. */
export const hostValues = (t: tf.Tensor): tf.TypedArray => {
  let values = reads.get(t.dataId);
  if (values === undefined) {
    values = t.dataSync();
    reads.set(t.dataId, values);
  }
  return values;
};
