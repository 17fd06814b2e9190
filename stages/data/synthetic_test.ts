import assert from "node:assert/strict";
import { DatasetError, type Sample, sampleProblem } from "./sample.ts";
import {
  openSynthetic,
  SYNTHETIC_CLASSES,
  SYNTHETIC_ORGANS,
  type SyntheticClass,
  type SyntheticOrgan,
  syntheticSample,
} from "./synthetic.ts";

const bytesEqual = (a: ArrayLike<number>, b: ArrayLike<number>): boolean => {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
};

const sameSample = (a: Sample, b: Sample): boolean =>
  a.organ === b.organ && bytesEqual(a.image, b.image) && bytesEqual(a.instances, b.instances) &&
  bytesEqual(a.classOf, b.classOf);

/** Per-nucleus measurements: area, eccentricity of the inertia ellipse, mean (255 − R) inside the mask. */
interface Nucleus {
  readonly cls: SyntheticClass;
  readonly area: number;
  readonly eccentricity: number;
  readonly darkness: number;
}

/** Everything the statistical tests need from one tile, measured in one pass. */
interface TileStats {
  readonly organ: SyntheticOrgan;
  readonly nuclei: ReadonlyArray<Nucleus>;
  readonly classCounts: ReadonlyArray<number>; // [5] by class, every instance
  readonly background: readonly [number, number, number]; // mean RGB where id = 0
  readonly touching: boolean; // two different ids 4-adjacent
  readonly cutByBorder: boolean; // some id on the tile's outer row or column
}

const measure = (s: Sample): TileStats => {
  const n = s.classOf.length - 1, w = s.width, h = s.height;
  // Moments per id: pixel count, Σx, Σy, Σx², Σy², Σxy, Σ(255 − R).
  const area = new Float64Array(n + 1), sx = new Float64Array(n + 1), sy = new Float64Array(n + 1);
  const sxx = new Float64Array(n + 1), syy = new Float64Array(n + 1), sxy = new Float64Array(n + 1);
  const sd = new Float64Array(n + 1);
  const bg = [0, 0, 0];
  let bgCount = 0, touching = false, cutByBorder = false;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x, id = s.instances[i] as number;
      if (id === 0) {
        for (let c = 0; c < 3; c++) bg[c] = (bg[c] as number) + (s.image[3 * i + c] as number);
        bgCount++;
        continue;
      }
      const right = x + 1 < w ? s.instances[i + 1] as number : 0, down = y + 1 < h ? s.instances[i + w] as number : 0;
      if ((right !== 0 && right !== id) || (down !== 0 && down !== id)) touching = true;
      if (x === 0 || y === 0 || x === w - 1 || y === h - 1) cutByBorder = true;
      area[id] = (area[id] as number) + 1;
      sx[id] = (sx[id] as number) + x;
      sy[id] = (sy[id] as number) + y;
      sxx[id] = (sxx[id] as number) + x * x;
      syy[id] = (syy[id] as number) + y * y;
      sxy[id] = (sxy[id] as number) + x * y;
      sd[id] = (sd[id] as number) + 255 - (s.image[3 * i] as number);
    }
  }
  const at = (a: Float64Array, k: number) => a[k] as number;
  const nuclei: Nucleus[] = [];
  const classCounts = SYNTHETIC_CLASSES.map(() => 0);
  for (let k = 1; k <= n; k++) {
    const c = s.classOf[k] as number;
    classCounts[c] = (classCounts[c] as number) + 1;
    const a = at(area, k);
    if (a < 12) continue; // border slivers say little about shape
    const mx = at(sx, k) / a, my = at(sy, k) / a;
    const vxx = at(sxx, k) / a - mx * mx, vyy = at(syy, k) / a - my * my, vxy = at(sxy, k) / a - mx * my;
    const half = (vxx + vyy) / 2, disc = Math.sqrt(Math.max(0, half * half - (vxx * vyy - vxy * vxy)));
    nuclei.push({
      cls: SYNTHETIC_CLASSES[c] as SyntheticClass,
      area: a,
      eccentricity: Math.sqrt(Math.max(0, 1 - (half - disc) / (half + disc))),
      darkness: at(sd, k) / a,
    });
  }
  const mean = (c: number) => (bg[c] as number) / Math.max(1, bgCount);
  return {
    organ: s.organ as SyntheticOrgan,
    nuclei,
    classCounts,
    background: [mean(0), mean(1), mean(2)],
    touching,
    cutByBorder,
  };
};

// 200 tiles, measured once and shared by the statistical tests (≈ 2 s).
let cached: TileStats[] | undefined;
const stats = (): TileStats[] => cached ??= Array.from({ length: 200 }, (_, i) => measure(syntheticSample(11, i)));

const meanOf = (cls: SyntheticClass, key: "area" | "eccentricity" | "darkness"): number => {
  const values = stats().flatMap((t) => t.nuclei.filter((n) => n.cls === cls).map((n) => n[key]));
  return values.reduce((a, b) => a + b, 0) / values.length;
};

Deno.test("same seed and index give identical bytes, whatever was generated before", () => {
  const fresh = syntheticSample(7, 5);
  for (let i = 0; i < 5; i++) syntheticSample(7, i);
  syntheticSample(8, 5);
  assert.ok(sameSample(fresh, syntheticSample(7, 5)));
  assert.equal(fresh.id, "7/5");
});

Deno.test("different seeds and different indices give different tiles", () => {
  const a = syntheticSample(1, 0);
  assert.ok(!bytesEqual(a.image, syntheticSample(2, 0).image));
  assert.ok(!bytesEqual(a.image, syntheticSample(1, 1).image));
  // Large and negative seeds are valid and distinct from their low 32 bits.
  assert.ok(!bytesEqual(syntheticSample(2 ** 40 + 1, 0).image, a.image));
  assert.ok(!bytesEqual(syntheticSample(-1, 0).image, syntheticSample(2 ** 32 - 1, 0).image));
});

Deno.test("100 tiles: valid samples, contiguous ids 1..n, classes and organs from the lists", () => {
  for (let i = 0; i < 100; i++) {
    const s = syntheticSample(3, i);
    assert.equal(sampleProblem(s), undefined, s.id);
    assert.equal(s.height, 256);
    assert.equal(s.width, 256);
    const n = s.classOf.length - 1;
    assert.ok(n >= 5, `${s.id}: ${n} nuclei`);
    const seen = new Uint8Array(n + 1);
    for (const v of s.instances) seen[v] = 1;
    for (let k = 1; k <= n; k++) assert.equal(seen[k], 1, `${s.id}: id ${k} of ${n} has no pixels`);
    assert.equal(s.classOf[0], -1);
    for (let k = 1; k <= n; k++) {
      const c = s.classOf[k] as number;
      assert.ok(c >= 0 && c < SYNTHETIC_CLASSES.length, `${s.id}: class ${c}`);
    }
    assert.ok((SYNTHETIC_ORGANS as ReadonlyArray<string>).includes(s.organ));
  }
});

Deno.test("size and organ options: a 128² kidney tile has about a quarter of the nuclei", () => {
  const small = syntheticSample(4, 0, { size: 128, organ: "kidney" });
  assert.equal(sampleProblem(small), undefined);
  assert.equal(small.organ, "kidney");
  assert.equal(small.image.length, 128 * 128 * 3);
  const big = syntheticSample(4, 0, { organ: "kidney" });
  assert.ok(small.classOf.length < big.classOf.length, `${small.classOf.length} vs ${big.classOf.length}`);
});

Deno.test("dead is rare: 1.5–5 % of nuclei over 200 tiles", () => {
  const counts = stats().reduce((acc, t) => acc.map((v, c) => v + (t.classCounts[c] as number)), [0, 0, 0, 0, 0]);
  const total = counts.reduce((a, b) => a + b, 0);
  const dead = (counts[SYNTHETIC_CLASSES.indexOf("dead")] as number) / total;
  assert.ok(dead >= 0.015 && dead <= 0.05, `dead ${(100 * dead).toFixed(2)} % of ${total}`);
  for (const [c, v] of counts.entries()) assert.ok(v > 0, `${SYNTHETIC_CLASSES[c]} never drawn`);
});

Deno.test("classes differ in the designed direction: size, eccentricity, darkness", () => {
  const area = (c: SyntheticClass) => meanOf(c, "area");
  assert.ok(area("neoplastic") > area("epithelial"), "neoplastic larger than epithelial");
  assert.ok(area("epithelial") > area("inflammatory"), "epithelial larger than inflammatory");
  assert.ok(area("neoplastic") > 2 * area("inflammatory"), "neoplastic much larger than inflammatory");
  const ecc = (c: SyntheticClass) => meanOf(c, "eccentricity");
  for (const c of SYNTHETIC_CLASSES) {
    if (c !== "connective") assert.ok(ecc("connective") > ecc(c) + 0.1, `connective more elongated than ${c}`);
  }
  assert.ok(ecc("inflammatory") < ecc("epithelial"), "inflammatory rounder than epithelial");
  const dark = (c: SyntheticClass) => meanOf(c, "darkness");
  assert.ok(dark("inflammatory") > dark("dead") + 10, "inflammatory darker than dead");
  assert.ok(dark("inflammatory") > dark("neoplastic"), "inflammatory darkest");
  assert.ok(dark("neoplastic") > dark("epithelial"), "neoplastic darker than epithelial");
});

Deno.test("class distributions overlap: size alone does not separate epithelial from neoplastic", () => {
  const areas = (c: SyntheticClass) =>
    stats().flatMap((t) => t.nuclei.filter((n) => n.cls === c).map((n) => n.area)).sort((a, b) => a - b);
  const epi = areas("epithelial"), neo = areas("neoplastic");
  const epi90 = epi[Math.floor(0.9 * epi.length)] as number;
  const below = neo.filter((a) => a < epi90).length / neo.length;
  assert.ok(below > 0.1 && below < 0.9, `${(100 * below).toFixed(1)} % of neoplastic below epithelial p90`);
});

Deno.test("organs differ in background colour and in class mix", () => {
  const byOrgan = new Map<SyntheticOrgan, TileStats[]>();
  for (const t of stats()) byOrgan.set(t.organ, [...(byOrgan.get(t.organ) ?? []), t]);
  assert.equal(byOrgan.size, SYNTHETIC_ORGANS.length, "every organ drawn");
  const colour = (o: SyntheticOrgan) => {
    const ts = byOrgan.get(o) ?? [];
    return [0, 1, 2].map((c) => ts.reduce((a, t) => a + t.background[c as 0 | 1 | 2], 0) / ts.length);
  };
  const mix = (o: SyntheticOrgan) => {
    const counts = (byOrgan.get(o) ?? []).reduce(
      (acc, t) => acc.map((v, c) => v + (t.classCounts[c] as number)),
      [0, 0, 0, 0, 0],
    );
    const total = counts.reduce((a, b) => a + b, 0);
    return counts.map((v) => v / total);
  };
  for (const [i, a] of SYNTHETIC_ORGANS.entries()) {
    for (const b of SYNTHETIC_ORGANS.slice(i + 1)) {
      const ca = colour(a), cb = colour(b);
      const dist = Math.hypot(...ca.map((v, c) => v - (cb[c] as number)));
      assert.ok(dist > 8, `${a} ${ca.map(Math.round)} vs ${b} ${cb.map(Math.round)}: ${dist.toFixed(1)}`);
      const ma = mix(a), mb = mix(b);
      const tv = ma.reduce((s, v, c) => s + Math.abs(v - (mb[c] as number)), 0) / 2;
      assert.ok(tv > 0.1, `class mix of ${a} vs ${b}: total variation ${tv.toFixed(3)}`);
    }
  }
});

Deno.test("nuclei touch in most tiles and some are cut by the tile border", () => {
  const ts = stats();
  const touching = ts.filter((t) => t.touching).length / ts.length;
  assert.ok(touching > 0.8, `${(100 * touching).toFixed(0)} % of tiles have touching nuclei`);
  const cut = ts.filter((t) => t.cutByBorder).length / ts.length;
  assert.ok(cut > 0.5, `${(100 * cut).toFixed(0)} % of tiles have border-cut nuclei`);
});

Deno.test("images look like H&E: nuclei are bluer and darker than the background", () => {
  const s = syntheticSample(5, 0, { organ: "breast" });
  const sum = [[0, 0, 0, 0], [0, 0, 0, 0]]; // [inside, outside] × (R, G, B, count)
  for (let i = 0; i < s.instances.length; i++) {
    const acc = sum[(s.instances[i] as number) > 0 ? 0 : 1] as number[];
    for (let c = 0; c < 3; c++) acc[c] = (acc[c] as number) + (s.image[3 * i + c] as number);
    acc[3] = (acc[3] as number) + 1;
  }
  const [inside, outside] = sum.map((a) => a.slice(0, 3).map((v) => v / (a[3] as number))) as [number[], number[]];
  const [r, g, b] = inside as [number, number, number];
  assert.ok(b > r && b > g, `nuclei ${inside.map(Math.round)}: blue-purple`);
  assert.ok((outside[0] as number) > (outside[1] as number), `background ${outside.map(Math.round)}: pink`);
  assert.ok(r < (outside[0] as number) - 40, "nuclei darker than the stroma");
});

Deno.test("openSynthetic: info, on-demand samples equal syntheticSample, bad input is a DatasetError", async () => {
  const ds = openSynthetic({ seed: 9, tiles: 3, size: 64 });
  assert.equal(ds.kind, "synthetic");
  assert.deepEqual([...ds.classes], [...SYNTHETIC_CLASSES]);
  assert.equal(ds.size, 3);
  assert.ok(sameSample(await ds.sample(2), syntheticSample(9, 2, { size: 64 })));
  await assert.rejects(() => ds.sample(3), DatasetError);
  await assert.rejects(() => ds.sample(-1), DatasetError);
  ds.close();
  assert.throws(() => openSynthetic({ seed: 1.5, tiles: 3 }), DatasetError);
  assert.throws(() => openSynthetic({ seed: 1, tiles: -1 }), DatasetError);
  assert.throws(() => openSynthetic({ seed: 1, tiles: 1, size: 8 }), DatasetError);
});
