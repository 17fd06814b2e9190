import assert from "node:assert/strict";
import { pointInPolygon } from "../data/polygon.ts";
import { mulberry32 } from "../data/random.ts";
import { instanceContours, isSimpleRing, type Point, type Ring, ringArea } from "./contours.ts";

// An [H·W] map from an ASCII picture: "." background, a digit the instance id.
const picture = (rows: ReadonlyArray<string>): { map: Int32Array; height: number; width: number } => {
  const height = rows.length, width = rows[0]?.length ?? 0;
  const map = new Int32Array(height * width);
  rows.forEach((row, r) => [...row].forEach((ch, c) => (map[r * width + c] = ch === "." ? 0 : Number(ch))));
  return { map, height, width };
};

const ringOf = (rings: Map<number, Ring>, id: number): Ring => {
  const ring = rings.get(id);
  assert.ok(ring !== undefined, `no ring for instance ${id}`);
  return ring;
};

const isClosed = (ring: Ring): boolean => {
  const first = ring[0], last = ring[ring.length - 1];
  return first !== undefined && last !== undefined && first[0] === last[0] && first[1] === last[1];
};

const vertexSet = (ring: Ring): string[] => [...new Set(ring.map(([x, y]) => `${x},${y}`))].sort();

Deno.test("ringArea: unit square counter-clockwise in (x, y) is +1, reversed −1", () => {
  const square: Ring = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]];
  assert.equal(ringArea(square), 1);
  assert.equal(ringArea([...square].reverse()), -1);
});

Deno.test("isSimpleRing accepts a triangle and a square with a collinear vertex", () => {
  assert.ok(isSimpleRing([[0, 0], [2, 0], [0, 2], [0, 0]]));
  assert.ok(isSimpleRing([[0, 0], [1, 0], [2, 0], [2, 2], [0, 2], [0, 0]]));
});

Deno.test("isSimpleRing rejects a bow-tie, an unclosed ring, a short ring, a repeated point, a spike and a pinch", () => {
  assert.equal(isSimpleRing([[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]), false, "bow-tie");
  assert.equal(isSimpleRing([[0, 0], [2, 0], [2, 2], [0, 2]]), false, "unclosed");
  assert.equal(isSimpleRing([[0, 0], [2, 0], [0, 0]]), false, "two distinct points");
  assert.equal(isSimpleRing([[0, 0], [2, 0], [2, 0], [0, 2], [0, 0]]), false, "zero-length segment");
  assert.equal(isSimpleRing([[0, 0], [2, 0], [3, 0], [1, 0], [0, 2], [0, 0]]), false, "edge folding back on itself");
  assert.equal(isSimpleRing([[0, 0], [1, 0], [2, 0], [0, 0]]), false, "collinear triangle");
  // two triangles sharing the vertex (1, 1): non-adjacent segments touch there
  assert.equal(isSimpleRing([[0, 0], [2, 0], [1, 1], [2, 2], [0, 2], [1, 1], [0, 0]]), false, "figure eight");
  // a vertex touching the interior of a non-adjacent edge
  assert.equal(isSimpleRing([[0, 0], [4, 0], [4, 2], [2, 0], [0, 2], [0, 0]]), false, "vertex on an edge");
});

Deno.test("one pixel (r=1, c=2) → the diamond through its edge midpoints, area 1/2", () => {
  const { map, height, width } = picture(["....", "..5.", "...."]);
  const ring = ringOf(instanceContours(map, height, width), 5);
  assert.equal(ring.length, 5);
  assert.ok(isClosed(ring) && isSimpleRing(ring));
  assert.deepEqual(vertexSet(ring), ["2,1.5", "2.5,1", "2.5,2", "3,1.5"]);
  assert.equal(ringArea(ring), 0.5);
});

Deno.test("5×5 square: traced area 24.5, i.e. 25 less four chamfered corners of 1/8 each", () => {
  const { map, height, width } = picture([".......", ...Array(5).fill(".11111."), "......."]);
  // tolerance 0: every marching-squares vertex, 5 per side (the outer two are chamfer ends), 20 + closing
  const traced = ringOf(instanceContours(map, height, width, { tolerance: 0 }), 1);
  assert.equal(traced.length, 21);
  assert.equal(ringArea(traced), 24.5);
  // at 0.25 only the collinear vertices go: each chamfer end lies ≈ 0.44 px off the chord of its neighbours
  const octagon = ringOf(instanceContours(map, height, width, { tolerance: 0.25 }), 1);
  assert.deepEqual(vertexSet(octagon), ["1,1.5", "1,5.5", "1.5,1", "1.5,6", "5.5,1", "5.5,6", "6,1.5", "6,5.5"]);
  assert.equal(ringArea(octagon), 24.5);
  assert.deepEqual(ringOf(instanceContours(map, height, width), 1), octagon, "the default 0.3 keeps the octagon");
  // 0.5 lets Douglas–Peucker run each side from one chamfer end to the next (every pixel-edge
  // vertex is within 1/2 of that chord): a square tilted by half a pixel, side² = 4.5² + 0.5²
  const tilted = ringOf(instanceContours(map, height, width, { tolerance: 0.5 }), 1);
  assert.equal(tilted.length, 5);
  assert.equal(ringArea(tilted), 20.5);
});

Deno.test("disc of radius 10: simple ring with area within 5% of π·100", () => {
  const height = 30, width = 30, map = new Int32Array(height * width);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) if ((r + 0.5 - 15) ** 2 + (c + 0.5 - 15) ** 2 <= 100) map[r * width + c] = 9;
  }
  for (const tolerance of [0, 0.5]) {
    const ring = ringOf(instanceContours(map, height, width, { tolerance }), 9);
    assert.ok(isClosed(ring) && isSimpleRing(ring), `tolerance ${tolerance}`);
    const area = ringArea(ring);
    assert.ok(Math.abs(area - Math.PI * 100) < 0.05 * Math.PI * 100, `tolerance ${tolerance}: area ${area}`);
  }
});

Deno.test("instances at the image border and corners are traced up to the image edge", () => {
  const { map, height, width } = picture([
    "1..222",
    "...222",
    "......",
    "33...4",
  ]);
  const rings = instanceContours(map, height, width, { tolerance: 0 });
  assert.deepEqual([...rings.keys()], [1, 2, 3, 4]);
  assert.deepEqual(vertexSet(ringOf(rings, 1)), ["0,0.5", "0.5,0", "0.5,1", "1,0.5"]);
  assert.equal(ringArea(ringOf(rings, 2)), 6 - 4 / 8);
  assert.equal(ringArea(ringOf(rings, 3)), 2 - 4 / 8);
  assert.deepEqual(vertexSet(ringOf(rings, 4)), ["5,3.5", "5.5,3", "5.5,4", "6,3.5"]);
  for (const ring of rings.values()) {
    assert.ok(isSimpleRing(ring) && ringArea(ring) > 0);
    for (const [x, y] of ring) assert.ok(x >= 0 && x <= width && y >= 0 && y <= height, `${x},${y}`);
  }
});

Deno.test("an instance filling the whole image: chamfered rectangle on the image edges", () => {
  const height = 4, width = 6, map = new Int32Array(height * width).fill(2);
  const ring = ringOf(instanceContours(map, height, width, { tolerance: 0.25 }), 2);
  assert.ok(isSimpleRing(ring));
  assert.equal(ringArea(ring), 24 - 4 / 8);
  assert.deepEqual(vertexSet(ring), ["0,0.5", "0,3.5", "0.5,0", "0.5,4", "5.5,0", "5.5,4", "6,0.5", "6,3.5"]);
});

Deno.test("pixels touching only at a corner are separate pieces: the larger one is kept", () => {
  // 2×2 block of instance 1 with a pixel of instance 1 diagonally off its corner, and a lone diagonal pair of 2
  const { map, height, width } = picture([
    "11....",
    "11...2",
    "..1.2.",
    "......",
  ]);
  const rings = instanceContours(map, height, width, { tolerance: 0 });
  const block = ringOf(rings, 1);
  assert.equal(ringArea(block), 4 - 4 / 8);
  for (const [x, y] of block) assert.ok(x <= 2 && y <= 2, `${x},${y} outside the 2×2 block`);
  // equal pieces: either diamond is a valid answer
  const pair = ringOf(rings, 2);
  assert.equal(ringArea(pair), 0.5);
  assert.ok(isSimpleRing(pair));
});

Deno.test("a ring-shaped instance keeps its outer boundary only", () => {
  const { map, height, width } = picture([".....", ".333.", ".3.3.", ".333.", "....."]);
  const ring = ringOf(instanceContours(map, height, width, { tolerance: 0 }), 3);
  assert.ok(isSimpleRing(ring));
  assert.equal(ringArea(ring), 9 - 4 / 8);
});

Deno.test("empty map → no rings; a map of the wrong length is rejected", () => {
  assert.equal(instanceContours(new Int32Array(12), 3, 4).size, 0);
  assert.throws(() => instanceContours(new Int32Array(11), 3, 4), RangeError);
  assert.throws(() => instanceContours(new Int32Array(12), 3, 4, { tolerance: -1 }), RangeError);
});

// ~200 overlapping discs and rotated ellipses painted in order (later ones cover earlier ones).
const randomMap = (seed: number, count: number, height: number, width: number) => {
  const rng = mulberry32(seed), map = new Int32Array(height * width), painted = new Map<number, number>();
  for (let id = 1; id <= count; id++) {
    const cx = rng() * width, cy = rng() * height, radius = 1 + rng() * 12;
    const squash = id % 2 === 0 ? 1 : 0.4 + 0.6 * rng(), angle = rng() * Math.PI; // odd ids: ellipses
    const cos = Math.cos(angle), sin = Math.sin(angle);
    let n = 0;
    for (let r = Math.max(0, Math.floor(cy - radius)); r < Math.min(height, Math.ceil(cy + radius)); r++) {
      for (let c = Math.max(0, Math.floor(cx - radius)); c < Math.min(width, Math.ceil(cx + radius)); c++) {
        const dx = c + 0.5 - cx, dy = r + 0.5 - cy, u = dx * cos + dy * sin, v = (dy * cos - dx * sin) / squash;
        if (u * u + v * v <= radius * radius) [map[r * width + c], n] = [id, n + 1];
      }
    }
    painted.set(id, n);
  }
  return { map, painted };
};

Deno.test("200 random overlapping discs/ellipses on 160×200: every ring closed, simple, positive, in its box", () => {
  const height = 160, width = 200, { map, painted } = randomMap(7, 200, height, width);
  const stats = new Map<
    number,
    { n: number; sx: number; sy: number; r0: number; r1: number; c0: number; c1: number }
  >();
  map.forEach((id, i) => {
    if (id === 0) return;
    const r = Math.floor(i / width), c = i % width;
    const s = stats.get(id) ?? { n: 0, sx: 0, sy: 0, r0: r, r1: r, c0: c, c1: c };
    [s.n, s.sx, s.sy] = [s.n + 1, s.sx + c + 0.5, s.sy + r + 0.5];
    [s.r0, s.r1, s.c0, s.c1] = [Math.min(s.r0, r), Math.max(s.r1, r), Math.min(s.c0, c), Math.max(s.c1, c)];
    stats.set(id, s);
  });
  const rings = instanceContours(map, height, width);
  assert.deepEqual([...rings.keys()], [...stats.keys()].sort((a, b) => a - b));
  assert.ok(rings.size > 120, `only ${rings.size} instances survived`);
  let intact = 0;
  for (const [id, ring] of rings) {
    const s = stats.get(id);
    assert.ok(s !== undefined);
    assert.ok(isClosed(ring), `instance ${id}: not closed`);
    assert.ok(isSimpleRing(ring), `instance ${id}: not simple`);
    assert.ok(ringArea(ring) > 0, `instance ${id}: area ${ringArea(ring)}`);
    for (const [x, y] of ring) {
      assert.ok(x >= s.c0 && x <= s.c1 + 1 && y >= s.r0 && y <= s.r1 + 1, `instance ${id}: (${x}, ${y}) out of box`);
    }
    // an instance nothing painted over is a digitised disc or ellipse: convex, so its centroid is inside
    if (s.n === painted.get(id) && s.n >= 5) {
      intact++;
      const [xs, ys] = [ring.map((p: Point) => p[0]), ring.map((p: Point) => p[1])];
      assert.ok(pointInPolygon(xs, ys, s.sx / s.n, s.sy / s.n), `instance ${id}: centroid outside`);
    }
  }
  assert.ok(intact > 30, `only ${intact} intact instances`);
});

Deno.test("1000×1000 map of 2,000 random instances: one simple ring per instance present", () => {
  const height = 1000, width = 1000, { map } = randomMap(11, 2000, height, width);
  const present = new Set(map);
  present.delete(0);
  const rings = instanceContours(map, height, width);
  assert.equal(rings.size, present.size);
  for (const [id, ring] of rings) assert.ok(present.has(id) && isSimpleRing(ring) && ringArea(ring) > 0, `${id}`);
});
