/**
 * The OpenSlide reader on slides made here (_fixtures.ts): sharp's tiled pyramidal TIFF ("generic-tiff"), a
 * hand-written Aperio SVS with a label and a thumbnail, broken files, and one real CoNSeP image written as a pyramid
 * when ../../../shared/data/consep exists. The tests that need libopenslide are reported as ignored, with the reason
 * in their name, where it does not load.
 */
import assert from "node:assert/strict";
import sharp from "sharp";
import { pyramidTiff, syntheticRgb, tiffBytes, whiteCrop } from "./_fixtures.ts";
import { argbOverWhite, detectVendor, openSlide, OPENSLIDE_MISSING, openSlideAvailable } from "./openslide.ts";
import { ImageSourceError } from "./source.ts";

const available = openSlideAvailable();
const needs = available === true ? "" : ` (not tested here: ${available})`;
const ignore = available !== true;

const consepImages = new URL("../../../shared/data/consep/Train/Images", import.meta.url).pathname;
const consepImage = await Array.fromAsync(Deno.readDir(consepImages))
  .then((entries) => entries.map((e) => e.name).filter((n) => n.endsWith(".png")).sort()[0])
  .catch(() => undefined);

/** The largest channel difference between `a` and the `f`×`f` box mean of `source` [H, W, 3], over a's [h, w]. */
const maxBoxDiff = (a: Uint8Array, source: Uint8Array, W: number, f: number, w: number, h: number, x0 = 0, y0 = 0) => {
  let max = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let dy = 0; dy < f; dy++) {
          for (let dx = 0; dx < f; dx++) sum += source[((y0 + y * f + dy) * W + x0 + x * f + dx) * 3 + c] ?? 0;
        }
        max = Math.max(max, Math.abs((a[(y * w + x) * 3 + c] ?? 0) - sum / (f * f)));
      }
    }
  }
  return max;
};

/** Asserts that `promise` rejects with a `kind` whose message matches `pattern`. */
const rejectsWith = (promise: Promise<unknown>, kind: new (...args: never[]) => Error, pattern: RegExp) =>
  assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof kind, String(e));
    assert.match(e.message, pattern);
    return true;
  });

const withTempDir = async (fn: (dir: string) => Promise<void>) => {
  const dir = await Deno.makeTempDir({ prefix: "ivaan_slide_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
};

Deno.test("argbOverWhite: premultiplied ARGB → RGB on white (opaque kept, transparent white, half alpha blended)", () => {
  const argb = new Uint32Array([
    0xff102030, // opaque
    0x00000000, // transparent: outside the slide
    0x80400000, // α = 128, red 0x40 premultiplied (≈ 127 un-premultiplied): over white 0x40 + 127 = 191
    0x80808080, // α = 128, white at half alpha: stays white
  ]);
  assert.deepEqual([...argbOverWhite(argb)], [0x10, 0x20, 0x30, 255, 255, 255, 191, 127, 127, 255, 255, 255]);
});

Deno.test("openSlideAvailable: true where libopenslide loads, else the one line that says how to install it", () => {
  if (available === true) return;
  assert.match(available, /^OpenSlide (is not installed: run `deno task setup`|needs the --allow-ffi)/);
  assert.doesNotMatch(available, /\n/);
});

Deno.test("importing openslide.ts opens no library: without --allow-ffi openSlide rejects with the permission", async () => {
  await withTempDir(async (dir) => {
    const script = `${dir}/no_ffi.ts`;
    await Deno.writeTextFile(
      script,
      `import { openSlide, openSlideAvailable } from ${JSON.stringify(new URL("./openslide.ts", import.meta.url).href)};
console.log(JSON.stringify(openSlideAvailable()));
await openSlide("x.svs").catch((e) => console.log(e._tag, e.message));`,
    );
    const config = new URL("../../deno.json", import.meta.url).pathname;
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--no-check", "--config", config, "--allow-read", "--allow-env", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(stdout);
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    assert.match(out, /^"OpenSlide needs the --allow-ffi permission/);
    assert.match(out, /\nImageSourceError x\.svs: OpenSlide needs the --allow-ffi permission/);
  });
});

Deno.test("OPENSLIDE_MISSING is the install line the brief promises", () => {
  assert.equal(
    OPENSLIDE_MISSING,
    "OpenSlide is not installed: run `deno task setup` (or `apt-get install libopenslide0`)",
  );
});

Deno.test({
  name: `generic-tiff [2200, 3000, 3] 256² tiles, deflate, 4000 px/mm: levels, properties, mpp, exact regions${needs}`,
  ignore,
  fn: async (t) => {
    const W = 3000, H = 2200, source = syntheticRgb(W, H);
    await withTempDir(async (dir) => {
      const file = `${dir}/pyramid.tif`;
      await pyramidTiff(file, source, W, H, 4000);
      assert.equal(await detectVendor(file), "generic-tiff");
      const slide = await openSlide(file);
      try {
        await t.step("levels: several, level 0 the source's size, downsamples ≈ 2^k", () => {
          assert.ok(slide.levels.length > 1, `${slide.levels.length} levels`);
          assert.deepEqual(slide.levels[0], { width: W, height: H, downsample: 1 });
          slide.levels.forEach((level, k) => {
            assert.ok(Math.abs(level.downsample / 2 ** k - 1) < 0.02, `level ${k}: downsample ${level.downsample}`);
            assert.ok(Math.abs(level.width - W / 2 ** k) <= 1 && Math.abs(level.height - H / 2 ** k) <= 1);
          });
        });
        await t.step("reader, properties, mpp from the TIFF resolution (0.25 µm), no objective, no associated", () => {
          assert.equal(slide.reader, "openslide:generic-tiff");
          assert.equal(slide.properties["openslide.vendor"], "generic-tiff");
          assert.equal(slide.properties["openslide.level-count"], String(slide.levels.length));
          assert.equal(slide.properties["tiff.ResolutionUnit"], "centimeter");
          // OpenSlide 3.4.1 gives no openslide.mpp-x for generic TIFF: mpp comes from tiff.XResolution (40000 px/cm)
          assert.ok(slide.mpp !== undefined, "mpp");
          assert.ok(
            Math.abs(slide.mpp.x - 0.25) < 1e-6 && Math.abs(slide.mpp.y - 0.25) < 1e-6,
            JSON.stringify(slide.mpp),
          );
          assert.equal(slide.objectivePower, undefined);
          assert.deepEqual(slide.associated, []);
        });
        await t.step("level 0 regions equal the source exactly; outside the image is white", async () => {
          const regions = [
            [0, 0, 256, 256], // one tile
            [1000, 700, 300, 200], // across tile borders
            [1234, 1555, 1, 1], // one pixel
            [2900, 2100, 200, 150], // across the right and bottom edges
            [-50, -20, 100, 60], // across the left and top edges
            [5000, 5000, 10, 10], // wholly outside
          ] as const;
          for (const [x, y, w, h] of regions) {
            const got = await slide.readRegion(x, y, 0, w, h);
            assert.equal(got.length, w * h * 3);
            assert.deepEqual(got, whiteCrop(source, W, H, x, y, w, h), `region (${x}, ${y}) ${w}×${h}`);
          }
          const edge = await slide.readRegion(2900, 2100, 0, 200, 150);
          assert.deepEqual([...edge.subarray((149 * 200 + 199) * 3)], [255, 255, 255], "bottom-right corner: white");
        });
        await t.step(
          "level 1 is the 2×2 mean of the source (±1), level 2 a 4×4 mean at level-0 coordinates",
          async () => {
            const l1 = slide.levels[1] ?? { width: 0, height: 0 };
            const level1 = await slide.readRegion(0, 0, 1, l1.width, l1.height);
            assert.ok(maxBoxDiff(level1, source, W, 2, l1.width, l1.height) <= 1);
            const level2 = await slide.readRegion(800, 400, 2, 100, 80); // level-2 pixels from level-0 (800, 400)
            assert.ok(maxBoxDiff(level2, source, W, 4, 100, 80, 800, 400) <= 2);
          },
        );
        await t.step(
          "bad level, position or size: a RangeError naming the file, the argument and its value",
          async () => {
            const bad = [
              [0, 0, -1, 10, 10, /level must be an integer in 0\.\.\d+ .* got -1/],
              [0, 0, slide.levels.length, 10, 10, /level must be an integer/],
              [0, 0, 0.5, 10, 10, /got 0\.5/],
              [0.5, 0, 0, 10, 10, /x must be an integer/],
              [0, NaN, 0, 10, 10, /y must be an integer/],
              [0, 0, 0, 0, 10, /width must be an integer ≥ 1, got 0/],
              [0, 0, 0, 10, -3, /height must be an integer ≥ 1, got -3/],
              [0, 0, 0, 2.5, 10, /width must be an integer ≥ 1, got 2\.5/],
              [0, 0, 0, 2 ** 15, 2 ** 14, /over the limit of 268435456 \(2\^28\); read it in tiles/],
            ] as const;
            for (const [x, y, level, w, h, reason] of bad) {
              await assert.rejects(slide.readRegion(x, y, level, w, h), (e: unknown) => {
                assert.ok(e instanceof RangeError);
                assert.ok(e.message.startsWith(`readRegion(${file}): `), e.message);
                assert.match(e.message, reason);
                return true;
              });
            }
          },
        );
        await t.step("readAssociated of a name the slide lacks: ImageSourceError listing what it has", async () => {
          await assert.rejects(slide.readAssociated("label"), (e: unknown) => {
            assert.ok(e instanceof ImageSourceError);
            assert.equal(e.message, `${file}: no associated image "label" (it has: none)`);
            return true;
          });
        });
        await t.step(
          "reads run concurrently; close() during a read lets it finish; reads after close throw",
          async () => {
            const regions = [[0, 0], [512, 256], [2048, 1024], [2800, 2000]] as const;
            const reads = await Promise.all(regions.map(([x, y]) => slide.readRegion(x, y, 0, 300, 300)));
            regions.forEach(([x, y], i) => assert.deepEqual(reads[i], whiteCrop(source, W, H, x, y, 300, 300)));
            const inFlight = slide.readRegion(100, 100, 0, 1000, 1000);
            slide.close();
            assert.deepEqual(await inFlight, whiteCrop(source, W, H, 100, 100, 1000, 1000));
            await rejectsWith(slide.readRegion(0, 0, 0, 10, 10), ImageSourceError, /: the slide is closed/);
            await rejectsWith(slide.readAssociated("label"), ImageSourceError, /: the slide is closed/);
            slide.close(); // twice is harmless
          },
        );
      } finally {
        slide.close();
      }
    });
  },
});

Deno.test({
  name: `generic-tiff with sharp's default resolution (1 px/mm, 25.4 ppi): mpp is undefined, not 1000 µm${needs}`,
  ignore,
  fn: () =>
    withTempDir(async (dir) => {
      const file = `${dir}/default.tif`;
      await pyramidTiff(file, syntheticRgb(600, 400), 600, 400);
      const slide = await openSlide(file);
      assert.equal(slide.properties["tiff.ResolutionUnit"], "inch");
      assert.equal(slide.mpp, undefined);
      slide.close();
    }),
});

const aperioDescription = (first: string) => `Aperio Image Library v12.0.16\n${first}`; // OpenSlide splits lines on each of \r and \n: one newline only

Deno.test({
  name:
    `aperio SVS (hand-written): 2 levels, mpp 0.499, objective 20, label and thumbnail images, exact pixels${needs}`,
  ignore,
  fn: () =>
    withTempDir(async (dir) => {
      const W = 700, H = 500, source = syntheticRgb(W, H), half = syntheticRgb(350, 250);
      const label = syntheticRgb(80, 60), thumbnail = syntheticRgb(70, 50);
      const file = `${dir}/fixture.svs`;
      await Deno.writeFile(
        file,
        tiffBytes([
          {
            width: W,
            height: H,
            rgb: source,
            tile: 256,
            description: aperioDescription(
              `700x500 [0,0 700x500] (256x256) |AppMag = 20|MPP = 0.4990|Filename = fixture`,
            ),
          },
          { width: 70, height: 50, rgb: thumbnail }, // the second directory, stripped: "thumbnail"
          { width: 350, height: 250, rgb: half, tile: 256 },
          { width: 80, height: 60, rgb: label, description: aperioDescription("label 80x60") },
        ]),
      );
      assert.equal(await detectVendor(file), "aperio");
      const slide = await openSlide(file);
      try {
        assert.equal(slide.reader, "openslide:aperio");
        assert.deepEqual(slide.levels, [{ width: W, height: H, downsample: 1 }, {
          width: 350,
          height: 250,
          downsample: 2,
        }]);
        assert.deepEqual(slide.mpp, { x: 0.499, y: 0.499 });
        assert.equal(slide.objectivePower, 20);
        assert.equal(slide.properties["aperio.Filename"], "fixture");
        assert.deepEqual([...slide.associated].sort(), ["label", "thumbnail"]);
        assert.deepEqual(await slide.readAssociated("label"), { width: 80, height: 60, rgb: label });
        assert.deepEqual(await slide.readAssociated("thumbnail"), { width: 70, height: 50, rgb: thumbnail });
        assert.deepEqual(await slide.readRegion(0, 0, 0, W, H), source);
        assert.deepEqual(await slide.readRegion(200, 100, 1, 100, 100), whiteCrop(half, 350, 250, 100, 50, 100, 100));
      } finally {
        slide.close();
      }
    }),
});

Deno.test({
  name: `a slide whose level-0 tiles are cut off opens, then reading them is OpenSlide's error, sticky${needs}`,
  ignore,
  fn: () =>
    withTempDir(async (dir) => {
      const W = 600,
        H = 400,
        bytes = tiffBytes([
          { width: W, height: H, rgb: syntheticRgb(W, H), tile: 256, description: aperioDescription("|MPP = 0.25") },
          { width: 300, height: 200, rgb: syntheticRgb(300, 200), tile: 256 },
        ]);
      const file = `${dir}/cut.svs`;
      await Deno.writeFile(file, bytes.subarray(0, bytes.length - 100_000)); // the last level-0 tiles
      const slide = await openSlide(file);
      try {
        assert.equal((await slide.readRegion(0, 0, 1, 300, 200)).length, 300 * 200 * 3, "level 1 is intact");
        for (let i = 0; i < 2; i++) {
          // libtiff also prints its own "TIFFFillTile: Read error …" line on stderr
          await assert.rejects(slide.readRegion(0, 0, 0, W, H), (e: unknown) => {
            assert.ok(e instanceof ImageSourceError);
            assert.equal(e.file, file);
            assert.match(e.reason, /\S/);
            return true;
          });
        }
        await assert.rejects(slide.readRegion(0, 0, 1, 10, 10), ImageSourceError, "an OpenSlide error is sticky");
      } finally {
        slide.close();
      }
    }),
});

Deno.test({
  name:
    `unreadable files: missing, zero-byte .svs, truncated TIFF, PNG renamed .svs → ImageSourceError naming it${needs}`,
  ignore,
  fn: () =>
    withTempDir(async (dir) => {
      const rgb = syntheticRgb(600, 400);
      await pyramidTiff(`${dir}/whole.tif`, rgb, 600, 400);
      const tiff = await Deno.readFile(`${dir}/whole.tif`);
      await Deno.writeFile(`${dir}/truncated.tif`, tiff.subarray(0, Math.floor(tiff.length / 3)));
      await Deno.writeFile(`${dir}/empty.svs`, new Uint8Array(0));
      await sharp(rgb, { raw: { width: 600, height: 400, channels: 3 } }).png().toFile(`${dir}/renamed.svs`);
      const cases = [
        [`${dir}/missing.svs`, /^cannot read the file \(No such file/],
        [`${dir}/empty.svs`, /^not a slide OpenSlide can read \(vendor: none\)$/],
        [`${dir}/truncated.tif`, /\S/], // 3.4.1: its directories are gone, so "vendor: none"
        [`${dir}/renamed.svs`, /^not a slide OpenSlide can read \(vendor: none\)$/],
      ] as const;
      for (const [file, reason] of cases) {
        await assert.rejects(openSlide(file), (e: unknown) => {
          assert.ok(e instanceof ImageSourceError, String(e));
          assert.equal(e.file, file);
          assert.ok(e.message.startsWith(`${file}: `));
          assert.match(e.reason, reason);
          return true;
        });
      }
    }),
});

Deno.test({
  name: `a real CoNSeP image as a pyramid: level 0 equals sharp's decode exactly${
    consepImage === undefined ? ` (not tested here: no ${consepImages})` : needs
  }`,
  ignore: ignore || consepImage === undefined,
  fn: () =>
    withTempDir(async (dir) => {
      const { data, info } = await sharp(`${consepImages}/${consepImage}`).removeAlpha().raw()
        .toBuffer({ resolveWithObject: true });
      const source = new Uint8Array(data), file = `${dir}/consep.tif`;
      await pyramidTiff(file, source, info.width, info.height);
      const slide = await openSlide(file);
      try {
        assert.ok(slide.levels.length > 1);
        assert.deepEqual(slide.levels[0], { width: info.width, height: info.height, downsample: 1 });
        assert.deepEqual(await slide.readRegion(0, 0, 0, info.width, info.height), source);
        const l1 = slide.levels[1] ?? { width: 0, height: 0 };
        const level1 = await slide.readRegion(0, 0, 1, l1.width, l1.height);
        assert.ok(maxBoxDiff(level1, source, info.width, 2, l1.width, l1.height) <= 1);
      } finally {
        slide.close();
      }
    }),
});
