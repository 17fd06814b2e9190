import assert from "node:assert/strict";
import { Effect } from "effect";
import sharp from "sharp";
import { readNpy } from "../pipeline/codec/npy.ts";
import { decodePng } from "../pipeline/codec/png.ts";
import { syntheticSample } from "../stages/data/synthetic.ts";
import { geoJsonProblems } from "../stages/predict/geojson.ts";
import { isSimpleRing } from "../stages/predict/contours.ts";
import { deno, withTempDir } from "./_helpers.ts";
import { taskArgs, trainMicro } from "./_tasks.ts";

const predict = (...args: string[]) => deno([...taskArgs("predict"), ...args]);

/** A synthetic H&E image of `height`×`width` (a crop of a larger synthetic tile), format by extension. */
const writeImage = async (path: string, height: number, width: number, seed = 5) => {
  const s = syntheticSample(seed, 0, { size: Math.max(height, width) });
  const rgb = new Uint8Array(height * width * 3);
  for (let y = 0; y < height; y++) rgb.set(s.image.subarray(y * s.width * 3, (y * s.width + width) * 3), y * width * 3);
  await sharp(rgb, { raw: { width, height, channels: 3 } }).toFile(path);
};

const png = async (path: string) => Effect.runPromise(decodePng(await Deno.readFile(path)));

Deno.test("deno task predict: every output of a tiled image, valid GeoJSON and contours, cached rerun", () =>
  withTempDir(async (dir) => {
    const model = await trainMicro(dir);
    await Deno.mkdir(`${dir}/images/more`, { recursive: true });
    await writeImage(`${dir}/images/wide.png`, 150, 230);
    await writeImage(`${dir}/images/more/small.tif`, 40, 50, 6); // smaller than one 64² tile: padded
    await writeImage(`${dir}/images/more/scan.jpg`, 70, 64, 7);
    const args = ["--model", model, "--input", `${dir}/images`, "--out", `${dir}/out`, "--cache", `${dir}/cache`];
    const r = await predict(...args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wide\.png: \d+ nuclei/);
    assert.match(
      r.stdout,
      /wrote .*\/out\/: instances\/, classes\/.*geojson\/, pannuke\/ and summary\.json for 3 images/,
    );
    assert.match(r.stderr, /predict wide\.png: .*\d+\/\d+/, "progress per image");
    for (const [name, h, w] of [["wide", 150, 230], ["small", 40, 50], ["scan", 70, 64]] as const) {
      const instances = await png(`${dir}/out/instances/${name}.png`);
      assert.deepEqual([instances.height, instances.width, instances.channels], [h, w, 1]);
      assert.ok(instances.data instanceof Uint16Array, "16-bit ids");
      const npy = await readNpy(`${dir}/out/npy/${name}.instances.npy`);
      assert.deepEqual(npy.shape, [h, w]);
      assert.deepEqual(Array.from(npy.data as Int32Array), Array.from(instances.data), "PNG and .npy agree");
      const classes = await png(`${dir}/out/classes/${name}.png`);
      assert.deepEqual([classes.height, classes.width], [h, w]);
      const layout = await readNpy(`${dir}/out/pannuke/${name}.npy`);
      assert.deepEqual(layout.shape, [1, h, w, 6]);
      const overlay = await sharp(`${dir}/out/overlays/${name}.png`).metadata();
      assert.equal(overlay.width, w + 220, "the legend strip sits right of the image");
      const nuclei = JSON.parse(await Deno.readTextFile(`${dir}/out/nuclei/${name}.json`));
      const ids = new Set(Array.from(npy.data as Int32Array).filter((v) => v > 0));
      assert.equal(nuclei.count, ids.size, "one record per instance of the map");
      for (const n of nuclei.nuclei) {
        assert.ok(ids.has(n.id));
        assert.ok(typeof n.class === "string" && n.score > 0 && n.score <= 1);
        assert.ok(n.bbox[0] <= n.centroid[0] && n.centroid[0] <= n.bbox[2], "centroid inside its box");
        assert.match(n.description, /^an? .*nucleus$/);
        if (n.contour.length > 0) assert.ok(isSimpleRing(n.contour), `nucleus ${n.id}: simple closed contour`);
      }
      const geojson = JSON.parse(await Deno.readTextFile(`${dir}/out/geojson/${name}.geojson`));
      assert.deepEqual(geoJsonProblems(geojson), []);
      assert.equal(
        geojson.features.length,
        nuclei.nuclei.filter((n: { contour: unknown[] }) => n.contour.length).length,
      );
    }
    const wide = JSON.parse(await Deno.readTextFile(`${dir}/out/nuclei/wide.json`));
    assert.ok(wide.count > 0, "the model finds nuclei");
    // run.json named the training data: nuclei are described with its fitted attribute words
    assert.ok(wide.nuclei.some((n: { attributes: object }) => Object.keys(n.attributes).length > 0), "attribute words");
    const again = await predict(...args);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /wide\.png: \d+ nuclei .*\(prediction from the cache\)/);
    assert.equal(
      await Deno.readTextFile(`${dir}/out/nuclei/wide.json`),
      JSON.stringify(wide) + "\n",
      "the rerun writes the same",
    );
  }));

Deno.test("deno task predict --mpp: an image at half the resolution is rescaled and mapped back", () =>
  withTempDir(async (dir) => {
    const model = await trainMicro(dir);
    await writeImage(`${dir}/x.png`, 70, 90);
    const r = await predict("--model", model, "--input", `${dir}/x.png`, "--out", `${dir}/out`, "--mpp", "0.5");
    assert.equal(r.code, 0, r.stderr);
    const instances = await png(`${dir}/out/instances/x.png`);
    assert.deepEqual([instances.height, instances.width], [70, 90], "outputs in the image's own pixels");
    const summary = JSON.parse(await Deno.readTextFile(`${dir}/out/summary.json`));
    assert.equal(summary.scale, 2);
    const wide = await predict("--model", model, "--input", `${dir}/x.png`, "--overlap", "40");
    assert.equal(wide.code, 1);
    assert.match(wide.stderr, /^error: --overlap must be in \[0, 32\) for this model's 64² tiles, found 40$/m);
  }));

Deno.test("deno task predict: a checkpoint whose tensors are cut short is named alone, not after the image", () =>
  withTempDir(async (dir) => {
    const model = await trainMicro(dir);
    const bytes = await Deno.readFile(model);
    await Deno.writeFile(`${dir}/cut.safetensors`, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    await writeImage(`${dir}/a.png`, 20, 20);
    const r = await predict("--model", `${dir}/cut.safetensors`, "--input", `${dir}/a.png`, "--no-cache");
    assert.equal(r.code, 1, r.stderr);
    const line = r.stderr.split("\n").find((l) => l.startsWith("error:")) ?? "";
    assert.ok(line.startsWith(`error: ${dir}/cut.safetensors: not a safetensors checkpoint`), line);
    assert.ok(!line.includes("a.png"), line);
  }));

Deno.test("deno task predict: mistakes are one clear line (exit 1); --help has an example", () =>
  withTempDir(async (dir) => {
    await writeImage(`${dir}/a.png`, 20, 20);
    await Deno.writeTextFile(`${dir}/notes.txt`, "x");
    await Deno.mkdir(`${dir}/b`);
    await writeImage(`${dir}/b/a.png`, 20, 20);
    await Deno.writeTextFile(`${dir}/fake.safetensors`, "not a checkpoint");
    const cases: Array<[string[], RegExp]> = [
      [["--model", `${dir}/missing.safetensors`, "--input", `${dir}/a.png`], /--model: .* is not a file/],
      [["--model", `${dir}/fake.safetensors`, "--input", `${dir}/notes.txt`], /--input: .*notes\.txt is not a PNG/],
      [["--model", `${dir}/fake.safetensors`, "--input", `${dir}/nothing`], /--input: .*nothing does not exist/],
      [
        ["--model", `${dir}/fake.safetensors`, "--input", `${dir}/a.png`, "--input", `${dir}/b`],
        /both be written as 'a'/,
      ],
      [
        ["--model", `${dir}/fake.safetensors`, "--input", `${dir}/a.png`, "--mpp", "0.5", "--magnification", "20"],
        /not both/,
      ],
      [
        ["--model", `${dir}/fake.safetensors`, "--input", `${dir}/a.png`, "--overlap", "500"],
        /--model: .*not a safetensors/,
      ],
      [["--model", `${dir}/fake.safetensors`, "--input", `${dir}/a.png`, "--no-cache"], /not a safetensors checkpoint/],
    ];
    for (const [args, message] of cases) {
      const r = await predict(...args);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n").filter((l) => l.startsWith("error:"));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0] as string, message);
    }
    const help = await predict("--help");
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Example: deno task predict --model/);
    for (const flag of ["--input", "--out", "--mpp", "--magnification", "--overlap", "--batch", "--data"]) {
      assert.ok(help.stdout.includes(flag), flag);
    }
  }));

Deno.test("deno task predict --tta, --tta-average, --foreground (a conv_micro model): voting keeps a subset of the plain nuclei; bad values are one line", () =>
  withTempDir(async (dir) => {
    const r = await deno([
      ...taskArgs("train"),
      ...["--data", "synthetic:2", "--tiles", "10", "--preset", "conv_micro", "--steps", "80", "--batch", "1"],
      ...["--out", `${dir}/run`, "--cache", `${dir}/cache`, "--checkpoint-every", "0"],
    ]);
    assert.equal(r.code, 0, r.stderr);
    const model = `${dir}/run/checkpoint.safetensors`;
    await writeImage(`${dir}/a.png`, 100, 100);
    const run = async (out: string, ...flags: string[]) => {
      const p = await predict(
        "--model",
        model,
        "--input",
        `${dir}/a.png`,
        "--out",
        `${dir}/${out}`,
        "--no-cache",
        ...flags,
      );
      assert.equal(p.code, 0, p.stderr);
      return (await readNpy(`${dir}/${out}/npy/a.instances.npy`)).data as Int32Array;
    };
    const plain = await run("plain", "--instances", "queries", "--foreground", "0");
    const gated = await run("gated", "--instances", "queries");
    const voted = await run("voted", "--instances", "queries", "--foreground", "0", "--tta", "4");
    const count = (m: Int32Array) => new Set(m).size - (m.includes(0) ? 1 : 0);
    assert.ok(count(plain) > 0, "the model finds nuclei");
    // the foreground map and the vote only take pixels and nuclei away
    const foreground = (m: Int32Array) => m.filter((v) => v > 0).length;
    assert.ok(foreground(gated) <= foreground(plain), `${foreground(gated)} vs ${foreground(plain)} pixels`);
    assert.ok(count(voted) <= count(plain), `${count(voted)} vs ${count(plain)} nuclei`);
    voted.forEach((v, p) => assert.ok(v === 0 || plain[p] !== 0, "a voted nucleus is a plain one"));
    // nuclei from the dense maps, and the queries' nuclei grown over the dense foreground
    const dense = await run("dense", "--instances", "dense");
    const hybrid = await run("hybrid", "--instances", "hybrid");
    const centres = await run("centres"); // the default for models with dense maps
    assert.ok(count(centres) > 0, `${count(centres)} nuclei from the centres`);
    assert.ok(count(dense) > 0 && count(hybrid) > 0, `${count(dense)} dense, ${count(hybrid)} hybrid nuclei`);
    // the four flips' maps averaged, then decoded once by the centres
    const averaged = await run("averaged", "--tta-average");
    assert.ok(count(averaged) > 0, `${count(averaged)} nuclei from the averaged maps`);
    // the eight symmetries, and the centres' flooding with the distance maps' boundary energy
    const rotated = await run("rotated", "--tta-average", "--tta-rot90");
    assert.ok(count(rotated) > 0, `${count(rotated)} nuclei from the eight symmetries' maps`);
    const bounded = await run("bounded", "--boundary-weight", "1");
    // class offsets change classes only: the same instance map
    const biased = await run("biased", "--class-bias", "1,0,0,0,-1");
    assert.deepEqual(Array.from(biased), Array.from(centres), "--class-bias keeps the nuclei");
    // the boundary energy moves borders between nuclei; only a piece under the minimum area can come or go
    assert.ok(count(bounded) > 0, `${count(bounded)} nuclei with the boundary energy`);
    assert.ok(
      Math.abs(foreground(bounded) - foreground(centres)) <= 0.02 * foreground(centres),
      `${foreground(bounded)} vs ${foreground(centres)} pixels`,
    );
    for (
      const [flags, message] of [
        [["--tta", "5"], /--tta must be a number of votes from 1 to 4, found 5/],
        [["--foreground", "1"], /--foreground must be in \[0, 1\), found 1/],
        [["--tta-rot90"], /--tta-rot90 adds variants to --tta-average: give both/],
        [["--boundary-weight", "-1"], /--boundary-weight must be at least 0, found -1/],
        [["--class-bias", "0,x"], /--class-bias must be comma-separated numbers, found '0,x'/],
        [["--class-bias", "0,0"], /--class-bias needs one value per class of the model \(.+\), found 2/],
        [
          ["--tta", "2", "--tta-average"],
          /--tta and --tta-average are two ways to combine the flips: give one of them/,
        ],
      ] as const
    ) {
      const bad = await predict("--model", model, "--input", `${dir}/a.png`, "--no-cache", ...flags);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, message);
    }
  }));
