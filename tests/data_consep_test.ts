/**
 * CoNSeP reader: synthetic CoNSeP-like folders (label fixtures from tests/fixtures/mat/) always;
 * the real Train split from ../shared/data/consep/Train when that folder exists (skipped, with a
 * message saying why, when it does not).
 */
import assert from "node:assert/strict";
import sharp from "sharp";
import { CONSEP_CLASSES, CONSEP_MERGED_CLASSES, naturalCompare, openConsep } from "../stages/data/consep.ts";
import { DatasetError, sampleProblem } from "../stages/data/sample.ts";
import { withTempDir } from "./_helpers.ts";

const fixtures = new URL("./fixtures/mat/", import.meta.url).pathname;
const train = new URL("../../shared/data/consep/Train", import.meta.url).pathname;
const exists = (() => {
  try {
    return Deno.statSync(`${train}/Images`).isDirectory && Deno.statSync(`${train}/Labels`).isDirectory;
  } catch {
    return false;
  }
})();
if (!exists) {
  console.warn(
    `SKIPPING the real CoNSeP tests: ${train}/Images and Labels not found or not readable (shared data folder absent)`,
  );
}

/** Writes an H×W RGB PNG (a gradient) to `file`. */
const writePng = async (file: string, height: number, width: number) => {
  const rgb = new Uint8Array(height * width * 3).map((_, i) => (i * 7) % 256); // [H, W, 3]
  await sharp(rgb, { raw: { width, height, channels: 3 } }).png().toFile(file);
};

/** A CoNSeP-like folder: for each [stem, label fixture, H, W] an image and a copied label. */
const makeFolder = async (dir: string, entries: Array<[string, string, number, number]>) => {
  await Deno.mkdir(`${dir}/Images`, { recursive: true });
  await Deno.mkdir(`${dir}/Labels`, { recursive: true });
  for (const [stem, label, h, w] of entries) {
    await writePng(`${dir}/Images/${stem}.png`, h, w);
    await Deno.copyFile(`${fixtures}${label}`, `${dir}/Labels/${stem}.mat`);
  }
};

/** Adds the classes of instances 1..n to `counts`; every class must be known. */
const tally = (counts: number[], classOf: Int32Array, id: string) => {
  for (let k = 1; k < classOf.length; k++) {
    const c = classOf[k] as number;
    assert.ok(c >= 0 && c < counts.length, `${id}: instance ${k} has class ${c}`);
    counts[c] = (counts[c] as number) + 1;
  }
};

const isDatasetError = (pattern: RegExp) => (e: unknown) => e instanceof DatasetError && pattern.test(e.message);

Deno.test("natural order: train_2 before train_10", () => {
  const names = ["train_10", "train_2", "train_1", "test_3", "train_27", "train_9"];
  assert.deepEqual(names.sort(naturalCompare), ["test_3", "train_1", "train_2", "train_9", "train_10", "train_27"]);
});

Deno.test("synthetic CoNSeP folder: relabelled ids, classes by inst_type row id−1, class 0 → unknown, merge", () =>
  withTempDir(async (dir) => {
    // consep_like.mat: inst_map [4, 6] with ids 2, 5, 1, 3 in raster order (4 absent); inst_type (double)
    // for ids 1..5 = 4, 2, 0, 7, 6
    await makeFolder(dir, [["t_10", "consep_like.mat", 4, 6], ["t_2", "consep_like.mat", 4, 6]]);
    const ds = await openConsep(dir, {});
    assert.equal(ds.kind, "consep");
    assert.deepEqual(ds.classes, CONSEP_CLASSES);
    assert.equal(ds.size, 2);
    const s = await ds.sample(0);
    assert.equal(s.id, "t_2");
    assert.equal((await ds.sample(1)).id, "t_10");
    assert.equal(s.organ, "colon");
    assert.equal(sampleProblem(s), undefined);
    assert.deepEqual([s.height, s.width], [4, 6]);
    assert.deepEqual(Array.from(s.instances), [0, 0, 1, 1, 0, 0, 2, 0, 1, 1, 0, 3, 2, 2, 0, 0, 3, 3, 0, 0, 4, 4, 0, 3]);
    // new ids 1..4 = old 2, 5, 1, 3 → types 2, 6, 4, 0 → classes 1, 5, 3, unknown
    assert.deepEqual(Array.from(s.classOf), [-1, 1, 5, 3, -1]);
    assert.deepEqual(Array.from(s.image.subarray(0, 6)), [0, 7, 14, 21, 28, 35]);
    const merged = await openConsep(dir, { merge: true });
    assert.deepEqual(merged.classes, CONSEP_MERGED_CLASSES);
    assert.deepEqual(Array.from((await merged.sample(0)).classOf), [-1, 1, 3, 2, -1]);
    await assert.rejects(() => ds.sample(2), RangeError);
    ds.close();
  }));

Deno.test("synthetic CoNSeP folder: bad labels are DatasetErrors naming the label file", () =>
  withTempDir(async (dir) => {
    await makeFolder(dir, [
      ["short", "consep_short_type.mat", 4, 6],
      ["no_type", "consep_no_type.mat", 4, 6],
      ["bad_type", "consep_bad_type.mat", 4, 6],
      ["small", "consep_like.mat", 3, 6],
    ]);
    const ds = await openConsep(dir);
    const cases: Array<[string, RegExp]> = [
      ["bad_type", /bad_type\.mat: 'inst_type' for id 3 \(row 2\) is 9; expected a class 1\.\.7/],
      ["no_type", /no_type\.mat: no variable 'inst_type' \(found inst_map, type_map\)/],
      ["short", /short\.mat: 'inst_type' has 3 rows but the largest id in 'inst_map' is 5/],
      ["small", /Images\/small\.png: image is 3×6 \(H×W\) but 'inst_map' in .*Labels\/small\.mat is \[4, 6\]/],
    ];
    for (const [i, [stem, pattern]] of cases.entries()) {
      await assert.rejects(() => ds.sample(i), isDatasetError(pattern), stem);
    }
  }));

Deno.test("synthetic CoNSeP folder: a missing label, image or folder is a DatasetError naming the file", () =>
  withTempDir(async (dir) => {
    await makeFolder(dir, [["a", "consep_like.mat", 4, 6], ["b", "consep_like.mat", 4, 6]]);
    await Deno.remove(`${dir}/Labels/b.mat`);
    await assert.rejects(() => openConsep(dir), isDatasetError(/Images\/b\.png: no label file Labels\/b\.mat/));
    await Deno.remove(`${dir}/Images/b.png`);
    await Deno.remove(`${dir}/Images/a.png`);
    await assert.rejects(() => openConsep(dir), isDatasetError(/Labels\/a\.mat: no image Images\/a\.png/));
    await assert.rejects(() => openConsep(`${dir}/nowhere`), isDatasetError(/nowhere\/Images: cannot list/));
  }));

Deno.test({
  name: "CoNSeP Train (../shared/data/consep/Train): 27 images, 15,555 nuclei, per-class counts, merged counts",
  ignore: !exists,
  fn: async () => {
    const t0 = performance.now();
    const ds = await openConsep(train, {});
    assert.equal(ds.size, 27);
    const counts = new Array<number>(CONSEP_CLASSES.length).fill(0);
    const ids: string[] = [];
    let nuclei = 0;
    for (let i = 0; i < ds.size; i++) {
      const s = await ds.sample(i);
      ids.push(s.id);
      assert.equal(sampleProblem(s), undefined, s.id);
      assert.deepEqual([s.height, s.width, s.organ], [1000, 1000, "colon"], s.id);
      nuclei += s.classOf.length - 1;
      tally(counts, s.classOf, s.id);
    }
    const seconds = (performance.now() - t0) / 1000;
    console.log(`read ${ds.size} CoNSeP samples in ${seconds.toFixed(2)} s`);
    assert.deepEqual(ids, Array.from({ length: 27 }, (_, i) => `train_${i + 1}`));
    assert.equal(nuclei, 15555);
    assert.deepEqual(counts, [371, 3941, 1117, 4420, 4765, 901, 40]);

    const merged = await openConsep(train, { merge: true });
    const mergedCounts = [0, 0, 0, 0];
    for (let i = 0; i < merged.size; i++) {
      const s = await merged.sample(i);
      tally(mergedCounts, s.classOf, s.id);
    }
    assert.deepEqual(mergedCounts, [371, 3941, 1117 + 4420, 4765 + 901 + 40]);
  },
});

Deno.test({
  name: "CoNSeP Train copy: a missing label and a wrong-size image are DatasetErrors naming the files",
  ignore: !exists,
  fn: () =>
    withTempDir(async (dir) => {
      await Deno.mkdir(`${dir}/Images`);
      await Deno.mkdir(`${dir}/Labels`);
      for (const stem of ["train_1", "train_2"]) {
        await Deno.copyFile(`${train}/Images/${stem}.png`, `${dir}/Images/${stem}.png`);
      }
      await Deno.copyFile(`${train}/Labels/train_1.mat`, `${dir}/Labels/train_1.mat`);
      await assert.rejects(
        () => openConsep(dir),
        isDatasetError(/Images\/train_2\.png: no label file Labels\/train_2\.mat/),
      );
      await Deno.remove(`${dir}/Images/train_2.png`);
      await writePng(`${dir}/Images/train_1.png`, 500, 1000);
      const ds = await openConsep(dir);
      await assert.rejects(
        () => ds.sample(0),
        isDatasetError(
          /Images\/train_1\.png: image is 500×1000 \(H×W\) but 'inst_map' in .*Labels\/train_1\.mat is \[1000, 1000\]/,
        ),
      );
    }),
});
