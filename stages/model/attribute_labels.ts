/**
 * Per-nucleus attribute labels for L_attr (paper notes, "Key Designs" 1–2): every ground-truth
 * nucleus of a tile is measured (attributes/mask_features.ts), each fitted attribute's value falls
 * in one of its intervals, and the interval's word is the positive of that attribute's contrast;
 * the attribute's whole family scale (e.g. tiny … huge) supplies the candidates.
 *
 * Inputs: the `attributes.words` stage output (thresholds, interval words and family scale per
 * attribute) and a sample. Output: instance id → the scale index of each attribute's word (−1 when
 * the value is missing, e.g. an aspect ratio of collinear pixels).
 *
 * Gotchas: labels are measured on the tile as read, before augmentation — flips and rotations do
 * not change the attributes, the light stain jitter barely does, and a crop keeps instance ids, so
 * the labels follow the nuclei through augmentation.
 */
import { wordOf } from "../attributes/fit.ts";
import { maskFeatures } from "../attributes/mask_features.ts";
import type { Sample } from "../data/sample.ts";
import { attributePrompt } from "../text/prompts.ts";

/** One fitted attribute, as the `attributes.words` stage writes it. */
export interface FittedAttribute {
  readonly feature: string;
  readonly thresholds: ReadonlyArray<number>;
  readonly words: ReadonlyArray<string>;
  /** the family's five words, low → high: the candidates of the contrast */
  readonly scale: ReadonlyArray<string>;
}

/** Instance id → `[A]` scale indices (−1 = unknown), for every nucleus of `s`. */
export const attributeLabels = (
  attributes: ReadonlyArray<FittedAttribute>,
  s: Sample,
): Map<number, Int32Array> => {
  const labels = new Map<number, Int32Array>();
  for (const record of maskFeatures(s.image, s.instances, s.height, s.width)) {
    const values = record as unknown as Readonly<Record<string, number | null>>;
    labels.set(
      record.id,
      Int32Array.from(attributes, (a) => {
        const word = wordOf({ thresholds: [...a.thresholds], words: [...a.words] }, values[a.feature]);
        return word === null ? -1 : a.scale.indexOf(word);
      }),
    );
  }
  return labels;
};

/** The prompts of each attribute's candidates, `a {word} nucleus`, in scale order. */
export const attributePrompts = (attributes: ReadonlyArray<FittedAttribute>): string[][] =>
  attributes.map((a) => a.scale.map(attributePrompt));
