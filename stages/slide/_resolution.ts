/**
 * Microns per pixel from a file's resolution (pixels per inch or per centimetre), kept only when it could be a
 * microscope's: files written by ordinary image software carry 72, 96 or 300 pixels per inch (≈ 350, 265, 85 µm per
 * pixel), which would silently rescale a slide by a factor of a hundred if taken at their word.
 */

/** The range of µm per pixel taken as a real scan: 0.05 (beyond any objective) to 20 (a 0.5× overview). */
export const PLAUSIBLE_MPP = { min: 0.05, max: 20 } as const;

/** `mpp` when it is a finite number in PLAUSIBLE_MPP, else undefined. */
export const plausibleMpp = (mpp: number): number | undefined =>
  Number.isFinite(mpp) && mpp >= PLAUSIBLE_MPP.min && mpp <= PLAUSIBLE_MPP.max ? mpp : undefined;

/** µm per pixel from `perUnit` pixels per inch (25 400 µm) or per centimetre (10 000 µm), when plausible. */
export const mppFromResolution = (perUnit: number, unit: "inch" | "cm"): number | undefined =>
  perUnit > 0 ? plausibleMpp((unit === "inch" ? 25400 : 10000) / perUnit) : undefined;
