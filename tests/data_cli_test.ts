import assert from "node:assert/strict";
import sharp from "sharp";
import { deno, withTempDir } from "./_helpers.ts";
import { taskArgs } from "./_tasks.ts";

const data = (...args: string[]) => deno([...taskArgs("data"), ...args]);
const consep = new URL("../../shared/data/consep/Train", import.meta.url).pathname;
const haveConsep = await Deno.stat(consep).then(() => true, () => false);
if (!haveConsep) console.warn(`skipping the CoNSeP inspect test: ${consep} is absent`);

Deno.test("data synth writes PanNuke layout that inspect reads back with the generator's own counts", () =>
  withTempDir(async (dir) => {
    const synth = await data("synth", "--out", `${dir}/s`, "--tiles", "6", "--seed", "3", "--dtype", "u1");
    assert.equal(synth.code, 0, synth.stderr);
    assert.match(synth.stdout, /wrote 6 synthetic tiles \(seed 3, 256×256, u1\) to .*\/s\/Fold 1/);
    for (const f of ["images/fold1/images.npy", "images/fold1/types.npy", "masks/fold1/masks.npy"]) {
      assert.ok((await Deno.stat(`${dir}/s/Fold 1/${f}`)).isFile, f);
    }
    const viaPannuke = await data("--no-cache", "inspect", `pannuke:${dir}/s`, "--json");
    assert.equal(viaPannuke.code, 0, viaPannuke.stderr);
    const direct = await data("--no-cache", "inspect", "synthetic:3", "--tiles", "6", "--json");
    assert.equal(direct.code, 0, direct.stderr);
    const a = JSON.parse(viaPannuke.stdout), b = JSON.parse(direct.stdout);
    assert.equal(a.images, 6);
    assert.equal(a.nuclei, b.nuclei);
    assert.ok(a.nuclei > 0);
    assert.deepEqual(Object.values(a.classCounts), Object.values(b.classCounts), "class counts in class order");
    assert.deepEqual(a.organCounts, b.organCounts);
    assert.deepEqual(a.sizes, { "256x256": 6 });
    assert.equal(Object.values(a.classCounts as Record<string, number>).reduce((x, y) => x + y, 0), a.nuclei);
  }));

Deno.test("data show draws a tile with its contours", () =>
  withTempDir(async (dir) => {
    const r = await data("show", "synthetic:5", "--index", "2", "--out", `${dir}/t.png`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /nuclei — /);
    const meta = await sharp(`${dir}/t.png`).metadata();
    assert.deepEqual([meta.width, meta.height, meta.channels], [256, 256, 3]);
    const bad = await data("show", "synthetic:5", "--tiles", "4", "--index", "9", "--out", `${dir}/u.png`);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: --index: synthetic:5 has tiles 0\.\.3, found 9\n$/);
  }));

Deno.test("data: a bad SOURCE or a missing folder is one clear line", async () => {
  const unknown = await data("inspect", "nonsense:/x");
  assert.equal(unknown.code, 1);
  assert.match(
    unknown.stderr,
    /^error: unknown data source 'nonsense:\/x'; expected synthetic\[:SEED\], pannuke:DIR, consep:DIR, monuseg:DIR or folder:DIR\n$/,
  );
  const missing = await data("--no-cache", "inspect", "pannuke:/nonexistent/pannuke");
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: cannot read source \/nonexistent\/pannuke: pannuke data folder .*\n$/);
});

Deno.test({
  name: "data inspect consep (shared real data): 27 images, 15,555 nuclei, the README's class counts; cached rerun",
  ignore: !haveConsep,
  fn: () =>
    withTempDir(async (dir) => {
      const r = await data("--cache", dir, "inspect", `consep:${consep}`, "--json");
      assert.equal(r.code, 0, r.stderr);
      const s = JSON.parse(r.stdout);
      assert.equal(s.images, 27);
      assert.equal(s.nuclei, 15555);
      assert.deepEqual(Object.values(s.classCounts), [371, 3941, 1117, 4420, 4765, 901, 40]);
      const merged = JSON.parse(
        (await data("--cache", dir, "inspect", `consep:${consep}`, "--merge", "--json")).stdout,
      );
      assert.deepEqual(merged.classCounts, {
        other: 371,
        inflammatory: 3941,
        epithelial: 5537,
        "spindle-shaped": 5706,
      });
      const again = await data("--cache", dir, "inspect", `consep:${consep}`, "--json");
      assert.equal(again.stdout, r.stdout);
    }),
});
