/**
 * A work queue of pipeline nodes on Redis (BullMQ): coordinators enqueue "compute node N of the
 * pipeline that task T builds from arguments A", workers on other machines take the jobs and compute
 * them. Results never travel through Redis: a worker writes its node's entry to the shared remote
 * cache (pipeline/store/remote.ts), and the coordinator, once every job is done, runs the whole
 * pipeline itself, every enqueued node then being a cache hit.
 *
 * Mental model: a job's id is the node's cache key, so BullMQ's rule that an id is added once makes
 * a job enqueued twice (two coordinators, a rerun) run once; the queue only says who computes what.
 * Redis is a scheduler, not a store: when it forgets a job (restarted without persistence) the
 * coordinator asks the cache whether the node is there and enqueues the job again if not.
 *
 * Faults: a worker that dies holds its job's lock until `lockMs` passes; the next stalled check of
 * any worker (every `stalledMs`) puts the job back, and another worker takes it. A job that fails is
 * retried `attempts` times in all (`backoffMs` apart), then marked failed; the coordinator waits for
 * the other jobs and fails with the node's own error. A worker that cannot take a job at all (an
 * unknown task, arguments it cannot parse, a key of its own that differs) fails it at once
 * (`Unrecoverable`), with no retries.
 *
 * Gotchas: `lockMs` must exceed the longest stretch a job blocks the event loop (a training yields
 * after every step); the defaults suit steps of seconds. Redis holds only job records: give it no
 * persistence or any, both work. Deno needs `--allow-net=HOST:PORT` for Redis.
 */
import { Queue, UnrecoverableError, Worker } from "bullmq";
import { Redis } from "ioredis";
import { Cause, Data, Effect, Exit, Schema } from "effect";
import { parseRedisUrl, type RedisAddress } from "./address.ts";

export { parseRedisUrl, type RedisAddress };

/** What a job carries: the task that builds the pipeline, its arguments, and the node to compute. */
export const NodeJob = Schema.Struct({
  task: Schema.String,
  argv: Schema.Array(Schema.String),
  node: Schema.String,
});
export type NodeJob = typeof NodeJob.Type;

/** One job of a coordinator: its id (the node's cache key) and what to compute. */
export interface Submission {
  readonly id: string;
  readonly job: NodeJob;
}

/** Redis could not be used: a bad URL, or a command that failed. */
export class QueueError extends Data.TaggedError("QueueError")<{ readonly url: string; readonly reason: string }> {
  override get message(): string {
    return `queue ${this.url}: ${this.reason}`;
  }
}

/** Jobs that failed for good (after their attempts), with each node's own error. */
export class JobsFailed extends Data.TaggedError("JobsFailed")<{
  readonly total: number;
  readonly failures: ReadonlyArray<
    { readonly node: string; readonly id: string; readonly attempts: number; readonly reason: string }
  >;
}> {
  override get message(): string {
    const each = this.failures.map((f) =>
      `${f.node} failed after ${f.attempts} attempt${f.attempts === 1 ? "" : "s"}: ${f.reason}`
    );
    return `${this.failures.length} of ${this.total} queued jobs failed; ${each.join("; ")}`;
  }
}

/** A worker's verdict on a job it could not do: retried (while attempts remain) or not. */
export class JobError extends Data.TaggedError("JobError")<{ readonly message: string; readonly retry: boolean }> {}

/** Timings of the queue. */
export interface QueueSettings {
  /** workers: a job's lock lasts this long without renewal (renewed every half); a dead worker's job is free after it */
  readonly lockMs: number;
  /** workers: how often each looks for jobs whose lock expired */
  readonly stalledMs: number;
  /** workers: a job whose worker died more than this many times is failed */
  readonly maxStalled: number;
  /** coordinators: runs of a failing job in all */
  readonly attempts: number;
  /** coordinators: the wait before a failed job runs again */
  readonly backoffMs: number;
  /** coordinators: how often job states are read */
  readonly pollMs: number;
  /** both: how long Redis may take to answer at start */
  readonly connectMs: number;
}

export const DEFAULT_SETTINGS: QueueSettings = {
  lockMs: 60_000,
  stalledMs: 30_000,
  maxStalled: 2,
  attempts: 3,
  backoffMs: 5_000,
  pollMs: 1_000,
  connectMs: 10_000,
};

/**
 * The settings, with `IVAAN_QUEUE_ATTEMPTS`, `IVAAN_QUEUE_LOCK_MS`, `IVAAN_QUEUE_STALLED_MS`,
 * `IVAAN_QUEUE_BACKOFF_MS`, `IVAAN_QUEUE_POLL_MS` and `IVAAN_QUEUE_CONNECT_MS` overriding the defaults (the fault tests shorten
 * the timings to seconds).
 */
export const settingsFromEnv = (overrides: Partial<QueueSettings> = {}): QueueSettings => {
  const num = (name: string, fallback: number) => {
    const v = Number(Deno.env.get(name) ?? "");
    return Number.isFinite(v) && v > 0 ? v : fallback;
  };
  return {
    ...DEFAULT_SETTINGS,
    attempts: Math.round(num("IVAAN_QUEUE_ATTEMPTS", DEFAULT_SETTINGS.attempts)),
    lockMs: num("IVAAN_QUEUE_LOCK_MS", DEFAULT_SETTINGS.lockMs),
    stalledMs: num("IVAAN_QUEUE_STALLED_MS", DEFAULT_SETTINGS.stalledMs),
    backoffMs: num("IVAAN_QUEUE_BACKOFF_MS", DEFAULT_SETTINGS.backoffMs),
    pollMs: num("IVAAN_QUEUE_POLL_MS", DEFAULT_SETTINGS.pollMs),
    connectMs: num("IVAAN_QUEUE_CONNECT_MS", DEFAULT_SETTINGS.connectMs),
    ...overrides,
  };
};

/** The BullMQ queue every coordinator and worker of a Redis uses. */
export const QUEUE_NAME = "ivaan-nodes";

/**
 * A Redis client, closed with the scope: it must answer within `connectMs` at first (a wrong URL is a
 * QueueError, not a hang); later outages are one line each, and commands wait for the reconnect.
 */
const connect = (address: RedisAddress, connectMs: number, say: (line: string) => void) =>
  Effect.acquireRelease(
    Effect.callback<Redis, QueueError>((resume) => {
      // maxRetriesPerRequest null: a command waits for a reconnect instead of failing (Redis restarted)
      const redis = new Redis({ host: address.host, port: address.port, db: address.db, maxRetriesPerRequest: null });
      let last = "no answer";
      const noteError = (e: Error) => void (last = e.message);
      redis.on("error", noteError);
      const timer = setTimeout(() => {
        redis.disconnect();
        resume(Effect.fail(
          new QueueError({
            url: address.url,
            reason: `Redis at ${address.host}:${address.port} did not answer within ${connectMs / 1000} s (${last})`,
          }),
        ));
      }, connectMs);
      redis.once("ready", () => {
        clearTimeout(timer);
        redis.off("error", noteError);
        let down = false;
        redis.on("error", (e: Error) => {
          if (down) return;
          down = true;
          say(`queue: Redis at ${address.host}:${address.port} unreachable (${e.message}); waiting for it`);
        });
        redis.on("ready", () => {
          if (!down) return;
          down = false;
          say(`queue: Redis at ${address.host}:${address.port} is back`);
        });
        resume(Effect.succeed(redis));
      });
      return Effect.sync(() => {
        clearTimeout(timer);
        redis.disconnect();
      });
    }),
    (redis) => Effect.promise(() => redis.quit().then(() => undefined, () => redis.disconnect())),
  );

const attempt = <A>(address: RedisAddress, what: string, f: () => Promise<A>) =>
  Effect.tryPromise({
    try: f,
    catch: (e) =>
      new QueueError({ url: address.url, reason: `${what}: ${e instanceof Error ? e.message : String(e)}` }),
  });

/** The queue of a coordinator, closed with its scope. */
const openQueue = (address: RedisAddress, connectMs: number, say: (line: string) => void) =>
  Effect.flatMap(connect(address, connectMs, say), (redis) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const queue = new Queue(QUEUE_NAME, { connection: redis });
        queue.on("error", (e) => say(`queue: ${e.message}`));
        return queue;
      }),
      (queue) => Effect.promise(() => queue.close().catch(() => undefined)),
    ));

/**
 * Enqueues `jobs` (an id already in the queue is not added again: a failed one is retried, a
 * completed one whose result `isCached` denies is run again) and waits until each is completed or
 * failed for good; `say` gets a progress line whenever the counts change. Jobs that Redis forgets
 * meanwhile are looked up with `isCached` and enqueued again when missing. Fails with JobsFailed
 * (every failed node and its own error) after all jobs have settled.
 */
export const runJobs = <R>(
  url: string,
  jobs: ReadonlyArray<Submission>,
  options: {
    readonly settings: QueueSettings;
    readonly isCached: (id: string) => Effect.Effect<boolean, never, R>;
    readonly say: (line: string) => Effect.Effect<void>;
  },
): Effect.Effect<void, QueueError | JobsFailed, R> =>
  Effect.scoped(Effect.gen(function* () {
    const address = parseRedisUrl(url);
    if ("error" in address) return yield* new QueueError({ url, reason: address.error });
    if (jobs.length === 0) return;
    const lines: string[] = [];
    const queue = yield* openQueue(address, options.settings.connectMs, (line) => void lines.push(line));
    const flush = Effect.suspend(() => Effect.forEach(lines.splice(0), (line) => options.say(line), { discard: true }));
    const { settings } = options;
    const add = (s: Submission) =>
      attempt(address, `adding job ${s.job.node}`, () =>
        queue.add(s.job.node, s.job, {
          jobId: s.id,
          attempts: settings.attempts,
          backoff: { type: "fixed", delay: settings.backoffMs },
          removeOnComplete: { age: 7 * 24 * 3600 },
          removeOnFail: { age: 7 * 24 * 3600 },
        }));
    const state = (id: string) => attempt(address, `reading job ${id}`, () => queue.getJobState(id));

    // enqueue; a job this id already had is reused, unless it cannot give this run its result
    for (const s of jobs) {
      const before = yield* state(s.id);
      if (before === "failed") {
        yield* attempt(address, `retrying job ${s.job.node}`, async () => {
          await (await queue.getJob(s.id))?.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
        });
      } else if (before === "completed" && !(yield* options.isCached(s.id))) {
        yield* attempt(address, `removing job ${s.job.node}`, () => queue.remove(s.id));
        yield* add(s);
      } else if (before === "unknown") yield* add(s);
    }

    const pending = new Map(jobs.map((s) => [s.id, s]));
    const failures: Array<JobsFailed["failures"][number]> = [];
    let done = 0, lastLine = "";
    while (pending.size > 0) {
      let active = 0, waiting = 0;
      for (const [id, s] of [...pending]) {
        const now = yield* state(id);
        if (now === "completed") {
          pending.delete(id);
          done++;
        } else if (now === "failed") {
          const job = yield* attempt(address, `reading job ${id}`, () => queue.getJob(id));
          pending.delete(id);
          failures.push({
            node: s.job.node,
            id,
            attempts: job?.attemptsMade ?? settings.attempts,
            reason: job?.failedReason ?? "no reason recorded",
          });
        } else if (now === "unknown") {
          // Redis forgot it (restarted without persistence, or the job was removed)
          if (yield* options.isCached(id)) {
            pending.delete(id);
            done++;
          } else {
            lines.push(`queue: job ${s.job.node} is gone from Redis (restarted?); enqueued again`);
            yield* add(s);
            waiting++;
          }
        } else if (now === "active") active++;
        else waiting++;
      }
      const line =
        `queue: ${done} of ${jobs.length} done, ${active} running, ${waiting} waiting, ${failures.length} failed`;
      if (line !== lastLine) lines.push(lastLine = line);
      yield* flush;
      if (pending.size > 0) yield* Effect.sleep(settings.pollMs);
    }
    if (failures.length > 0) return yield* new JobsFailed({ total: jobs.length, failures });
  }));

/**
 * Takes jobs one at a time and runs `handle` on each until interrupted. `handle` fails with a
 * JobError: retried while attempts remain, or failed at once when `retry` is false. Interrupting
 * stops taking jobs and abandons the current one (its lock expires and another worker takes it).
 */
export const serve = <R>(
  url: string,
  handle: (job: NodeJob, id: string, attemptsMade: number) => Effect.Effect<void, JobError, R>,
  options: { readonly settings: QueueSettings; readonly say: (line: string) => Effect.Effect<void> },
): Effect.Effect<never, QueueError, R> =>
  Effect.scoped(Effect.gen(function* () {
    const address = parseRedisUrl(url);
    if ("error" in address) return yield* new QueueError({ url, reason: address.error });
    const context = yield* Effect.context<R>();
    const run = Effect.runPromiseExitWith(context);
    const say = (line: string) => void Effect.runFork(options.say(line));
    const decode = Schema.decodeUnknownResult(NodeJob);
    const { settings } = options;
    const redis = yield* connect(address, settings.connectMs, say);
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const worker = new Worker(QUEUE_NAME, async (job) => {
          const data = decode(job.data);
          if (data._tag === "Failure") {
            throw new UnrecoverableError(`job ${job.id}: not a node job (${data.failure.message})`);
          }
          const exit = await run(handle(data.success, job.id ?? "", job.attemptsMade));
          if (Exit.isSuccess(exit)) return;
          const error = exit.cause.reasons.find(Cause.isFailReason)?.error;
          if (error === undefined) throw new Error(Cause.pretty(exit.cause));
          throw error.retry ? new Error(error.message) : new UnrecoverableError(error.message);
        }, {
          connection: redis,
          concurrency: 1,
          lockDuration: settings.lockMs,
          stalledInterval: settings.stalledMs,
          maxStalledCount: settings.maxStalled,
        });
        // a worker's own errors (a lock it could not renew, a job it could not move) are not outages
        worker.on("error", (e) => say(`queue: ${e.message}`));
        return worker;
      }),
      (worker) => Effect.promise(() => worker.close(true).catch(() => undefined)),
    );
    return yield* Effect.never;
  }));
