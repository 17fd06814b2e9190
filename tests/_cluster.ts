/**
 * A queue cluster on loopback for the `--queue` tests (tests/queue_test.ts, tests/predict_queue_test.ts): a real
 * Redis (tests/_redis.ts), a real cache server (tests/_nginx.ts) and `deno task worker` processes, each with its own
 * cache, whose stderr is watched as it comes. The queue's timings are shortened through its environment variables.
 */
import assert from "node:assert/strict";
import { type Nginx, nginxBinary, withNginx } from "./_nginx.ts";
import { redisBinary, type RedisServer, withRedis } from "./_redis.ts";
import { taskArgs } from "./_tasks.ts";

/**
 * Seconds-scale queue timings: a dead worker's job is taken again within about 6 s. The lock outlasts
 * the longest stretch a micro training blocks the event loop on a loaded machine (its first step).
 */
export const FAST = {
  IVAAN_QUEUE_LOCK_MS: "5000",
  IVAAN_QUEUE_STALLED_MS: "1000",
  IVAAN_QUEUE_BACKOFF_MS: "200",
  IVAAN_QUEUE_POLL_MS: "200",
};

/** Why a cluster cannot be started here (redis-server or nginx missing: what to run), or undefined. */
export const clusterMissing = (): string | undefined => {
  for (const binary of [redisBinary, nginxBinary]) {
    try {
      binary();
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  }
  return undefined;
};

/** `deno run` arguments of a task with network access to Redis and the cache server only. */
export const withNet = (task: string, redis: RedisServer, nginx: Nginx): string[] => {
  const args = taskArgs(task);
  return [...args.slice(0, -1), `--allow-net=127.0.0.1:${redis.port},127.0.0.1:${nginx.port}`, ...args.slice(-1)];
};

/** A child process whose stderr is watched as it comes. */
export interface Proc {
  readonly log: () => string;
  readonly waitFor: (pattern: RegExp, ms?: number) => Promise<RegExpExecArray>;
  readonly kill: (signal: Deno.Signal) => void;
  readonly done: Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Starts `deno ARGS` with `env` added to this process's environment. */
export const spawn = (args: string[], env: Record<string, string> = {}): Proc => {
  const child = new Deno.Command(Deno.execPath(), { args, env, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  let err = "";
  const decoder = new TextDecoder();
  const stderr = (async () => {
    for await (const chunk of child.stderr) err += decoder.decode(chunk, { stream: true });
  })();
  const stdout = new Response(child.stdout).text();
  let exited = false;
  const done = child.status.then(async (s) => {
    exited = true;
    await stderr;
    return { code: s.code, stdout: await stdout, stderr: err };
  });
  return {
    log: () => err,
    waitFor: async (pattern, ms = 60_000) => {
      const deadline = Date.now() + ms;
      for (;;) {
        const m = pattern.exec(err);
        if (m !== null) return m;
        if (exited || Date.now() > deadline) throw new Error(`no ${pattern} within ${ms} ms in:\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    kill: (signal) => {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    },
    done,
  };
};

/** A cluster on loopback: Redis, the cache server and `workers` worker processes, each with its own cache. */
export const withCluster = <A>(
  dir: string,
  workers: number,
  env: Record<string, string>,
  f: (c: { redis: RedisServer; nginx: Nginx; workers: Proc[] }) => Promise<A>,
): Promise<A> =>
  withRedis((redis) =>
    withNginx(async (nginx) => {
      const procs = Array.from({ length: workers }, (_, i) =>
        spawn([
          ...withNet("worker", redis, nginx),
          ...["--queue", redis.url, "--remote-cache", nginx.url, "--cache", `${dir}/worker${i}`],
        ], { ...FAST, ...env }));
      try {
        await Promise.all(procs.map((p) => p.waitFor(/taking jobs from/)));
        return await f({ redis, nginx, workers: procs });
      } finally {
        for (const p of procs) p.kill("SIGTERM");
        const stopped = await Promise.all(procs.map((p) => p.done));
        for (const s of stopped) {
          assert.ok(s.code === 0 || s.code === 130 || s.code === 143 || s.code === 137, s.stderr);
        }
      }
    })
  );

/** How many times the workers `procs` started computing `node`. */
export const computed = (procs: Proc[], node: string): number =>
  procs.map((p) => (p.log().match(new RegExp(`worker: computing ${node.replaceAll(".", "\\.")} `, "g")) ?? []).length)
    .reduce((a, b) => a + b, 0);
