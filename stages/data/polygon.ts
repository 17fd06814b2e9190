/**
 * Polygon filling with the pixel-centre rule: pixel (row r, column c) belongs to a polygon when
 * the point (x = c, y = r) of the annotation's coordinate system lies inside it or on its boundary.
 * The test is O'Rourke's ray crossing with left and right crossing counts ("Computational Geometry
 * in C", 2nd ed., ch. 7), which classifies boundary points exactly — the rule scikit-image's
 * `draw.polygon` uses, checked pixel for pixel against it (tests/fixtures/make_polygon_golden.py).
 * Only the polygon's bounding box, clipped to the image, is visited.
 */

/** Whether (x, y) is inside the polygon or on its boundary (vertices within 1e-12). */
export const pointInPolygon = (xs: ArrayLike<number>, ys: ArrayLike<number>, x: number, y: number): boolean => {
  const n = xs.length, eps = 1e-12;
  let x1 = (xs[n - 1] as number) - x, y1 = (ys[n - 1] as number) - y;
  let right = 0, left = 0;
  for (let i = 0; i < n; i++) {
    const x0 = (xs[i] as number) - x, y0 = (ys[i] as number) - y;
    if (x0 > -eps && x0 < eps && y0 > -eps && y0 < eps) return true; // a vertex
    // the edge straddles the horizontal line through the point: count crossings right and left
    if ((y0 > 0) !== (y1 > 0) && (x0 * y1 - x1 * y0) / (y1 - y0) > 0) right++;
    if ((y0 < 0) !== (y1 < 0) && (x0 * y1 - x1 * y0) / (y1 - y0) < 0) left++;
    [x1, y1] = [x0, y0];
  }
  // different parities: on an edge; odd right crossings: inside
  return (right & 1) !== (left & 1) || (right & 1) === 1;
};

/** Calls `fill(index)` for every pixel of an H×W image whose centre lies in the polygon. */
export const fillPolygon = (
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  height: number,
  width: number,
  fill: (index: number) => void,
): void => {
  const n = xs.length;
  if (n < 3) return;
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = xs[i] as number, y = ys[i] as number;
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  const r0 = Math.max(0, Math.ceil(minY)), r1 = Math.min(height - 1, Math.floor(maxY));
  const c0 = Math.max(0, Math.ceil(minX)), c1 = Math.min(width - 1, Math.floor(maxX));
  for (let r = r0; r <= r1; r++) {
    for (let c = c0; c <= c1; c++) if (pointInPolygon(xs, ys, c, r)) fill(r * width + c);
  }
};
