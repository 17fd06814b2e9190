/**
 * A look at one tile: the image with every instance's contour drawn in its class colour
 * (a contour pixel is an instance pixel with a 4-neighbour outside the instance).
 */
import type { Sample } from "./sample.ts";

/** Distinct colours for classes 0.. (class −1 is white). */
export const CLASS_COLOURS: ReadonlyArray<readonly [number, number, number]> = [
  [255, 0, 0],
  [0, 200, 0],
  [0, 90, 255],
  [255, 200, 0],
  [255, 0, 255],
  [0, 230, 230],
  [255, 128, 0],
  [140, 70, 255],
];

/** [H, W, 3] RGB: the sample's image with contours in class colours. */
export const contourOverlay = (s: Sample): Uint8Array => {
  const out = s.image.slice();
  const { height: h, width: w, instances } = s;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x, id = instances[i] as number;
      if (id === 0) continue;
      const edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 || instances[i - 1] !== id ||
        instances[i + 1] !== id ||
        instances[i - w] !== id || instances[i + w] !== id;
      if (!edge) continue;
      const c = s.classOf[id] as number;
      const colour = c < 0
        ? [255, 255, 255] as const
        : CLASS_COLOURS[c % CLASS_COLOURS.length] as readonly [number, number, number];
      out.set(colour, i * 3);
    }
  }
  return out;
};
