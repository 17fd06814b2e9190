/**
 * Attribute words (features spec §B5): each feature's word family and direction, the centred word subsets for
 * 1–5 intervals, and the interval a value falls in.
 *
 * Inputs: a feature name, kept thresholds (ascending) and values. Outputs: words, interval indices and the
 * interval bounds (`null` stands for −∞ / +∞, so the result stays plain JSON).
 *
 * Gotchas: a value x falls in interval `#{t : x > t}`, so a value equal to a threshold belongs to the interval
 * below it (intervals are `(t_j, t_{j+1}]`). For direction "-" (solidity) the index list is reversed: high solidity
 * is a *smooth* boundary. More than 5 intervals have no words; callers cap thresholds at 4.
 */

/** The family of a feature: its five-word scale, low → high. */
export type Family =
  | "size"
  | "eccentricity"
  | "color_intensity"
  | "boundary_irregularity"
  | "boundary_sharpness"
  | "chromatin_heterogeneity"
  | "chromatin_distribution"
  | "generic";

/** "+": larger values read as the higher words; "-": larger values read as the lower words. */
export type Direction = "+" | "-";

/** The five words of each family, low → high (§B5 table). */
export const SCALES: { readonly [F in Family]: readonly [string, string, string, string, string] } = {
  size: ["tiny", "small", "medium", "large", "huge"],
  eccentricity: ["very round", "round", "oval", "elongated", "very elongated"],
  color_intensity: ["very pale", "pale", "moderate", "dark", "very dark"],
  boundary_irregularity: ["very smooth", "smooth", "slightly irregular", "irregular", "very irregular"],
  boundary_sharpness: ["very blurred", "blurred", "moderately sharp", "sharp", "very sharp"],
  chromatin_heterogeneity: [
    "very homogeneous",
    "homogeneous",
    "slightly heterogeneous",
    "heterogeneous",
    "very heterogeneous",
  ],
  chromatin_distribution: ["strongly rim-dark", "rim-dark", "even", "core-dark", "strongly core-dark"],
  generic: ["very low", "low", "medium", "high", "very high"],
};

const FEATURE_FAMILIES: Readonly<Record<string, readonly [Family, Direction]>> = {
  area: ["size", "+"],
  equivalent_diameter: ["size", "+"],
  major_axis_length: ["size", "+"],
  minor_axis_length: ["size", "+"],
  perimeter: ["size", "+"],
  eccentricity: ["eccentricity", "+"],
  aspect_ratio: ["eccentricity", "+"],
  hematoxylin_mean: ["color_intensity", "+"],
  perimeter_ratio: ["boundary_irregularity", "+"],
  solidity: ["boundary_irregularity", "-"],
  mean_boundary_gradient: ["boundary_sharpness", "+"],
  hematoxylin_var: ["chromatin_heterogeneity", "+"],
  core_rim_diff: ["chromatin_distribution", "+"],
};

/** Family and direction of a feature; `extent` and every feature not in the table are generic (+). */
export const familyOf = (feature: string): { readonly family: Family; readonly direction: Direction } => {
  // Object.hasOwn: a feature called "constructor" or "toString" must not hit Object.prototype
  const entry = Object.hasOwn(FEATURE_FAMILIES, feature) ? FEATURE_FAMILIES[feature] : undefined;
  return entry === undefined ? { family: "generic", direction: "+" } : { family: entry[0], direction: entry[1] };
};

/** The centred, symmetric index subsets of the 5-word scale for 1–5 intervals (§B5). */
const CENTRED: readonly (readonly number[])[] = [[2], [1, 3], [1, 2, 3], [0, 1, 3, 4], [0, 1, 2, 3, 4]];

/** Scale indices of the intervals, low → high value; reversed for direction "-". Throws outside 1–5. */
export const wordIndices = (intervals: number, direction: Direction): number[] => {
  const idx = CENTRED[intervals - 1];
  if (idx === undefined) throw new RangeError(`words exist for 1 to 5 intervals, found ${intervals}`);
  return direction === "-" ? [...idx].reverse() : [...idx];
};

/** Words of the `thresholds.length + 1` intervals of a feature, low → high value. */
export const intervalWords = (feature: string, thresholds: readonly number[]): string[] => {
  const { family, direction } = familyOf(feature);
  return wordIndices(thresholds.length + 1, direction).map((i) => SCALES[family][i] as string);
};

/** The 0-based interval of `x`: the number of thresholds strictly below it. */
export const intervalOf = (thresholds: readonly number[], x: number): number => {
  let k = 0;
  for (const t of thresholds) if (x > t) k++;
  return k;
};

/** One interval `(lower_exclusive, upper_inclusive]`; `null` bounds are −∞ and +∞. */
export interface IntervalBounds {
  readonly index: number;
  readonly lower_exclusive: number | null;
  readonly upper_inclusive: number | null;
}

/** The k+1 intervals `(−∞, t1], (t1, t2], …, (tk, +∞)` of ascending thresholds. */
export const intervalBounds = (thresholds: readonly number[]): IntervalBounds[] =>
  Array.from({ length: thresholds.length + 1 }, (_, j) => ({
    index: j,
    lower_exclusive: j === 0 ? null : thresholds[j - 1] as number,
    upper_inclusive: j === thresholds.length ? null : thresholds[j] as number,
  }));
