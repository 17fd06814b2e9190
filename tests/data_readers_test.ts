import assert from "node:assert/strict";
import { Effect } from "effect";
import { encodeNpy, encodeStringsNpy } from "../pipeline/codec/npy.ts";
import { encodePng } from "../pipeline/codec/png.ts";
import { openFolder } from "../stages/data/folder.ts";
import { openMonuseg } from "../stages/data/monuseg.ts";
import { openPannuke, writePannukeFold } from "../stages/data/pannuke.ts";
import { type Sample, sampleProblem } from "../stages/data/sample.ts";
import { withTempDir } from "./_helpers.ts";

/** A small tile: a few square nuclei of the given classes on a gradient image. */
const tile = (id: string, organ: string, classes: number[], size = 32): Sample => {
  const instances = new Int32Array(size * size);
  classes.forEach((_, k) => {
    const y0 = 2 + 6 * Math.floor(k / 4), x0 = 2 + 7 * (k % 4);
    for (let y = y0; y < y0 + 4; y++) for (let x = x0; x < x0 + 5; x++) instances[y * size + x] = k + 1;
  });
  const image = Uint8Array.from({ length: size * size * 3 }, (_, i) => (i * 7 + classes.length) % 256);
  return { id, organ, height: size, width: size, image, instances, classOf: Int32Array.from([-1, ...classes]) };
};

Deno.test("PanNuke: write a fold (float64) and read it back tile for tile, from the root and from the fold folder", () =>
  withTempDir(async (dir) => {
    const tiles = [tile("a", "Breast", [0, 1, 2]), tile("b", "Colon", [4, 4, 3, 0, 1]), tile("c", "Lung", [])];
    await writePannukeFold(dir, 2, tiles.length, (i) => tiles[i] as Sample);
    for (const path of [dir, `${dir}/Fold 2`]) {
      const ds = await openPannuke(path);
      try {
        assert.equal(ds.size, 3);
        assert.deepEqual(ds.classes, ["neoplastic", "inflammatory", "connective", "dead", "epithelial"]);
        for (let i = 0; i < 3; i++) {
          const got = await ds.sample(i), want = tiles[i] as Sample;
          assert.equal(sampleProblem(got), undefined);
          assert.equal(got.id, `fold2/000${i}`);
          assert.equal(got.organ, want.organ);
          assert.deepEqual(got.image, want.image);
          assert.deepEqual(got.instances, want.instances);
          assert.deepEqual(got.classOf, want.classOf);
        }
        assert.deepEqual(ds.warnings?.(), []);
      } finally {
        ds.close();
      }
    }
  }));

const writeFold = async (
  dir: string,
  images: Float64Array,
  masks: Float64Array,
  n: number,
  size: number,
  types = Array(n).fill("Breast"),
) => {
  await Deno.mkdir(`${dir}/Fold 1/images/fold1`, { recursive: true });
  await Deno.mkdir(`${dir}/Fold 1/masks/fold1`, { recursive: true });
  await Deno.writeFile(`${dir}/Fold 1/images/fold1/images.npy`, encodeNpy(images, [n, size, size, 3]));
  await Deno.writeFile(`${dir}/Fold 1/masks/fold1/masks.npy`, encodeNpy(masks, [n, size, size, 6]));
  await Deno.writeFile(`${dir}/Fold 1/images/fold1/types.npy`, encodeStringsNpy(types));
};

Deno.test("PanNuke: pixels claimed by two channels go to the later channel and are counted in a warning", () =>
  withTempDir(async (dir) => {
    const size = 4, masks = new Float64Array(size * size * 6);
    masks[0 * 6 + 0] = 7; // pixel 0: neoplastic id 7
    masks[1 * 6 + 0] = 7; // pixel 1: neoplastic 7 and inflammatory 3 → inflammatory
    masks[1 * 6 + 1] = 3;
    masks[2 * 6 + 1] = 3;
    await writeFold(dir, new Float64Array(size * size * 3).fill(128), masks, 1, size);
    const ds = await openPannuke(dir);
    const s = await ds.sample(0);
    ds.close();
    assert.deepEqual(Array.from(s.instances.subarray(0, 4)), [1, 2, 2, 0]);
    assert.deepEqual(Array.from(s.classOf), [-1, 0, 1]);
    assert.deepEqual(ds.warnings?.(), ["1 pixels in 1 tiles were claimed by two classes; the later channel was kept"]);
  }));

Deno.test("PanNuke: bad input is a clear error naming the file", () =>
  withTempDir(async (dir) => {
    await assert.rejects(() => openPannuke(dir), /no PanNuke fold found/);
    await writeFold(dir, new Float64Array(2 * 4 * 4 * 3), new Float64Array(2 * 4 * 4 * 6), 2, 4);
    // masks with another N
    await Deno.writeFile(`${dir}/Fold 1/masks/fold1/masks.npy`, encodeNpy(new Float64Array(4 * 4 * 6), [1, 4, 4, 6]));
    await assert.rejects(
      () => openPannuke(dir),
      /masks\.npy: expected shape \(2, 4, 4, 6\) to match images\.npy, found \(1, 4, 4, 6\)/,
    );
    // truncated images
    const good = encodeNpy(new Float64Array(2 * 4 * 4 * 3), [2, 4, 4, 3]);
    await Deno.writeFile(`${dir}/Fold 1/images/fold1/images.npy`, good.subarray(0, good.length - 9));
    await assert.rejects(() => openPannuke(dir), /images\.npy: data is truncated/);
    // wrong dtype: tissue names where images should be
    await Deno.writeFile(`${dir}/Fold 1/images/fold1/images.npy`, encodeStringsNpy(["x"]));
    await assert.rejects(() => openPannuke(dir), /images\.npy: expected \[N, H, W, 3\]/);
    // negative ids
    const masks = new Float64Array(2 * 4 * 4 * 6);
    masks[3 * 6 + 2] = -4;
    await writeFold(dir, new Float64Array(2 * 4 * 4 * 3), masks, 2, 4);
    const ds = await openPannuke(dir);
    await assert.rejects(
      () => ds.sample(0),
      /masks\.npy: tile fold1\/0000: mask channel 2 holds -4; expected a non-negative instance id/,
    );
    ds.close();
    // types of another length
    await Deno.writeFile(`${dir}/Fold 1/images/fold1/types.npy`, encodeStringsNpy(["Breast"]));
    await assert.rejects(() => openPannuke(dir), /types\.npy: expected 2 tissue names/);
  }));

const monuseg = new URL("../../shared/data/monuseg/train", import.meta.url).pathname;
const haveMonuseg = await Deno.stat(monuseg).then(() => true, () => false);
if (!haveMonuseg) console.warn(`skipping the MoNuSeg real-data test: ${monuseg} is absent`);

Deno.test({
  name: "MoNuSeg (shared real data): 3 tiles of 1000×1000, one instance per <Region> (398, 314, 472)",
  ignore: !haveMonuseg,
  fn: async () => {
    const ds = await openMonuseg(monuseg);
    assert.equal(ds.size, 3);
    const counts = [];
    for (let i = 0; i < ds.size; i++) {
      const s = await ds.sample(i);
      assert.equal(sampleProblem(s), undefined);
      assert.deepEqual([s.height, s.width], [1000, 1000]);
      assert.ok(Array.from(s.classOf.subarray(1)).every((c) => c === 0), "every nucleus is class 0 'nucleus'");
      counts.push(s.classOf.length - 1);
    }
    assert.deepEqual(counts, [398, 314, 472]);
  },
});

Deno.test("MoNuSeg: an XML without regions and an image without XML are clear errors", () =>
  withTempDir(async (dir) => {
    const png = await Effect.runPromise(encodePng({ width: 8, height: 8, channels: 3, data: new Uint8Array(192) }));
    await Deno.writeFile(`${dir}/a.png`, png);
    await assert.rejects(() => openMonuseg(dir), /a\.png: no annotation a\.xml beside it/);
    await Deno.writeTextFile(`${dir}/a.xml`, "<Annotations><Annotation><Regions></Regions></Annotation></Annotations>");
    const ds = await openMonuseg(dir);
    await assert.rejects(() => ds.sample(0), /a\.xml: no <Region> elements/);
    await Deno.writeTextFile(
      `${dir}/a.xml`,
      `<Annotations><Annotation><Regions><Region><Vertices><Vertex X="1" Y="1"/><Vertex X="6" Y="1"/><Vertex X="6" Y="5"/></Vertices></Region>
       <Region><Vertices><Vertex X="20" Y="20"/><Vertex X="30" Y="20"/><Vertex X="30" Y="30"/></Vertices></Region></Regions></Annotation></Annotations>`,
    );
    const s = await ds.sample(0);
    assert.equal(s.classOf.length - 1, 1, "a region entirely outside the image leaves no instance");
  }));

Deno.test("folder format: images, 16-bit PNG and npy instances, classes by index and by name, organs", () =>
  withTempDir(async (dir) => {
    for (const d of ["images", "instances", "classes"]) await Deno.mkdir(`${dir}/${d}`);
    await Deno.writeTextFile(
      `${dir}/dataset.json`,
      JSON.stringify({ classes: ["tumour", "lymphocyte"], organs: { a: "breast" } }),
    );
    const t = tile("a", "", [0, 1, 1]);
    const png = (data: Uint8Array | Uint16Array, channels: 1 | 3) =>
      Effect.runPromise(encodePng({ width: 32, height: 32, channels, data }));
    await Deno.writeFile(`${dir}/images/a.png`, await png(t.image, 3));
    await Deno.writeFile(`${dir}/images/b.png`, await png(t.image, 3));
    const ids = Uint16Array.from(t.instances, (v) => (v === 0 ? 0 : v * 1000)); // sparse 16-bit ids
    await Deno.writeFile(`${dir}/instances/a.png`, await png(ids, 1));
    await Deno.writeFile(`${dir}/instances/b.npy`, encodeNpy(Int32Array.from(t.instances), [32, 32]));
    await Deno.writeTextFile(`${dir}/classes/a.json`, JSON.stringify({ 1000: "tumour", 2000: 1, 3000: "lymphocyte" }));
    const ds = await openFolder(dir);
    assert.equal(ds.size, 2);
    const a = await ds.sample(0), b = await ds.sample(1);
    assert.equal(a.organ, "breast");
    assert.deepEqual(a.instances, t.instances);
    assert.deepEqual(Array.from(a.classOf), [-1, 0, 1, 1]);
    assert.equal(b.organ, "");
    assert.deepEqual(Array.from(b.classOf), [-1, -1, -1, -1], "no classes file: unknown classes");
    // errors
    await Deno.writeTextFile(`${dir}/classes/a.json`, JSON.stringify({ 1000: "macrophage" }));
    await assert.rejects(
      () => ds.sample(0),
      /classes\/a\.json: instance 1000: class "macrophage" is not one of 0\.\.1 or tumour, lymphocyte/,
    );
    await Deno.writeFile(`${dir}/instances/b.npy`, encodeNpy(new Int32Array(16 * 16), [16, 16]));
    await assert.rejects(() => ds.sample(1), /instances\/b\.npy: size 16×16 differs from its image .*b\.png \(32×32\)/);
    await Deno.writeFile(
      `${dir}/instances/b.npy`,
      encodeNpy(Int32Array.from({ length: 32 * 32 }, (_, i) => (i === 5 ? -2 : 0)), [32, 32]),
    );
    await assert.rejects(
      () => ds.sample(1),
      /instances\/b\.npy: value -2 at index 5 is not a non-negative integer instance id/,
    );
    await Deno.remove(`${dir}/instances/b.npy`);
    await assert.rejects(() => openFolder(dir), /images\/b\.png: no instance map instances\/b\.png\|npy for it/);
    await Deno.writeTextFile(`${dir}/dataset.json`, JSON.stringify({ classes: [] }));
    await assert.rejects(
      () => openFolder(dir),
      /dataset\.json: field "classes": expected a non-empty list of class names/,
    );
  }));
