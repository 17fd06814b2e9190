/**
 * The sharp reader (flat.ts): one level, regions decoded exactly and padded with white, alpha on white, grey as RGB,
 * mpp only from a microscope-like resolution, and the errors of a bad file or call. Images are written here; the
 * CoNSeP case reads ../../../shared/data/consep when it exists.
 */
import assert from "node:assert/strict";
import sharp from "sharp";
import { syntheticRgb, whiteCrop } from "./_fixtures.ts";
import { flatImage } from "./flat.ts";
import { ImageSourceError } from "./source.ts";
import { readRgb } from "../data/image.ts";

const consepImages = new URL("../../../shared/data/consep/Train/Images", import.meta.url).pathname;
const consepImage = await Array.fromAsync(Deno.readDir(consepImages))
  .then((entries) => entries.map((e) => e.name).filter((n) => n.endsWith(".png")).sort()[0])
  .catch(() => undefined);

const withTempDir = async (fn: (dir: string) => Promise<void>) => {
  const dir = await Deno.makeTempDir({ prefix: "ivaan_flat_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
};

const raw = (rgb: Uint8Array, width: number, height: number, channels: 1 | 3 | 4 = 3) =>
  sharp(rgb, { raw: { width, height, channels } });

Deno.test("PNG [200, 300, 3]: one level, reader sharp, exact regions, white outside, no associated images", () =>
  withTempDir(async (dir) => {
    const W = 300, H = 200, source = syntheticRgb(W, H), file = `${dir}/image.png`;
    await raw(source, W, H).png().toFile(file);
    const image = await flatImage(file);
    assert.equal(image.path, file);
    assert.equal(image.reader, "sharp");
    assert.deepEqual(image.levels, [{ width: W, height: H, downsample: 1 }]);
    assert.equal(image.mpp, undefined, "a PNG without pHYs says nothing about its scale");
    assert.equal(image.objectivePower, undefined);
    assert.equal(image.properties["sharp.format"], "png");
    assert.deepEqual(image.associated, []);
    const regions = [
      [0, 0, W, H], // all of it
      [17, 33, 64, 48], // inside
      [250, 150, 100, 80], // across the right and bottom edges
      [-10, -5, 30, 20], // across the left and top edges
      [-20, -20, W + 40, H + 40], // around it
      [400, 0, 8, 8], // wholly outside
    ] as const;
    for (const [x, y, w, h] of regions) {
      assert.deepEqual(
        await image.readRegion(x, y, 0, w, h),
        whiteCrop(source, W, H, x, y, w, h),
        `(${x}, ${y}) ${w}×${h}`,
      );
    }
    image.close();
  }));

Deno.test("striped (non-tiled) TIFF, lossless: read by sharp as one level, exact", () =>
  withTempDir(async (dir) => {
    const W = 260, H = 190, source = syntheticRgb(W, H), file = `${dir}/plain.tif`;
    await raw(source, W, H).tiff({ compression: "lzw" }).toFile(file);
    const image = await flatImage(file);
    assert.deepEqual(image.levels, [{ width: W, height: H, downsample: 1 }]);
    assert.deepEqual(await image.readRegion(100, 50, 0, 200, 200), whiteCrop(source, W, H, 100, 50, 200, 200));
  }));

Deno.test("alpha is composited on white (transparent → white, half → blended); grey is expanded to RGB", () =>
  withTempDir(async (dir) => {
    // [1, 3, 4]: opaque red, transparent black, half-transparent (α 128) blue
    await raw(new Uint8Array([255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 128]), 3, 1, 4).png().toFile(`${dir}/alpha.png`);
    const alpha = await flatImage(`${dir}/alpha.png`);
    const got = [...await alpha.readRegion(0, 0, 0, 3, 1)];
    const want = [255, 0, 0, 255, 255, 255, 127, 127, 255]; // 255·(1 − 128/255) ≈ 127 on the blue pixel's red, green
    got.forEach((v, i) => assert.ok(Math.abs(v - (want[i] ?? 0)) <= 1, `channel ${i}: ${v} vs ${want[i]}`));
    await raw(new Uint8Array([0, 100, 200, 255]), 4, 1, 1).png().toFile(`${dir}/grey.png`);
    const grey = await flatImage(`${dir}/grey.png`);
    assert.deepEqual([...await grey.readRegion(0, 0, 0, 4, 1)], [0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255]);
  }));

Deno.test("mpp from the file's density only when it is a microscope's: 101600 dpi → 0.25 µm; 72 and 300 dpi → none", () =>
  withTempDir(async (dir) => {
    const rgb = syntheticRgb(32, 32);
    await raw(rgb, 32, 32).png().withMetadata({ density: 101600 }).toFile(`${dir}/scan.png`);
    await raw(rgb, 32, 32).jpeg().toFile(`${dir}/photo.jpg`); // JFIF's default 72 dpi
    await raw(rgb, 32, 32).png().withMetadata({ density: 300 }).toFile(`${dir}/print.png`);
    await raw(rgb, 32, 32).tiff({ xres: 2000, yres: 2000, resolutionUnit: "cm" }).toFile(`${dir}/scan.tif`);
    const mpp = async (file: string) => (await flatImage(`${dir}/${file}`)).mpp;
    assert.deepEqual(await mpp("scan.png"), { x: 0.25, y: 0.25 });
    assert.equal(await mpp("photo.jpg"), undefined);
    assert.equal(await mpp("print.png"), undefined);
    const tiff = await mpp("scan.tif"); // 2000 px/mm = 0.5 µm
    assert.ok(
      tiff !== undefined && Math.abs(tiff.x - 0.5) < 1e-6 && Math.abs(tiff.y - 0.5) < 1e-6,
      JSON.stringify(tiff),
    );
  }));

Deno.test("errors: a missing or undecodable file is an ImageSourceError naming it; bad calls are RangeErrors", () =>
  withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/garbage.png`, "not a PNG at all");
    for (const file of [`${dir}/missing.png`, `${dir}/garbage.png`]) {
      await assert.rejects(flatImage(file), (e: unknown) => {
        assert.ok(e instanceof ImageSourceError, String(e));
        assert.equal(e.file, file);
        assert.match(e.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: cannot decode image \\(`));
        return true;
      });
    }
    const file = `${dir}/ok.png`;
    await raw(syntheticRgb(20, 10), 20, 10).png().toFile(file);
    const image = await flatImage(file);
    const bad = [
      [0, 0, 1, 5, 5, /level must be an integer in 0\.\.0 \(the image has 1\), got 1/],
      [0, 0, 0, 0, 5, /width must be an integer ≥ 1, got 0/],
      [0, 0, 0, 5, 1.5, /height must be an integer ≥ 1, got 1\.5/],
      [0.25, 0, 0, 5, 5, /x must be an integer/],
      [0, 0, 0, 2 ** 14, 2 ** 15, /over the limit/],
    ] as const;
    for (const [x, y, level, w, h, reason] of bad) {
      await assert.rejects(image.readRegion(x, y, level, w, h), (e: unknown) => {
        assert.ok(e instanceof RangeError);
        assert.ok(e.message.startsWith(`readRegion(${file}): `));
        assert.match(e.message, reason);
        return true;
      });
    }
    await assert.rejects(image.readAssociated("label"), (e: unknown) => {
      assert.ok(e instanceof ImageSourceError);
      assert.equal(e.message, `${file}: no associated image "label" (a flat image read by sharp has none)`);
      return true;
    });
    image.close();
    await assert.rejects(image.readRegion(0, 0, 0, 5, 5), (e: unknown) => {
      assert.ok(e instanceof ImageSourceError);
      assert.match(e.message, /: the image is closed/);
      return true;
    });
  }));

Deno.test({
  name: `a real CoNSeP PNG reads as data/image.ts's readRgb decodes it (what the model was trained on)${
    consepImage === undefined ? ` (not tested here: no ${consepImages})` : ""
  }`,
  ignore: consepImage === undefined,
  fn: async () => {
    const file = `${consepImages}/${consepImage}`;
    const [image, decoded] = await Promise.all([flatImage(file), readRgb(file)]);
    assert.deepEqual(image.levels, [{ width: decoded.width, height: decoded.height, downsample: 1 }]);
    assert.deepEqual(await image.readRegion(0, 0, 0, decoded.width, decoded.height), decoded.rgb);
    assert.deepEqual(
      await image.readRegion(500, 250, 0, 64, 64),
      whiteCrop(decoded.rgb, decoded.width, decoded.height, 500, 250, 64, 64),
    );
  },
});
