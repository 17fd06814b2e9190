/**
 * `ablate` and `predict` survive `kill -9` (issue #19, point 3): each is killed with SIGKILL at random moments and run
 * again with the same command until it completes; the cache keeps every node that finished, so the reruns go on from
 * there, and the files they write are byte for byte those of a run that was never stopped. `deno task cache verify`
 * finds no corrupt entry afterwards. (Training killed mid-run, resumed from its checkpoints: tests/train_kill_test.ts;
 * whole slides: tests/predict_slide_resume_test.ts.)
 *
 * The reference and the killed runs use the same command line — the cache is chosen by IVAAN_CACHE, the output folder
 * is the same path, the reference's moved away first — because ablation.md and ablation.json record the command.
 */
import assert from "node:assert/strict";
import { mulberry32 } from "../stages/data/random.ts";
import sharp from "sharp";
import { syntheticSample } from "../stages/data/synthetic.ts";
import { deno, withTempDir } from "./_helpers.ts";
import { taskArgs, trainMicro } from "./_tasks.ts";

/** Every file under `dir`, relative path → bytes. */
const files = async (dir: string, prefix = ""): Promise<Map<string, Uint8Array>> => {
  const out = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(`${dir}/${prefix}`)) {
    const rel = prefix === "" ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory) { for (const [k, v] of await files(dir, rel)) out.set(k, v); }
    else out.set(rel, await Deno.readFile(`${dir}/${rel}`));
  }
  return out;
};

/**
 * Runs `args` with `env`, killing it with SIGKILL after a random 0.3–`maxMs` ms, `kills` times (a run that finishes
 * first is not counted, and shrinks the window to the first second), then once more to the end. Returns the kill times.
 */
const killAndFinish = async (
  args: string[],
  env: Record<string, string>,
  kills: number,
  maxMs: number,
  seed: number,
) => {
  const next = mulberry32(seed), times: number[] = [];
  // once a run finishes before its kill (the cache now holds most of it), later kills fall in its start-up
  let window = maxMs;
  for (let attempt = 0; times.length < kills && attempt < 4 * kills; attempt++) {
    const child = new Deno.Command(Deno.execPath(), { args, env, stdout: "null", stderr: "null", stdin: "null" })
      .spawn();
    let exited = false;
    const status = child.status.then((s) => (exited = true, s));
    // every other kill falls in start-up (0.2–0.9 s: before any node is done), the rest anywhere in the run
    const wait = attempt % 2 === 0 ? 200 + next() * 700 : 300 + next() * Math.max(0, window - 300);
    const until = performance.now() + wait;
    while (!exited && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
    if (!exited) child.kill("SIGKILL"), times.push(Math.round(wait));
    else window = 1000;
    await status;
  }
  const last = await deno(args, env);
  assert.equal(last.code, 0, last.stderr);
  return times;
};

/**
 * The same files with the same bytes — except predict's summary.json, which records per image whether its prediction
 * came from the cache (a resumed run's did): compared with those flags removed.
 */
const assertSameFiles = async (reference: string, resumed: string) => {
  const [a, b] = await Promise.all([files(reference), files(resumed)]);
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort(), "the same files");
  for (const [name, bytes] of a) {
    if (name === "summary.json") {
      const withoutCached = (m: Map<string, Uint8Array>) => {
        const json = JSON.parse(new TextDecoder().decode(m.get(name)));
        for (const image of json.images ?? []) delete image.cached;
        return json;
      };
      assert.deepEqual(withoutCached(b), withoutCached(a), "summary.json, apart from the cache flags");
      continue;
    }
    const other = b.get(name) as Uint8Array;
    assert.ok(bytes.length === other.length && bytes.every((v, i) => v === other[i]), `${name} byte-identical`);
  }
  return a.size;
};

const verify = async (cache: string) => {
  const r = await deno([...taskArgs("cache"), "verify", "--cache", cache]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
};

/**
 * Runs `args` once uninterrupted (its own cache; its `out` moved to DIR/reference), then killed and rerun with a fresh
 * cache (`killAndFinish`, 5 kills spread over the reference's own time, at least 3 required), and checks that the
 * outputs match and the cache verifies.
 */
const referenceThenKilled = async (task: string, args: string[], dir: string, out: string, seed: number) => {
  const started = performance.now();
  const reference = await deno(args, { IVAAN_CACHE: `${dir}/cache-reference` });
  assert.equal(reference.code, 0, reference.stderr);
  await Deno.rename(out, `${dir}/reference`);
  const kills = await killAndFinish(args, { IVAAN_CACHE: `${dir}/cache` }, 5, performance.now() - started, seed);
  assert.ok(kills.length >= 3, `killed ${kills.length} times`);
  const n = await assertSameFiles(`${dir}/reference`, out);
  await verify(`${dir}/cache`);
  console.log(`${task} kill/resume: ${kills.length} kills (at ${kills.join(", ")} ms), ${n} outputs identical`);
};

Deno.test("ablate killed with SIGKILL at random points and run again: the same table, JSON and chart", () =>
  withTempDir(async (dir) => {
    const out = `${dir}/out`;
    const args = [
      ...taskArgs("ablate"),
      ...["--data", "synthetic:0", "--tiles", "8", "--preset", "micro", "--rows", "baseline,vl_fixed"],
      ...["--seeds", "2", "--steps", "6", "--batch", "1", "--out", out],
    ];
    await referenceThenKilled("ablate", args, dir, out, 20);
  }));

Deno.test("predict killed with SIGKILL at random points and run again: the same outputs", () =>
  withTempDir(async (dir) => {
    const model = await trainMicro(dir);
    await Deno.mkdir(`${dir}/images`);
    for (let i = 0; i < 6; i++) {
      const s = syntheticSample(7, i, { size: 192 });
      await sharp(s.image, { raw: { width: s.width, height: s.height, channels: 3 } }).png()
        .toFile(`${dir}/images/tile${i}.png`);
    }
    const out = `${dir}/out`;
    const args = [...taskArgs("predict"), "--model", model, "--input", `${dir}/images`, "--out", out];
    await referenceThenKilled("predict", args, dir, out, 21);
  }));
