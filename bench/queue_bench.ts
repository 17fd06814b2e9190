/**
 * Queue benchmark (issue #20): one ablation sweep of J micro trainings (`--rows baseline --seeds J`), run locally
 * and through `--queue` with 1, 2, 3 … worker processes on this machine (Redis and nginx on loopback, as in
 * tests/queue_test.ts). Each run starts from empty caches; the workers are started, and ready, before the clock.
 *
 *   deno run -A bench/queue_bench.ts [--jobs 6] [--steps 30] [--workers 1,2,3]
 *
 * Prints a Markdown table: wall time, speed-up over the local run, and the queue + cache overhead per job, which is
 * (wall with one worker − local wall) / J: what a job costs beyond its training (enqueue, a worker's pickup, the
 * checkpoint's upload and the coordinator's download, the pipeline rebuilt on the worker). Workers on one machine
 * share its cores, so speed-ups above 1 need as many free cores as workers × BLAS threads (`--threads` is passed
 * as 1 here so that each training uses one core).
 */
import { startNginx } from "../tests/_nginx.ts";
import { startRedis } from "../tests/_redis.ts";
import { taskArgs } from "../tests/_tasks.ts";

const flag = (name: string, fallback: string): string => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] ?? fallback : fallback;
};
const jobs = Number(flag("jobs", "6"));
const steps = Number(flag("steps", "30"));
const workerCounts = flag("workers", "1,2,3").split(",").map(Number);

const sweep = [
  ...["--data", "synthetic:0", "--tiles", "8", "--preset", "micro", "--rows", "baseline"],
  ...["--seeds", String(jobs), "--steps", String(steps), "--batch", "1", "--threads", "1"],
];

const run = async (args: string[], env: Record<string, string> = {}) => {
  const out = await new Deno.Command(Deno.execPath(), { args, env, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stderr);
  if (out.code !== 0) throw new Error(`${args.join(" ")} failed (${out.code}):\n${text}`);
  return text;
};

const withNet = (task: string, ports: ReadonlyArray<number>) => {
  const args = taskArgs(task);
  return [...args.slice(0, -1), `--allow-net=${ports.map((p) => `127.0.0.1:${p}`).join(",")}`, ...args.slice(-1)];
};

const dir = await Deno.makeTempDir({ prefix: "ivaan-queue-bench-" });
const rows: Array<{ label: string; seconds: number }> = [];
try {
  let started = performance.now();
  await run([...taskArgs("ablate"), ...sweep, "--cache", `${dir}/local/cache`, "--out", `${dir}/local/out`]);
  const local = (performance.now() - started) / 1000;
  rows.push({ label: "local (no queue)", seconds: local });
  for (const n of workerCounts) {
    const [redis, nginx] = [await startRedis(), await startNginx()];
    const workers: Deno.ChildProcess[] = [];
    try {
      const ready: Promise<void>[] = [];
      for (let i = 0; i < n; i++) {
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            ...withNet("worker", [redis.port, nginx.port]),
            ...["--queue", redis.url, "--remote-cache", nginx.url, "--cache", `${dir}/w${n}/worker${i}`],
          ],
          stdin: "null",
          stdout: "null",
          stderr: "piped",
        }).spawn();
        workers.push(child);
        // the whole stderr is drained (a closed pipe would fail the worker's next line); ready at its first line
        ready.push(
          new Promise((resolve, reject) => {
            let seen = "";
            (async () => {
              for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
                seen += chunk;
                if (seen.includes("taking jobs from")) resolve();
              }
              reject(new Error(`worker ${i} exited:\n${seen}`));
            })();
          }),
        );
      }
      await Promise.all(ready);
      started = performance.now();
      await run([
        ...withNet("ablate", [redis.port, nginx.port]),
        ...sweep,
        ...["--queue", redis.url, "--remote-cache", nginx.url],
        ...["--cache", `${dir}/w${n}/cache`, "--out", `${dir}/w${n}/out`],
      ]);
      rows.push({ label: `${n} worker${n === 1 ? "" : "s"}`, seconds: (performance.now() - started) / 1000 });
    } finally {
      for (const w of workers) {
        try {
          w.kill("SIGTERM");
        } catch {
          // gone
        }
        await w.status;
      }
      await redis.stop();
      await nginx.stop();
    }
  }
  const one = rows.find((r) => r.label === "1 worker");
  console.log(
    `${jobs} micro trainings of ${steps} steps (batch 1, 1 BLAS thread each), ${navigator.hardwareConcurrency} cores\n`,
  );
  console.log("| run | wall (s) | speed-up vs local |");
  console.log("|---|---|---|");
  for (const r of rows) {
    console.log(`| ${r.label} | ${r.seconds.toFixed(1)} | ${(local / r.seconds).toFixed(2)}× |`);
  }
  if (one !== undefined) {
    console.log(`\nqueue + cache overhead per job: ${((one.seconds - local) / jobs).toFixed(2)} s`);
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
