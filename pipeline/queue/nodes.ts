/**
 * Pipeline nodes as queue jobs (queue.ts): the coordinator's `distribute` and the worker's
 * `computeNode`. A job means "compute node N of the pipeline that task T builds from arguments A";
 * its id is N's cache key, which both sides compute with the runner's own key machinery.
 *
 * Mental model: `distribute(p, nodes)` first computes, here, the nodes that `nodes` read (cheap shared
 * work, such as an attribute chain), so that every node's key is known; enqueues the nodes that miss
 * the cache; and waits. The caller then runs its whole pipeline as it would without a queue: the
 * distributed nodes are remote-cache hits, so the outputs are those of a local run, made by the same code.
 * `computeNode` rebuilds nothing: it is given the worker's copy of the pipeline, checks that its own
 * key for the node is the job's id (same data, code, backend), and runs that node alone.
 * `distribute` is `nodeJobs` (the submissions) then `awaitJobs` (enqueue and wait): a task with jobs
 * that are not pipeline nodes (predict's whole slides, tasks/_predict_queue.ts) adds its own between
 * the two, each with an id under which the cache holds an entry once the job is done.
 *
 * Gotcha: both sides need the same remote cache; a worker whose key differs fails the job at once
 * rather than compute a result the coordinator would never find.
 */
import { Effect } from "effect";
import { NodeFailed } from "../errors.ts";
import type { Pipeline } from "../pipeline.ts";
import type { Progress } from "../progress.ts";
import * as Runner from "../run.ts";
import { holds, Store } from "../store/store.ts";
import { JobError, type JobsFailed, type QueueError, type QueueSettings, runJobs, type Submission } from "./queue.ts";

const isTagged = (e: unknown): e is { readonly _tag: string; readonly message: string } =>
  e instanceof Error && typeof (e as { _tag?: unknown })._tag === "string";

/** A run's error as one line; a stage's own error first, the node as context (as tasks print it). */
export const errorLine = (error: unknown): string =>
  error instanceof NodeFailed && isTagged(error.error)
    ? `${error.error.message} (in node '${error.node}')`
    : error instanceof Error
    ? error.message
    : String(error);

/**
 * The jobs that compute `nodes` of `pipeline` on workers: their inputs computed here first (so that every node's
 * key is known), then one job per node that misses the cache, its id the node's key (`task` and `argv` let a worker
 * build the same pipeline). Enqueues nothing: see `awaitJobs`.
 */
export const nodeJobs = <Nodes extends Record<string, unknown>, E, R>(
  pipeline: Pipeline<Nodes, E, R>,
  nodes: ReadonlyArray<string>,
  options: { readonly task: string; readonly argv: ReadonlyArray<string> },
): Effect.Effect<Array<Submission>, Runner.RunError<E>, R | Store | Progress> =>
  Effect.gen(function* () {
    const wanted = new Set(nodes);
    const inputs = [
      ...new Set(nodes.flatMap((n) => {
        const node = pipeline.nodes.get(n);
        return node?.kind === "stage" ? Object.values(node.inputs) : [];
      })),
    ].filter((n) => !wanted.has(n) && pipeline.nodes.get(n)?.kind === "stage");
    if (inputs.length > 0) yield* Runner.run(pipeline, inputs);
    const plan = yield* Runner.explain(pipeline, nodes);
    return plan.steps.filter((s) => wanted.has(s.node) && s.status !== "hit").map((s) => {
      if (s.key === undefined) return undefined;
      return { id: s.key, job: { task: options.task, argv: [...options.argv], node: s.node } };
    }).filter((j) => j !== undefined);
  });

/**
 * Enqueues `jobs` on the queue at `url` and waits for all of them (queue.ts `runJobs`); a job is done when the
 * store holds an entry under its id, which is how a job that Redis forgot is told apart from one to enqueue again.
 */
export const awaitJobs = (
  url: string,
  jobs: ReadonlyArray<Submission>,
  options: { readonly settings: QueueSettings; readonly say: (line: string) => Effect.Effect<void> },
): Effect.Effect<void, QueueError | JobsFailed, Store> =>
  Effect.flatMap(Store, (store) =>
    runJobs(url, jobs, {
      settings: options.settings,
      isCached: (id) => holds(store, id),
      say: options.say,
    }));

/**
 * Computes `nodes` of `pipeline` on the workers of the queue at `url` (`nodeJobs`, then `awaitJobs`), waiting for
 * all of them. `say` gets the progress lines.
 */
export const distribute = <Nodes extends Record<string, unknown>, E, R>(
  url: string,
  pipeline: Pipeline<Nodes, E, R>,
  nodes: ReadonlyArray<string>,
  options: {
    readonly task: string;
    readonly argv: ReadonlyArray<string>;
    readonly settings: QueueSettings;
    readonly say: (line: string) => Effect.Effect<void>;
  },
): Effect.Effect<void, Runner.RunError<E> | QueueError | JobsFailed, R | Store | Progress> =>
  Effect.gen(function* () {
    const jobs = yield* nodeJobs(pipeline, nodes, options);
    yield* options.say(
      `queue: ${jobs.length} of ${nodes.length} nodes to compute on workers (${nodes.length - jobs.length} cached)`,
    );
    yield* awaitJobs(url, jobs, options);
  });

/**
 * A job whose node `node` this worker keys `own` rather than the job's `id`: it fails at once (no retry), since
 * a result under another key is one the coordinator would never find.
 */
export const keyMismatch = (node: string, own: string, id: string): JobError =>
  new JobError({
    message: `node '${node}': this worker's key ${own.slice(0, 12)} differs from the job's ${
      id.slice(0, 12)
    } (other data, code or backend than the coordinator's)`,
    retry: false,
  });

/**
 * The worker's part: computes `node` of its own copy of the pipeline, whose key must be `id`. A node
 * already in the cache is done; a key that differs, or a node the pipeline lacks, fails the job at
 * once (no retry); a stage that fails is retried by the queue.
 */
export const computeNode = <Nodes extends Record<string, unknown>, E, R>(
  pipeline: Pipeline<Nodes, E, R>,
  node: string,
  id: string,
  say: (line: string) => Effect.Effect<void>,
): Effect.Effect<void, JobError, R | Store | Progress> =>
  Effect.gen(function* () {
    const fail = (retry: boolean) => (e: unknown) => new JobError({ message: errorLine(e), retry });
    if (!pipeline.nodes.has(node)) {
      return yield* new JobError({ message: `the pipeline has no node '${node}'`, retry: false });
    }
    const plan = yield* Runner.explain(pipeline, [node]).pipe(Effect.mapError(fail(true)));
    const step = plan.steps.find((s) => s.node === node);
    if (step?.key !== undefined && step.key !== id) return yield* keyMismatch(node, step.key, id);
    if (step?.status === "hit") return yield* say(`worker: ${node} is cached already`);
    yield* say(`worker: computing ${node} (${id.slice(0, 12)})`);
    const started = performance.now();
    const { report } = yield* Runner.run(pipeline, [node], { concurrency: 1 }).pipe(Effect.mapError(fail(true)));
    const done = report.find((s) => s.node === node);
    if (done?.key !== undefined && done.key !== id) return yield* keyMismatch(node, done.key, id);
    yield* say(`worker: ${node} ${done?.status ?? "done"} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });
