/**
 * Training survives `kill -9` (issue #19, point 3): a micro-preset run is killed with SIGKILL at random points — during
 * start-up, between steps, while a checkpoint or a cache entry is being written — at least 20 times, and each time
 * started again from its newest checkpoint (`--resume OUT/checkpoint-stepN.safetensors`, what a user would do). The
 * run that finally completes ends with a checkpoint whose tensors (parameters and AdamW state) are byte for byte those
 * of a run that was never stopped, and whose metadata is the same except the per-step wall times in its history.
 * `deno task cache verify` then finds no corrupt entry.
 */
import assert from "node:assert/strict";
import { mulberry32 } from "../stages/data/random.ts";
import { Effect } from "effect";
import { decodeSafetensors } from "../pipeline/codec/safetensors.ts";
import { deno, withTempDir } from "./_helpers.ts";
import { taskArgs } from "./_tasks.ts";

const STEPS = 60, KILLS = 20;

/** The newest `checkpoint-stepN.safetensors` in `dir` and its step (0 and undefined when none). */
const newest = async (dir: string): Promise<{ step: number; path?: string }> => {
  let best: { step: number; path?: string } = { step: 0 };
  try {
    for await (const e of Deno.readDir(dir)) {
      const m = /^checkpoint-step(\d+)\.safetensors$/.exec(e.name);
      if (m !== null && Number(m[1]) > best.step) best = { step: Number(m[1]), path: `${dir}/${e.name}` };
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return best;
};

/** A checkpoint's tensors as raw bytes and its metadata with the per-step wall times removed. */
const contents = async (path: string) => {
  const file = await Effect.runPromise(decodeSafetensors(await Deno.readFile(path)));
  const tensors = Object.fromEntries(
    Object.entries(file.tensors).map(([name, t]) => [
      name,
      Array.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
    ]),
  );
  const metadata = { ...file.metadata };
  const history = JSON.parse(metadata.history ?? "[]") as Array<Record<string, unknown>>;
  metadata.history = JSON.stringify(history.map(({ ms: _, ...rest }) => rest));
  return { tensors, metadata };
};

Deno.test(`train killed with SIGKILL ${KILLS}+ times at random points, resumed from its newest checkpoint: the same final checkpoint`, () =>
  withTempDir(async (dir) => {
    const common = [
      ...taskArgs("train"),
      ...["--data", "synthetic:4", "--tiles", "8", "--preset", "micro", "--batch", "1"],
      ...["--steps", String(STEPS), "--checkpoint-every", "1"],
    ];
    // its own cache: a cache shared with the killed runs would hand them the reference's result
    const reference = await deno([...common, "--out", `${dir}/reference`, "--cache", `${dir}/cache-reference`]);
    assert.equal(reference.code, 0, reference.stderr);

    const next = mulberry32(19), out = `${dir}/killed`, kills: string[] = [];
    let done = false;
    for (let attempt = 0; attempt < 4 * KILLS && !done; attempt++) {
      const from = await newest(out);
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          ...common,
          ...["--out", out, "--cache", `${dir}/cache`],
          ...(from.path === undefined ? [] : ["--resume", from.path]),
        ],
        stdout: "null",
        stderr: "piped",
        stdin: "null",
      }).spawn();
      let exited = false;
      const status = child.status.then((s) => (exited = true, s));
      // kill: after a random delay from the start (start-up included), or a moment after a new checkpoint
      const mode = kills.length < KILLS ? (next() < 0.5 ? "timed" : "after-checkpoint") : "none";
      if (mode === "timed") {
        const until = performance.now() + 200 + next() * 1500;
        while (!exited && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
      } else if (mode === "after-checkpoint") {
        const extra = next() * 60;
        while (!exited && (await newest(out)).step <= from.step) await new Promise((r) => setTimeout(r, 5));
        await new Promise((r) => setTimeout(r, extra));
      }
      const killed = mode !== "none" && !exited;
      if (killed) child.kill("SIGKILL");
      const [s, stderr] = await Promise.all([status, new Response(child.stderr).text()]);
      if (killed && s.code !== 0) {
        kills.push(`${mode} from step ${from.step} → ${(await newest(out)).step}`);
        continue;
      }
      assert.equal(s.code, 0, stderr);
      done = true;
    }
    assert.ok(done, `the run completed (${kills.length} kills: ${kills.join("; ")})`);
    assert.ok(kills.length >= KILLS, `killed ${kills.length} times`);

    const [a, b] = await Promise.all([
      contents(`${dir}/reference/checkpoint.safetensors`),
      contents(`${out}/checkpoint.safetensors`),
    ]);
    assert.deepEqual(Object.keys(b.tensors).sort(), Object.keys(a.tensors).sort());
    const differ = Object.keys(a.tensors).filter((n) => JSON.stringify(a.tensors[n]) !== JSON.stringify(b.tensors[n]));
    assert.deepEqual(differ, [], `tensors that differ after ${kills.join("; ")}`);
    assert.deepEqual(b.metadata, a.metadata, "metadata (history without wall times)");
    const leftovers: string[] = [];
    for await (const e of Deno.readDir(out)) if (e.name.endsWith(".tmp")) leftovers.push(e.name);
    // a kill during a checkpoint's write leaves its .tmp behind, never a half checkpoint under the final name
    for (const name of leftovers) assert.match(name, /^checkpoint-step\d+\.safetensors\.tmp$/);
    const verify = await deno([...taskArgs("cache"), "verify", "--cache", `${dir}/cache`]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    console.log(`train kill/resume: ${kills.length} kills survived (100 %), final checkpoint identical`);
  }));
