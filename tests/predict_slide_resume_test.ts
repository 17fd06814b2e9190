/**
 * Whole-slide prediction survives `kill -9` (issue #18, point 5): a micro model predicts a pyramidal TIFF while the
 * test kills the process at random points (after a random number of stored tile batches); each restart predicts only
 * the batches not yet stored (stages/slide/tile_cache.ts), and the finished outputs are byte for byte those of a run
 * that was never stopped. `deno task cache verify` then finds every entry intact. Reported as ignored where
 * libopenslide is missing (slides need it).
 */
import assert from "node:assert/strict";
import { mulberry32 } from "../stages/data/random.ts";
import { syntheticSample } from "../stages/data/synthetic.ts";
import { pyramidTiff } from "../stages/slide/_fixtures.ts";
import { openSlideAvailable } from "../stages/slide/openslide.ts";
import { deno, withTempDir } from "./_helpers.ts";
import { taskArgs, trainMicro } from "./_tasks.ts";

const available = openSlideAvailable();
const needs = available === true ? "" : ` (not tested here: ${available})`;

/** 768 × 512 of glass with two synthetic H&E patches. */
const W = 768, H = 512;
const slidePixels = () => {
  const rgb = new Uint8Array(W * H * 3).fill(255); // [H, W, 3]
  for (const [seed, y0, x0] of [[3, 40, 60], [4, 230, 420]] as const) {
    const s = syntheticSample(seed, 0, { size: 240 });
    for (let y = 0; y < 240; y++) {
      rgb.set(s.image.subarray(y * s.width * 3, (y * s.width + 240) * 3), ((y + y0) * W + x0) * 3);
    }
  }
  return rgb;
};

const OUTPUTS = ["slide.geojson", "slide.csv", "slide.tissue.png", "slide.overlay.png"];

/**
 * Tile batches stored in a FileStore's objects/ (complete entries only: tmp/ holds those being written); the
 * attribute-word nodes the run also caches (its model's run.json names training data) are not counted.
 */
const entries = async (cache: string) => {
  let n = 0;
  try {
    for await (const e of Deno.readDir(`${cache}/objects`)) {
      const manifest = await Deno.readTextFile(`${cache}/objects/${e.name}/manifest.json`).catch(() => "{}");
      if ((JSON.parse(manifest) as { stage?: string }).stage === "slide.tiles") n++;
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return n;
};

Deno.test({
  name: `deno task predict on a slide: killed with SIGKILL at random points, resumed, byte-identical outputs${needs}`,
  ignore: available !== true,
  fn: () =>
    withTempDir(async (dir) => {
      const model = await trainMicro(dir);
      await pyramidTiff(`${dir}/slide.tif`, slidePixels(), W, H, 4000);
      const args = (out: string, cache: string) => [
        ...taskArgs("predict"),
        ...["--model", model, "--input", `${dir}/slide.tif`, "--out", out, "--cache", cache, "--batch", "1"],
        "--all-tiles",
      ];

      // the reference: one run, never stopped, its own cache
      const reference = await deno(args(`${dir}/reference`, `${dir}/cache-reference`));
      assert.equal(reference.code, 0, reference.stderr);
      const batches = await entries(`${dir}/cache-reference`);
      assert.ok(batches >= 40, `enough batches to kill between (${batches})`);

      // killed after a random number of newly stored batches, again and again, until a run finishes
      const next = mulberry32(18), cache = `${dir}/cache-resumed`, out = `${dir}/resumed`;
      const kills: number[] = [];
      for (let attempt = 0; attempt < 12; attempt++) {
        const before = await entries(cache), target = before + 1 + Math.floor(next() * (batches / 3));
        const child = new Deno.Command(Deno.execPath(), {
          args: args(out, cache),
          stdout: "piped",
          stderr: "piped",
          stdin: "null",
        }).spawn();
        const status = child.status;
        let finished = false;
        status.then(() => finished = true);
        while (!finished && await entries(cache) < target) await new Promise((r) => setTimeout(r, 20));
        const killed = !finished;
        if (killed) {
          child.kill("SIGKILL");
          kills.push(await entries(cache));
        }
        const [code, stdout, stderr] = await Promise.all([
          status.then((s) => s.code),
          new Response(child.stdout).text(),
          new Response(child.stderr).text(),
        ]);
        if (!killed || code === 0) {
          assert.equal(code, 0, stderr);
          if (kills.length > 0) assert.match(stdout, /\d+ tiles from the cache/, "the last run resumed");
          break;
        }
      }
      assert.ok(kills.length >= 3, `killed at least 3 times (after ${kills.join(", ")} stored batches)`);
      assert.equal(await entries(cache), batches, "every batch stored once");
      for (const name of OUTPUTS) {
        const [a, b] = await Promise.all([
          Deno.readFile(`${dir}/reference/${name}`),
          Deno.readFile(`${out}/${name}`),
        ]);
        assert.ok(a.length > 0 && a.length === b.length && a.every((v, i) => v === b[i]), `${name} byte-identical`);
      }
      const leftovers = [];
      for await (const e of Deno.readDir(out)) if (e.name.endsWith(".partial")) leftovers.push(e.name);
      assert.deepEqual(leftovers, [], "no half-written output left");

      // a rerun reads every batch from the cache; verify finds no corrupt entry
      const again = await deno(args(`${dir}/again`, cache));
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, new RegExp(`${batches} tiles from the cache`));
      const verify = await deno([...taskArgs("cache"), "verify", "--cache", cache]);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      console.log(
        `slide resume: killed ${kills.length} times (after ${
          kills.join(", ")
        } of ${batches} batches), outputs identical`,
      );
    }),
});
