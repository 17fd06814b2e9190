/**
 * `deno task features` as a subprocess: JSON on stdout, `--json` written atomically with a one-line
 * summary, `--help`, and one clear error line (file + problem, no stack trace) for each bad input
 * of §A1.
 */
import assert from "node:assert/strict";
import { Effect } from "effect";
import { encodeNpy, type NpyData } from "../pipeline/codec/npy.ts";
import { encodePng, type RasterImage } from "../pipeline/codec/png.ts";
import { deno, withTempDir } from "./_helpers.ts";
import { taskArgs } from "./_tasks.ts";

const fixtures = new URL("./fixtures/features/", import.meta.url).pathname;
const features = (...args: string[]) => deno([...taskArgs("features"), ...args]);
const golden = JSON.parse(await Deno.readTextFile(`${fixtures}expected.json`));

const writePng = async (path: string, image: RasterImage) =>
  await Deno.writeFile(path, await Effect.runPromise(encodePng(image)));
const writeNpy = (path: string, data: NpyData, shape: number[]) => Deno.writeFile(path, encodeNpy(data, shape));
const rgb = (height: number, width: number): RasterImage => ({
  height,
  width,
  channels: 3,
  data: Uint8Array.from({ length: height * width * 3 }, (_, i) => (i * 37) % 256),
});

/** The run failed with exactly one stderr line matching `pattern`, and no stack trace. */
const oneLineError = (r: { code: number; stdout: string; stderr: string }, pattern: RegExp) => {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one error line, got:\n${r.stderr}`);
  assert.match(lines[0] as string, /^error: /);
  assert.match(lines[0] as string, pattern);
  assert.doesNotMatch(r.stderr, /\bat .*\.ts:\d+/);
  assert.equal(r.stdout, "");
};

Deno.test("features: §A6 JSON on stdout, equal to the scikit-image golden values", async () => {
  const r = await features("--image", `${fixtures}tile_a.png`, "--instances", `${fixtures}tile_a.npy`);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  const want = golden.tiles[0];
  assert.equal(out.spec_version, "1.0");
  assert.equal(out.image, `${fixtures}tile_a.png`);
  assert.equal(out.inst, `${fixtures}tile_a.npy`);
  assert.deepEqual([out.height, out.width, out.n_instances], [want.height, want.width, want.n_instances]);
  assert.deepEqual(out.feature_names, want.feature_names);
  assert.deepEqual(out.instances.map((x: { id: number }) => x.id), want.instances.map((x: { id: number }) => x.id));
  for (let k = 0; k < want.instances.length; k++) {
    const a = out.instances[k], b = want.instances[k];
    assert.equal(a.area, b.area);
    assert.deepEqual(a.flags, b.flags);
    assert.equal(a.aspect_ratio === null, b.aspect_ratio === null);
    for (const key of ["equivalent_diameter", "solidity", "hematoxylin_mean", "mean_boundary_gradient"]) {
      assert.ok(Math.abs(a[key] - b[key]) <= 1e-6 * Math.abs(b[key]) + 1e-12, `id ${b.id} ${key}`);
    }
  }
});

Deno.test("features --json: written atomically, one summary line on stdout; RGBA and palette PNGs accepted", () =>
  withTempDir(async (dir) => {
    for (const [name, tile] of [["tile_b", golden.tiles[1]], ["tile_c", golden.tiles[2]]]) {
      const r = await features(
        "--image",
        `${fixtures}${name}.png`,
        "--instances",
        `${fixtures}${name}.npy`,
        "--json",
        `${dir}/${name}.json`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim().split("\n").length, 1);
      assert.match(r.stdout, new RegExp(`^wrote ${dir}/${name}.json: ${tile.n_instances} instances`));
      const out = JSON.parse(await Deno.readTextFile(`${dir}/${name}.json`));
      assert.equal(out.n_instances, tile.n_instances);
      assert.deepEqual(out.instances.map((x: { id: number }) => x.id), tile.instances.map((x: { id: number }) => x.id));
    }
    const left = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(left, ["tile_b.json", "tile_c.json"], "no temporary file left behind");
  }));

Deno.test("features --help explains every option", async () => {
  const r = await features("--help");
  assert.equal(r.code, 0, r.stderr);
  for (const flag of ["--image", "--instances", "--json"]) assert.match(r.stdout, new RegExp(flag));
  assert.match(r.stdout, /8-bit RGB PNG/);
  assert.match(r.stdout, /2-D integer \.npy/);
  assert.match(r.stdout, /atomically/);
});

Deno.test("features: one error line per bad input (§A1)", () =>
  withTempDir(async (dir) => {
    const map = new Int32Array(12 * 10);
    map[5] = 3;
    await writeNpy(`${dir}/ok.npy`, map, [12, 10]);
    await writePng(`${dir}/ok.png`, rgb(12, 10));
    const ok = await features("--image", `${dir}/ok.png`, "--instances", `${dir}/ok.npy`);
    assert.equal(ok.code, 0, ok.stderr);

    // 16-bit PNG
    await writePng(`${dir}/deep.png`, {
      height: 12,
      width: 10,
      channels: 3,
      data: Uint16Array.from({ length: 360 }, (_, i) => i * 100),
    });
    oneLineError(
      await features("--image", `${dir}/deep.png`, "--instances", `${dir}/ok.npy`),
      new RegExp(`${dir}/deep.png: 16-bit RGB PNG`),
    );
    // grayscale PNG
    await writePng(`${dir}/grey.png`, { height: 12, width: 10, channels: 1, data: new Uint8Array(120) });
    oneLineError(
      await features("--image", `${dir}/grey.png`, "--instances", `${dir}/ok.npy`),
      new RegExp(`${dir}/grey.png: 8-bit grayscale PNG; expected an 8-bit RGB image`),
    );
    // not a PNG
    await Deno.writeTextFile(`${dir}/text.png`, "hello");
    oneLineError(
      await features("--image", `${dir}/text.png`, "--instances", `${dir}/ok.npy`),
      new RegExp(`${dir}/text.png: not a PNG file`),
    );
    // image / map size mismatch (the map is 10×12, the image 12×10)
    await writeNpy(`${dir}/wide.npy`, new Int32Array(120), [10, 12]);
    oneLineError(
      await features("--image", `${dir}/ok.png`, "--instances", `${dir}/wide.npy`),
      new RegExp(`${dir}/wide.npy: the instance map is 10×12 \\(H×W\\) but ${dir}/ok.png is 12×10`),
    );
    // negative ids
    const negative = new Int32Array(120);
    negative[23] = -4;
    await writeNpy(`${dir}/negative.npy`, negative, [12, 10]);
    oneLineError(
      await features("--image", `${dir}/ok.png`, "--instances", `${dir}/negative.npy`),
      new RegExp(`${dir}/negative.npy: negative instance id -4 at \\(r=2, c=3\\)`),
    );
    // not 2-D
    await writeNpy(`${dir}/cube.npy`, new Int32Array(240), [2, 12, 10]);
    oneLineError(
      await features("--image", `${dir}/ok.png`, "--instances", `${dir}/cube.npy`),
      new RegExp(`${dir}/cube.npy: the instance map must be 2-D \\[H, W\\], found shape \\(2, 12, 10\\)`),
    );
    // not integer
    await writeNpy(`${dir}/float.npy`, new Float64Array(120), [12, 10]);
    oneLineError(
      await features("--image", `${dir}/ok.png`, "--instances", `${dir}/float.npy`),
      new RegExp(`${dir}/float.npy: the instance map must hold integers, found dtype f8`),
    );
    // other integer dtypes are accepted
    await writeNpy(`${dir}/u16.npy`, Uint16Array.from(map), [12, 10]);
    const u16 = await features("--image", `${dir}/ok.png`, "--instances", `${dir}/u16.npy`);
    assert.equal(u16.code, 0, u16.stderr);
    assert.equal(JSON.parse(u16.stdout).instances[0].id, 3);
    // a missing file
    oneLineError(
      await features("--image", `${dir}/absent.png`, "--instances", `${dir}/ok.npy`),
      new RegExp(`--image: ${dir}/absent.png does not exist`),
    );
  }));
