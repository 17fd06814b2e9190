/**
 * `deno task ablate --queue` and `deno task worker` (pipeline/queue/) against a real Redis
 * (tests/_redis.ts) and a real cache server (tests/_nginx.ts) on loopback, with several worker
 * processes: the results equal a local run's byte for byte, a job enqueued twice runs once, and the
 * faults of issue #20 — a worker SIGKILLed mid-job, Redis restarted mid-sweep, a job that always
 * fails. The queue's timings are shortened through its environment variables (a lock of 5 s).
 */
import assert from "node:assert/strict";
import { computed, FAST, type Proc, spawn, withCluster, withNet } from "./_cluster.ts";
import { freePort, withTempDir } from "./_helpers.ts";
import type { Nginx } from "./_nginx.ts";
import type { RedisServer } from "./_redis.ts";
import { taskArgs } from "./_tasks.ts";

const micro = (steps: number) => [
  ...["--data", "synthetic:0", "--tiles", "8", "--preset", "micro", "--rows", "baseline", "--seeds", "2"],
  ...["--steps", String(steps), "--batch", "1"],
];

/** The coordinator: `deno task ablate ARGS --queue … --remote-cache …` with its own cache and output folder. */
const coordinator = (
  c: { redis: RedisServer; nginx: Nginx },
  args: string[],
  dir: string,
  env: Record<string, string> = {},
) =>
  spawn([
    ...withNet("ablate", c.redis, c.nginx),
    ...args,
    ...["--queue", c.redis.url, "--remote-cache", c.nginx.url, "--cache", `${dir}/cache`, "--out", `${dir}/out`],
  ], { ...FAST, ...env });

/** ablation.json and ablation.md without what names the command line (its caches and folders differ). */
const results = async (out: string) => {
  const json = JSON.parse(await Deno.readTextFile(`${out}/ablation.json`));
  delete json.command;
  const md = (await Deno.readTextFile(`${out}/ablation.md`)).split("\n").filter((l) => !l.startsWith("Command: "));
  return { json: JSON.stringify(json, null, 1), md: md.join("\n"), png: await Deno.readFile(`${out}/ablation.png`) };
};

/** A local run of the same sweep, no queue, no remote cache: what the queued runs must equal. */
const references = new Map<number, Promise<Awaited<ReturnType<typeof results>>>>();
const localReference = (steps: number) => {
  const known = references.get(steps);
  if (known !== undefined) return known;
  const made = (async () => {
    const dir = await Deno.makeTempDir({ prefix: "ivaan-queue-ref-" });
    try {
      const r = await spawn([...taskArgs("ablate"), ...micro(steps), "--cache", `${dir}/cache`, "--out", `${dir}/out`])
        .done;
      assert.equal(r.code, 0, r.stderr);
      return await results(`${dir}/out`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();
  references.set(steps, made);
  return made;
};

const assertSameAsLocal = async (out: string, steps: number) => {
  const [queued, local] = [await results(out), await localReference(steps)];
  assert.equal(queued.json, local.json, "ablation.json (but its command) equals a local run's");
  assert.equal(queued.md, local.md, "ablation.md (but its Command line) equals a local run's");
  assert.deepEqual(queued.png, local.png, "the chart too");
};

Deno.test("ablate --queue, 2 workers: the table equals a local run's; two coordinators enqueue the same jobs, each runs once", () =>
  withTempDir((dir) => {
    const reference = localReference(8);
    return withCluster(dir, 2, {}, async (c) => {
      const [a, b] = [coordinator(c, micro(8), `${dir}/a`), coordinator(c, micro(8), `${dir}/b`)];
      const [ra, rb] = await Promise.all([a.done, b.done]);
      assert.equal(ra.code, 0, ra.stderr);
      assert.equal(rb.code, 0, rb.stderr);
      // both asked for both trainings (the same ids: BullMQ adds each once), and each ran on one worker only
      for (const r of [ra, rb]) assert.match(r.stderr, /queue: 2 of 2 nodes to compute on workers \(0 cached\)/);
      assert.match(ra.stderr, /queue: 2 of 2 done, 0 running, 0 waiting, 0 failed/);
      for (const node of ["train.baseline.s0", "train.baseline.s1"]) {
        assert.equal(
          computed(c.workers, node),
          1,
          `${node} computed once:\n${c.workers.map((w) => w.log()).join("\n")}`,
        );
      }
      await reference;
      await assertSameAsLocal(`${dir}/a/out`, 8);
      await assertSameAsLocal(`${dir}/b/out`, 8);
      // a third run finds every training cached: no job at all
      const again = await coordinator(c, micro(8), `${dir}/c`).done;
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /queue: 0 of 2 nodes to compute on workers \(2 cached\)/);
    });
  }));

Deno.test("ablate --queue: a worker SIGKILLed mid-job — another takes the job after stall detection; the table is unchanged", () =>
  withTempDir((dir) => {
    const reference = localReference(24);
    return withCluster(dir, 2, {}, async (c) => {
      const [first, second] = c.workers as [Proc, Proc];
      const run = coordinator(c, micro(24), `${dir}/a`);
      const node = (await first.waitFor(/worker: computing (train\.baseline\.s\d) /))[1] as string;
      first.kill("SIGKILL");
      const r = await run.done;
      assert.equal(r.code, 0, r.stderr);
      await second.waitFor(new RegExp(`worker: computing ${node.replaceAll(".", "\\.")} `), 1);
      await reference;
      await assertSameAsLocal(`${dir}/a/out`, 24);
    });
  }));

Deno.test("ablate --queue: Redis restarted mid-sweep (every job record lost) — the sweep completes with the same table", () =>
  withTempDir((dir) => {
    const reference = localReference(24);
    return withCluster(dir, 2, {}, async (c) => {
      const run = coordinator(c, micro(24), `${dir}/a`);
      await Promise.race(c.workers.map((w) => w.waitFor(/worker: computing train/)));
      await c.redis.restart();
      const r = await run.done;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /queue: job train\.baseline\.s\d is gone from Redis \(restarted\?\); enqueued again/);
      await reference;
      await assertSameAsLocal(`${dir}/a/out`, 24);
    });
  }));

Deno.test("ablate --queue: a job that always fails fails the sweep with the node's error after its attempts; the others complete", () =>
  withTempDir((dir) =>
    withCluster(dir, 2, { IVAAN_QUEUE_TEST_FAULT: "train.baseline.s1" }, async (c) => {
      const r = await coordinator(c, micro(8), `${dir}/a`, { IVAAN_QUEUE_ATTEMPTS: "2" }).done;
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /^error: 1 of 2 queued jobs failed; train\.baseline\.s1 failed after 2 attempts: injected fault \(IVAAN_QUEUE_TEST_FAULT\) \(in node 'train\.baseline\.s1'\)$/m,
      );
      assert.equal(computed(c.workers, "train.baseline.s0"), 1, "the other training ran");
      // it is in the shared cache: a rerun without the fault has one job left
      const plan = await spawn([
        ...withNet("ablate", c.redis, c.nginx),
        ...micro(8),
        ...["--remote-cache", c.nginx.url, "--cache", `${dir}/b/cache`, "--explain"],
      ]).done;
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /train\.baseline\.s0\s+hit/);
      assert.match(plan.stdout, /train\.baseline\.s1\s+miss/);
    })
  ));

Deno.test("ablate --queue: without a remote cache, or without network access, one line says what to run", async () => {
  const noCache = await spawn([...taskArgs("ablate"), ...micro(2), "--queue", "redis://127.0.0.1:6379"], {
    IVAAN_REMOTE_CACHE: "",
  }).done;
  assert.equal(noCache.code, 1);
  assert.equal(
    noCache.stderr.trim(),
    "error: --queue needs --remote-cache URL (or IVAAN_REMOTE_CACHE): the workers' results travel through the shared cache",
  );
  const noNet = await spawn([
    ...taskArgs("ablate"),
    ...["--rows", "baseline", "--queue", "redis://10.0.0.7:6380", "--remote-cache", "http://10.0.0.5:8080"],
  ]).done;
  assert.equal(noNet.code, 1);
  assert.equal(
    noNet.stderr.trim(),
    "error: --queue redis://10.0.0.7:6380: no network access to 10.0.0.7:6380, 10.0.0.5:8080 (deno task grants none); run: " +
      "deno run --allow-read --allow-write=.,/tmp --allow-env --allow-ffi --allow-net=10.0.0.7:6380,10.0.0.5:8080 tasks/ablate.ts " +
      "--rows baseline --queue redis://10.0.0.7:6380 --remote-cache http://10.0.0.5:8080",
  );
  const worker = await spawn([...taskArgs("worker"), "--queue", "redis://10.0.0.7:6380"], { IVAAN_REMOTE_CACHE: "" })
    .done;
  assert.equal(worker.code, 1);
  assert.match(worker.stderr, /^error: --queue needs --remote-cache URL/);
  // a Redis that does not answer at start is an error, not a wait (a wrong URL)
  const dead = freePort();
  const args = taskArgs("worker");
  const unreachable = await spawn([
    ...args.slice(0, -1),
    `--allow-net=127.0.0.1:${dead},127.0.0.1:8080`,
    ...args.slice(-1),
    ...["--queue", `redis://127.0.0.1:${dead}`, "--remote-cache", "http://127.0.0.1:8080"],
  ], { IVAAN_QUEUE_CONNECT_MS: "1000" }).done;
  assert.equal(unreachable.code, 1, unreachable.stderr);
  assert.match(
    unreachable.stderr,
    new RegExp(
      `^error: queue redis://127\\.0\\.0\\.1:${dead}: Redis at 127\\.0\\.0\\.1:${dead} did not answer within 1 s \\(.*ECONNREFUSED`,
      "m",
    ),
  );
});
