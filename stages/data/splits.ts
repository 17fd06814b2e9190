/**
 * Train/validation/test splits, as sample indices.
 *
 * - PanNuke: the three fold rotations used in the literature (PromptNucSeg's naming): split 1
 *   trains on fold 1, validates on 2, tests on 3; split 2: 2-1-3; split 3: 3-2-1.
 * - A single set (CoNSeP Train, a folder): a seeded split stratified by a key per sample (e.g. the
 *   dominant class or the organ), so every stratum is represented in validation in proportion.
 */
import { mulberry32, shuffled } from "./random.ts";
import type { Dataset } from "./sample.ts";

/** The folds (train, val, test) of PanNuke split 1, 2 or 3. */
export const PANNUKE_ROTATIONS: Readonly<
  Record<1 | 2 | 3, { readonly train: number; readonly val: number; readonly test: number }>
> = {
  1: { train: 1, val: 2, test: 3 },
  2: { train: 2, val: 1, test: 3 },
  3: { train: 3, val: 2, test: 1 },
};

export interface Split {
  readonly train: ReadonlyArray<number>;
  readonly val: ReadonlyArray<number>;
  readonly test: ReadonlyArray<number>;
}

/** Sample indices of PanNuke split `rotation`, given the fold number of every sample. */
export const pannukeSplit = (foldOf: ReadonlyArray<number>, rotation: 1 | 2 | 3): Split => {
  const r = PANNUKE_ROTATIONS[rotation];
  const pick = (fold: number) => foldOf.flatMap((f, i) => (f === fold ? [i] : []));
  const split = { train: pick(r.train), val: pick(r.val), test: pick(r.test) };
  for (const [part, fold] of Object.entries(r)) {
    if (split[part as keyof Split].length === 0) {
      throw new RangeError(`PanNuke split ${rotation} needs fold ${fold} for ${part}, which is not present`);
    }
  }
  return split;
};

/**
 * A seeded split stratified by `keys[i]`: within each stratum (in sorted key order) the samples
 * are shuffled and the first round(n·val) go to validation, the next round(n·test) to test.
 * Every stratum with at least 2 samples keeps one in training.
 */
export const stratifiedSplit = (
  keys: ReadonlyArray<string>,
  fractions: { readonly val: number; readonly test?: number },
  seed: number,
): Split => {
  const test = fractions.test ?? 0;
  if (!(fractions.val >= 0 && test >= 0 && fractions.val + test < 1)) {
    throw new RangeError(
      `stratifiedSplit: fractions val ${fractions.val} and test ${test} must be ≥ 0 and sum below 1`,
    );
  }
  const rng = mulberry32(seed);
  const strata = new Map<string, number[]>();
  keys.forEach((k, i) => strata.set(k, [...(strata.get(k) ?? []), i]));
  const out = { train: [] as number[], val: [] as number[], test: [] as number[] };
  for (const key of [...strata.keys()].sort()) {
    const members = shuffled(strata.get(key) as number[], rng);
    let nVal = Math.round(members.length * fractions.val), nTest = Math.round(members.length * test);
    while (members.length >= 2 && nVal + nTest >= members.length) nTest > 0 ? nTest-- : nVal--;
    out.val.push(...members.slice(0, nVal));
    out.test.push(...members.slice(nVal, nVal + nTest));
    out.train.push(...members.slice(nVal + nTest));
  }
  const sort = (xs: number[]) => xs.sort((a, b) => a - b);
  return { train: sort(out.train), val: sort(out.val), test: sort(out.test) };
};

/** The class with the most nuclei in a sample (its stratification key); "none" for empty tiles. */
export const dominantClass = (classOf: Int32Array, names: ReadonlyArray<string>): string => {
  const counts = new Map<number, number>();
  for (let k = 1; k < classOf.length; k++) {
    counts.set(classOf[k] as number, (counts.get(classOf[k] as number) ?? 0) + 1);
  }
  let best = -2, bestCount = 0;
  for (const [c, n] of [...counts].sort((a, b) => a[0] - b[0])) if (n > bestCount) [best, bestCount] = [c, n];
  return best === -2 ? "none" : best === -1 ? "unknown" : names[best] ?? String(best);
};

/**
 * The seeded split of a dataset into training and validation sample indices, stratified by each
 * sample's dominant class: the split of `deno task train` and of the attribute fit on its training part.
 */
export const seededSplit = async (
  ds: Dataset,
  valFraction: number,
  seed: number,
): Promise<{ train: number[]; val: number[] }> => {
  const keys: string[] = [];
  for (let i = 0; i < ds.size; i++) keys.push(dominantClass((await ds.sample(i)).classOf, ds.classes));
  const split = stratifiedSplit(keys, { val: valFraction }, seed);
  return { train: [...split.train], val: [...split.val] };
};
