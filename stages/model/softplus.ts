/**
 * softplus(x) = log(1 + eˣ), computed as relu(x) − log σ(|x|), with the gradient σ(x)·dy.
 *
 * Why: the BCE of the matcher and of the mask loss takes the softplus of every sampled point
 * (≈ 14 tensors of 120 × 4,096 a training step). tfjs-wasm's Softplus is a scalar loop (≈ 6 ms
 * each); its sigmoid is vectorised and its log cheap, so this form is ≈ 2.5× faster.
 * Accuracy: σ(|x|) ∈ [½, 1] keeps the log well conditioned; the only loss is where the true value
 * is below float32's resolution next to 1 (e^−|x| < 6·10⁻⁸, i.e. x < −16.6), which comes out 0
 * (absolute error < 6·10⁻⁸; tested against tfjs's softplus).
 */
import * as tf from "@tensorflow/tfjs";

/** Elementwise softplus of `x` (any shape), differentiable. */
export const softplus = <T extends tf.Tensor>(x: T): T =>
  tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([input]);
    return {
      value: tf.tidy(() => tf.sub(tf.relu(input), tf.log(tf.sigmoid(tf.abs(input))))),
      gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => tf.mul(dy, tf.sigmoid(saved as tf.Tensor)),
    };
  })(x) as T;
