/**
 * `deno task predict` on whole slides (issue #18): a micro model (as tests/predict_cli_test.ts trains it) on a tiled
 * pyramidal TIFF that sharp writes with a resolution of 0.25 µm/px — what OpenSlide calls "generic-tiff" — holding
 * a synthetic H&E patch on white glass. Checks that the slide path finds exactly the nuclei of the image path on the
 * same pixels, skips the glass, writes valid QuPath GeoJSON, the CSV and both PNGs, reads a 20× slide resampled to
 * the model's resolution, and fails on a broken slide with one line; then real H&E (a CoNSeP image, when
 * ../../shared/data/consep exists) on glass, whose tissue tiles only are predicted. Reported as ignored where
 * libopenslide is missing (the routing to slides needs it).
 */
import assert from "node:assert/strict";
import sharp from "sharp";
import { FEATURE_NAMES } from "../stages/attributes/mask_features.ts";
import { syntheticSample } from "../stages/data/synthetic.ts";
import { geoJsonProblems } from "../stages/predict/geojson.ts";
import { tilePlacements } from "../stages/predict/tiling.ts";
import { pyramidTiff } from "../stages/slide/_fixtures.ts";
import { openSlideAvailable } from "../stages/slide/openslide.ts";
import { deno, withTempDir } from "./_helpers.ts";
import { taskArgs, trainMicro } from "./_tasks.ts";

const predict = (...args: string[]) => deno([...taskArgs("predict"), ...args]);
const available = openSlideAvailable();
const needs = available === true ? "" : ` (not tested here: ${available})`;

/** W × H of white glass with a 300² synthetic H&E patch at (150, 100): about 11 % tissue. */
const W = 1024, H = 768;
const glassWithTissue = () => {
  const s = syntheticSample(5, 0, { size: 300 });
  const rgb = new Uint8Array(W * H * 3).fill(255); // [H, W, 3]
  for (let y = 0; y < 300; y++) {
    rgb.set(s.image.subarray(y * s.width * 3, (y * s.width + 300) * 3), ((y + 100) * W + 150) * 3);
  }
  return rgb;
};

/** A 256²-tiled, deflate (lossless) pyramidal TIFF of a W × H slide at `pixelsPerMm` (4000: 0.25 µm/px). */
const writeSlide = (path: string, rgb: Uint8Array, pixelsPerMm: number) => pyramidTiff(path, rgb, W, H, pixelsPerMm);

/** One CSV line's fields, RFC 4180 quoting (descriptions with attribute words hold commas). */
const csvFields = (line: string): string[] => {
  const out: string[] = [];
  for (let i = 0; i <= line.length;) {
    if (line[i] === '"') {
      let text = "";
      for (i++; i < line.length; i++) {
        if (line[i] === '"' && line[i + 1] === '"') text += '"', i++;
        else if (line[i] === '"') break;
        else text += line[i];
      }
      out.push(text), i += 2; // the closing quote and the comma
    } else {
      const end = line.indexOf(",", i) < 0 ? line.length : line.indexOf(",", i);
      out.push(line.slice(i, end)), i = end + 1;
    }
  }
  return out;
};

/** The rows of a CSV with a header line and no line breaks inside fields (ours has none). */
const csvRows = async (path: string) => {
  const [head, ...lines] = (await Deno.readTextFile(path)).trimEnd().split("\n");
  const names = csvFields(head ?? "");
  return lines.map((l) => Object.fromEntries(csvFields(l).map((v, i) => [names[i] as string, v])));
};

type Feature = {
  geometry: { coordinates: number[][][] };
  properties: { classification: { name: string; color: number[] }; measurements: Record<string, number> };
};

Deno.test({
  name:
    `deno task predict on a pyramidal TIFF: the image path's nuclei on the same pixels, glass skipped, GeoJSON, CSV, tissue and overlay PNGs${needs}`,
  ignore: available !== true,
  fn: () =>
    withTempDir(async (dir) => {
      const model = await trainMicro(dir);
      const rgb = glassWithTissue();
      await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).png().toFile(`${dir}/image.png`);
      await writeSlide(`${dir}/slide.tif`, rgb, 4000);

      // (b) every tile: the slide path and the image path on the same pixels, in one run
      const all = await predict(
        ...["--model", model, "--input", `${dir}/image.png`, "--input", `${dir}/slide.tif`],
        ...["--out", `${dir}/all`, "--no-cache", "--all-tiles"],
      );
      assert.equal(all.code, 0, all.stderr);
      assert.match(
        all.stdout,
        /slide\.tif: \d+ nuclei \(.*\) on 336 of 336 tiles \(.*0\.250 µm\/px from the slide, level 0\)/,
      );
      assert.match(all.stderr, /predict slide: .*\d+\/\d+/, "one progress line for the slide");
      const image = JSON.parse(await Deno.readTextFile(`${dir}/all/nuclei/image.json`)).nuclei as Array<
        {
          centroid: [number, number];
          area: number;
          class: string;
          score: number;
          features: Record<string, number | null>;
          description: string;
        }
      >;
      assert.ok(image.length > 5, `the model finds nuclei (${image.length})`);
      const key = (x: unknown, y: unknown, area: unknown, cls: unknown, score: unknown) =>
        JSON.stringify([Number(x), Number(y), Number(area), cls, Number(score)]);
      const fromImage = image.map((n) => key(n.centroid[0], n.centroid[1], n.area, n.class, n.score)).sort();
      const rows = await csvRows(`${dir}/all/slide.csv`);
      assert.deepEqual(Object.keys(rows[0] ?? {}), [
        ...["id", "centroid_x", "centroid_y", "class", "score", "area", "model_area"],
        ...FEATURE_NAMES.slice(1),
        "description",
      ]);
      const fromSlide = rows.map((r) => key(r.centroid_x, r.centroid_y, r.area, r.class, r.score)).sort();
      assert.deepEqual(fromSlide, fromImage, "same centroids, areas, classes and scores");
      // the image path keeps the features its attribute words use (run.json names the training data): the same
      const byKey = new Map(rows.map((r) => [key(r.centroid_x, r.centroid_y, r.area, r.class, r.score), r]));
      let compared = 0;
      for (const n of image) {
        const row = byKey.get(key(n.centroid[0], n.centroid[1], n.area, n.class, n.score));
        // the run.json beside the model names its training data: both paths describe nuclei by its attribute bins
        assert.equal(row?.description, n.description, "the same attribute words");
        for (const [f, v] of Object.entries(n.features)) {
          if (v === null) continue;
          assert.equal(row?.[f === "area" ? "model_area" : f], String(Number(v.toPrecision(6)) + 0), f);
          compared++;
        }
      }
      assert.ok(compared >= image.length, `${compared} feature values compared`);
      const worded = rows.filter((r) => (r.description ?? "").split(" ").length > 3).length;
      assert.ok(worded > rows.length / 2, `descriptions carry attribute words (${worded} of ${rows.length})`);
      assert.deepEqual(rows.map((r) => Number(r.id)), rows.map((_, i) => i + 1), "ids 1, 2, … in order");

      // (a) QuPath GeoJSON: valid, classified, measured, and the image path's very outlines
      const geojson = JSON.parse(await Deno.readTextFile(`${dir}/all/slide.geojson`));
      assert.deepEqual(geoJsonProblems(geojson), []);
      const features = geojson.features as Feature[];
      assert.equal(features.length, rows.length);
      for (const f of features) {
        assert.ok(
          typeof f.properties.classification.name === "string" && f.properties.classification.color.length === 3,
        );
        assert.ok((f.properties.measurements["Area px^2"] ?? 0) > 0 && (f.properties.measurements["Score"] ?? 0) > 0);
      }
      const imageGeo = JSON.parse(await Deno.readTextFile(`${dir}/all/geojson/image.geojson`)).features as Feature[];
      const outline = (f: Feature) => JSON.stringify(f.geometry);
      assert.deepEqual(features.map(outline).sort(), imageGeo.map(outline).sort(), "same contours");

      // (d) the tissue and overlay PNGs: the thumbnail's size (here level 0, under 4 Mpx)
      for (const png of ["slide.tissue.png", "slide.overlay.png"]) {
        const meta = await sharp(`${dir}/all/${png}`).metadata();
        assert.deepEqual([meta.format, meta.width, meta.height], ["png", W, H], png);
      }
      const summary = JSON.parse(await Deno.readTextFile(`${dir}/all/summary.json`));
      assert.equal(summary.images.length, 1);
      assert.deepEqual(
        [summary.slides[0].tiles, summary.slides[0].predicted, summary.slides[0].nuclei],
        [336, 336, rows.length],
      );

      // (c) tissue only: the glass is never predicted
      const tissue = await predict("--model", model, "--input", `${dir}/slide.tif`, "--out", `${dir}/tissue`);
      assert.equal(tissue.code, 0, tissue.stderr);
      const [, found, predicted] =
        tissue.stdout.match(/slide\.tif: (\d+) nuclei .* on (\d+) of 336 tiles with tissue/) ??
          [];
      assert.ok(Number(predicted) > 0 && Number(predicted) < 336 / 2, `${predicted} of 336 tiles predicted`);
      assert.ok(Number(found) > 0, `${found} nuclei on the tissue`);
      assert.match(tissue.stdout, /wrote .*\/tissue\/: NAME\.geojson, NAME\.csv, NAME\.tissue\.png.* for 1 slide/);
      const tissueSummary = JSON.parse(await Deno.readTextFile(`${dir}/tissue/summary.json`)).slides[0];
      assert.ok(
        tissueSummary.tissueFraction > 0.05 && tissueSummary.tissueFraction < 0.2,
        tissueSummary.tissueFraction,
      );
      // a fixed threshold above any stain's saturation: no tissue, nothing predicted, the outputs still valid
      const none = await predict(
        ...["--model", model, "--input", `${dir}/slide.tif`, "--out", `${dir}/none`, "--tissue-threshold", "1"],
      );
      assert.equal(none.code, 0, none.stderr);
      assert.match(none.stdout, /slide\.tif: 0 nuclei .* on 0 of 336 tiles with tissue/);
      assert.deepEqual(geoJsonProblems(JSON.parse(await Deno.readTextFile(`${dir}/none/slide.geojson`))), []);

      // a 20× slide (0.5 µm/px): read at level 0 upsampled ×2, outputs in its own pixels; --mpp overrides the file
      await writeSlide(`${dir}/at20x.tif`, rgb, 2000);
      const at20 = await predict("--model", model, "--input", `${dir}/at20x.tif`, "--out", `${dir}/at20x`);
      assert.equal(at20.code, 0, at20.stderr);
      assert.match(at20.stdout, /0\.500 µm\/px from the slide, level 0, resampled/);
      const s20 = JSON.parse(await Deno.readTextFile(`${dir}/at20x/summary.json`)).slides[0];
      assert.deepEqual([s20.factor, s20.modelWidth, s20.modelHeight, s20.width], [0.5, 2 * W, 2 * H, W]);
      const rows20 = await csvRows(`${dir}/at20x/at20x.csv`);
      assert.ok(rows20.length > 0);
      for (const r of rows20) {
        const x = Number(r.centroid_x), y = Number(r.centroid_y);
        assert.ok(
          x >= 150 && x <= 450 && y >= 100 && y <= 400,
          `centroid (${x}, ${y}) on the tissue, in level-0 pixels`,
        );
      }
      const flagged = await predict(
        ...["--model", model, "--input", `${dir}/at20x.tif`, "--out", `${dir}/flag`, "--mpp", "0.25"],
      );
      assert.equal(flagged.code, 0, flagged.stderr);
      assert.match(flagged.stdout, /0\.250 µm\/px from the flag, level 0\)/);

      // (e) mistakes: one line naming the file, exit 1
      await Deno.writeTextFile(`${dir}/broken.svs`, "not a slide");
      const cases: Array<[string[], RegExp]> = [
        [["--input", `${dir}/broken.svs`], new RegExp(`^error: ${dir}/broken\\.svs: `)],
        [["--input", `${dir}/slide.tif`, "--tissue-threshold", "2"], /^error: --tissue-threshold must be a saturation/],
      ];
      for (const [args, message] of cases) {
        const r = await predict("--model", model, "--out", `${dir}/bad`, ...args);
        assert.equal(r.code, 1, r.stderr);
        const lines = r.stderr.trim().split("\n").filter((l) => l.startsWith("error:"));
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0] as string, message);
      }
      const help = await predict("--help");
      assert.equal(help.code, 0);
      for (const text of ["--tissue-threshold", "--all-tiles", "NAME.tissue.png", "NAME.overlay.png", ".svs"]) {
        assert.ok(help.stdout.includes(text), text);
      }
    }),
});

const consepImage = new URL("../../shared/data/consep/Train/Images/train_1.png", import.meta.url).pathname;
const consep = await Deno.stat(consepImage).then(() => true, () => false);

Deno.test({
  name:
    `deno task predict on real H&E on glass (CoNSeP train_1, 400² at 0.25 µm/px in 1280 × 1024): only tiles with tissue are predicted${
      needs || (consep ? "" : ` (not tested here: ${consepImage} is missing)`)
    }`,
  ignore: available !== true || !consep,
  fn: () =>
    withTempDir(async (dir) => {
      const model = await trainMicro(dir);
      const [w, h, px, py] = [1280, 1024, 400, 300]; // slide size, where the patch lies
      const patch = await sharp(consepImage).removeAlpha().extract({ left: 300, top: 300, width: 400, height: 400 })
        .raw().toBuffer();
      await sharp({ create: { width: w, height: h, channels: 3, background: "white" } })
        .composite([{ input: patch, raw: { width: 400, height: 400, channels: 3 }, left: px, top: py }])
        .tiff({
          tile: true,
          tileWidth: 256,
          tileHeight: 256,
          pyramid: true,
          compression: "deflate",
          xres: 4000, // pixels per mm: 0.25 µm/px
          yres: 4000,
          resolutionUnit: "cm",
        })
        .toFile(`${dir}/case.tif`);
      const r = await predict("--model", model, "--input", `${dir}/case.tif`, "--out", `${dir}/out`);
      assert.equal(r.code, 0, r.stderr);
      const summary = JSON.parse(await Deno.readTextFile(`${dir}/out/summary.json`)).slides[0];
      // the micro model's 64² tiles, overlap 16: owned regions inside the patch, and those touching it
      const tiles = tilePlacements(h, w, 64, 16);
      const inside = tiles.filter((t) =>
        t.own.x[0] >= px && t.own.x[1] <= px + 400 && t.own.y[0] >= py && t.own.y[1] <= py + 400
      ).length;
      const touching = tiles.filter((t) =>
        t.own.x[0] < px + 400 && t.own.x[1] > px && t.own.y[0] < py + 400 && t.own.y[1] > py
      ).length;
      assert.deepEqual([summary.mpp, summary.factor, summary.tiles], [0.25, 1, tiles.length]);
      assert.ok(
        summary.predicted <= touching && summary.predicted >= inside / 2,
        `${summary.predicted} tiles predicted: at most the ${touching} touching the tissue, most of the ${inside} inside it`,
      );
      assert.ok(
        summary.tissueFraction > 0.05 && summary.tissueFraction <= (400 * 400) / (w * h),
        summary.tissueFraction,
      );
      assert.deepEqual(geoJsonProblems(JSON.parse(await Deno.readTextFile(`${dir}/out/case.geojson`))), []);
      console.log(
        `${summary.predicted} of ${summary.tiles} tiles (${inside} inside the tissue, ${touching} touching it)`,
      );
    }),
});
