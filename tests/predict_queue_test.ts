/**
 * `deno task predict --queue` and `deno task worker` (tasks/_predict_queue.ts) against a real Redis and a real cache
 * server on loopback (tests/_cluster.ts), with two worker processes: a micro model (as tests/predict_cli_test.ts
 * trains it) on two images and one small pyramidal TIFF slide. One job per image (its prediction node) and one per
 * slide (its tile batches); the coordinator's output folder equals a local run's file for file, byte for byte, and
 * a second coordinator finds every job done and enqueues none. Reported as ignored, saying what is missing, where
 * redis-server, nginx or libopenslide are absent.
 */
import assert from "node:assert/strict";
import sharp from "sharp";
import { syntheticSample } from "../stages/data/synthetic.ts";
import { pyramidTiff } from "../stages/slide/_fixtures.ts";
import { openSlideAvailable } from "../stages/slide/openslide.ts";
import { clusterMissing, computed, FAST, type Proc, spawn, withCluster, withNet } from "./_cluster.ts";
import { deno, withTempDir } from "./_helpers.ts";
import { taskArgs, trainMicro } from "./_tasks.ts";

const openSlide = openSlideAvailable();
const missing = (openSlide === true ? undefined : openSlide) ?? clusterMissing();
if (missing !== undefined) console.warn(`skipping the predict --queue test: ${missing}`);

/** A synthetic H&E image of `height`×`width` (a crop of a larger synthetic tile), format by extension. */
const writeImage = async (path: string, height: number, width: number, seed: number) => {
  const s = syntheticSample(seed, 0, { size: Math.max(height, width) });
  const rgb = new Uint8Array(height * width * 3); // [H, W, 3]
  for (let y = 0; y < height; y++) rgb.set(s.image.subarray(y * s.width * 3, (y * s.width + width) * 3), y * width * 3);
  await sharp(rgb, { raw: { width, height, channels: 3 } }).toFile(path);
};

/** A W × H pyramidal TIFF (0.25 µm/px) of white glass with a 200² synthetic H&E patch: a few dozen tissue tiles. */
const W = 512, H = 384;
const writeSlide = (path: string) => {
  const s = syntheticSample(8, 0, { size: 200 });
  const rgb = new Uint8Array(W * H * 3).fill(255); // [H, W, 3]
  for (let y = 0; y < 200; y++) {
    rgb.set(s.image.subarray(y * s.width * 3, (y + 1) * s.width * 3), ((y + 90) * W + 150) * 3);
  }
  return pyramidTiff(path, rgb, W, H, 4000);
};

/** Every file under `dir`, by path relative to it, with its bytes. */
const filesUnder = async (dir: string, prefix = ""): Promise<Map<string, Uint8Array>> => {
  const found = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(`${dir}/${prefix}`)) {
    const path = `${prefix}${e.name}`;
    if (e.isDirectory) { for (const [p, b] of await filesUnder(dir, `${path}/`)) found.set(p, b); }
    else found.set(path, await Deno.readFile(`${dir}/${path}`));
  }
  return found;
};

/**
 * summary.json without what says where each prediction came from (`cached` per image, `cachedTiles` per slide):
 * the queued run finds them all in the cache, by design.
 */
const withoutProvenance = (bytes: Uint8Array) =>
  JSON.stringify(
    JSON.parse(new TextDecoder().decode(bytes)),
    (k, v) => (k === "cached" || k === "cachedTiles") ? undefined : v,
  );

/** Asserts that output folder `b` holds exactly the files of `a`, byte for byte (summary.json: but provenance). */
const assertSameOutputs = async (a: string, b: string) => {
  const [left, right] = [await filesUnder(a), await filesUnder(b)];
  assert.deepEqual([...right.keys()].sort(), [...left.keys()].sort(), "the same files");
  for (const [path, bytes] of left) {
    const other = right.get(path) as Uint8Array;
    if (path === "summary.json") assert.equal(withoutProvenance(other), withoutProvenance(bytes), path);
    else assert.ok(bytes.length === other.length && bytes.every((v, i) => v === other[i]), `${path} byte-identical`);
  }
};

Deno.test({
  name:
    `deno task predict --queue, 2 workers: one job per image and per slide, outputs byte-identical to a local run; a rerun enqueues nothing${
      missing === undefined ? "" : ` (not tested here: ${missing})`
    }`,
  ignore: missing !== undefined,
  fn: () =>
    withTempDir(async (dir) => {
      const model = await trainMicro(dir);
      await Deno.mkdir(`${dir}/images`);
      await writeImage(`${dir}/images/wide.png`, 90, 140, 5);
      await writeImage(`${dir}/images/scan.jpg`, 70, 64, 7);
      await writeSlide(`${dir}/slide.tif`);
      const inputs = ["--model", model, "--input", `${dir}/images`, "--input", `${dir}/slide.tif`];

      const local = await deno([...taskArgs("predict"), ...inputs, "--out", `${dir}/local`, "--cache", `${dir}/c0`]);
      assert.equal(local.code, 0, local.stderr);

      await withCluster(dir, 2, {}, async (c) => {
        const coordinator = (name: string) =>
          spawn([
            ...withNet("predict", c.redis, c.nginx),
            ...inputs,
            ...["--queue", c.redis.url, "--remote-cache", c.nginx.url],
            ...["--out", `${dir}/${name}`, "--cache", `${dir}/${name}-cache`],
          ], FAST).done;
        const first = await coordinator("queued");
        assert.equal(first.code, 0, first.stderr);
        assert.match(first.stderr, /queue: 3 of 3 jobs to run on workers \(0 cached\): 2 of 2 images, 1 of 1 slide/);
        assert.match(first.stderr, /queue: 3 of 3 done, 0 running, 0 waiting, 0 failed/);
        const logs = () => c.workers.map((w: Proc) => w.log()).join("\n");
        for (const node of ["predict.0", "predict.1", "slide.slide"]) {
          assert.equal(computed(c.workers, node), 1, `${node} computed once, on a worker:\n${logs()}`);
        }
        // the coordinator predicted nothing itself: every image and every tile batch came from the shared cache
        const slide = /slide\.tif: \d+ nuclei .* on (\d+) of \d+ tiles .*; (\d+) tiles from the cache\)/.exec(
          first.stdout,
        );
        assert.ok(slide !== null && Number(slide[1]) > 0 && slide[1] === slide[2], first.stdout);
        for (const image of ["wide.png", "scan.jpg"]) {
          assert.match(
            first.stdout,
            new RegExp(`${image.replace(".", "\\.")}: \\d+ nuclei .*\\(prediction from the cache\\)`),
          );
        }
        await assertSameOutputs(`${dir}/local`, `${dir}/queued`);

        // the same predict again, from a fresh cache: every job is done already, none is enqueued or computed
        const again = await coordinator("again");
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stderr, /queue: 0 of 3 jobs to run on workers \(3 cached\)/);
        for (const node of ["predict.0", "predict.1", "slide.slide"]) {
          assert.equal(computed(c.workers, node), 1, logs());
        }
        await assertSameOutputs(`${dir}/local`, `${dir}/again`);

        // the workers' results arrive through the cache: --no-cache cannot work, and says so
        const noCache = await spawn([
          ...withNet("predict", c.redis, c.nginx),
          ...inputs,
          ...["--queue", c.redis.url, "--remote-cache", c.nginx.url, "--no-cache", "--out", `${dir}/none`],
        ]).done;
        assert.equal(noCache.code, 1);
        assert.equal(
          noCache.stderr.trim(),
          "error: --queue needs the cache (the workers' results arrive through it): drop --no-cache",
        );
      });
    }),
});

Deno.test("deno task predict --queue: without network access, one line says what to run", async () => {
  const args = ["--model", "m.safetensors", "--input", "x.png", "--queue", "redis://10.0.0.7:6380"];
  const r = await deno([...taskArgs("predict"), ...args, "--remote-cache", "http://10.0.0.5:8080"]);
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr.trim(),
    "error: --queue redis://10.0.0.7:6380: no network access to 10.0.0.7:6380, 10.0.0.5:8080 (deno task grants none); run: " +
      "deno run --allow-read --allow-write=.,/tmp --allow-env --allow-ffi --allow-net=10.0.0.7:6380,10.0.0.5:8080 tasks/predict.ts " +
      `${args.join(" ")} --remote-cache http://10.0.0.5:8080`,
  );
});
