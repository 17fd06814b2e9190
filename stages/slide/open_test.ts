/**
 * openImageSource's choice of reader: OpenSlide for slide extensions and for TIFFs OpenSlide recognises, sharp for
 * everything else; without OpenSlide (simulated in a child process by pointing IVAAN_OPENSLIDE at nothing) a slide
 * extension is the install line and a pyramidal TIFF falls back to sharp.
 */
import assert from "node:assert/strict";
import sharp from "sharp";
import { pyramidTiff, syntheticRgb, tiffBytes } from "./_fixtures.ts";
import { openImageSource } from "./open.ts";
import { OPENSLIDE_MISSING, openSlideAvailable } from "./openslide.ts";
import { ImageSourceError } from "./source.ts";

const available = openSlideAvailable();
const needs = available === true ? "" : ` (not tested here: ${available})`;

/** A folder with image.png, plain.tif (striped), pyramid.tif (tiled pyramid), slide.svs (Aperio), broken.svs. */
const withImages = async (fn: (dir: string) => Promise<void>) => {
  const dir = await Deno.makeTempDir({ prefix: "ivaan_open_" });
  try {
    const rgb = syntheticRgb(600, 400), image = sharp(rgb, { raw: { width: 600, height: 400, channels: 3 } });
    await image.clone().png().toFile(`${dir}/image.png`);
    await image.clone().tiff({ compression: "lzw" }).toFile(`${dir}/plain.tif`);
    await pyramidTiff(`${dir}/pyramid.tif`, rgb, 600, 400);
    const description = "Aperio Image Library v12.0.16\n600x400 (256x256) |AppMag = 40|MPP = 0.25";
    await Deno.writeFile(`${dir}/slide.svs`, tiffBytes([{ width: 600, height: 400, rgb, tile: 256, description }]));
    await Deno.writeFile(`${dir}/broken.svs`, new Uint8Array(0));
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
};

const readerOf = async (file: string) => {
  const source = await openImageSource(file);
  source.close();
  return source.reader;
};

Deno.test("PNG and striped TIFF → sharp, whether or not OpenSlide is installed", () =>
  withImages(async (dir) => {
    assert.equal(await readerOf(`${dir}/image.png`), "sharp");
    assert.equal(await readerOf(`${dir}/plain.tif`), "sharp");
  }));

Deno.test({
  name:
    `tiled pyramidal TIFF → openslide:generic-tiff; .svs → openslide:aperio; a broken .svs is OpenSlide's error${needs}`,
  ignore: available !== true,
  fn: () =>
    withImages(async (dir) => {
      assert.equal(await readerOf(`${dir}/pyramid.tif`), "openslide:generic-tiff");
      assert.equal(await readerOf(`${dir}/slide.svs`), "openslide:aperio");
      await assert.rejects(openImageSource(`${dir}/broken.svs`), (e: unknown) => {
        assert.ok(e instanceof ImageSourceError);
        assert.equal(e.message, `${dir}/broken.svs: not a slide OpenSlide can read (vendor: none)`);
        return true;
      });
    }),
});

Deno.test("without OpenSlide: a .svs is the install line naming the file; a pyramidal TIFF is read by sharp", () =>
  withImages(async (dir) => {
    const script = `${dir}/without.ts`;
    await Deno.writeTextFile(
      script,
      `import { openImageSource } from ${JSON.stringify(new URL("./open.ts", import.meta.url).href)};
const dir = ${JSON.stringify(dir)};
console.log((await openImageSource(dir + "/pyramid.tif")).reader);
await openImageSource(dir + "/slide.svs").then(() => console.log("opened"), (e) => console.log(e._tag, e.message));`,
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--no-check",
        "--config",
        new URL("../../deno.json", import.meta.url).pathname,
        "-A",
        script,
      ],
      env: { IVAAN_OPENSLIDE: `${dir}/no/libopenslide.so.0` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const [reader, error] = new TextDecoder().decode(stdout).trimEnd().split("\n");
    assert.equal(reader, "sharp");
    assert.ok(
      error?.startsWith(`ImageSourceError ${dir}/slide.svs: ${OPENSLIDE_MISSING}; IVAAN_OPENSLIDE=`),
      String(error),
    );
  }));
