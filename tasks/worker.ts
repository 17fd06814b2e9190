/**
 * `deno task worker --queue redis://HOST:PORT --remote-cache URL`: takes node jobs from the queue
 * that `deno task ablate … --queue URL` and `deno task predict … --queue URL` fill, one at a time,
 * until Ctrl-C.
 *
 * A job names a task, its arguments and a node: the worker builds that task's pipeline from the
 * arguments with the task's own code (`buildAblation`, `buildPrediction`), checks that its key for the
 * node is the job's id, computes the node with its local cache in front of the shared remote cache
 * (strict: a result that cannot be uploaded fails the job, which is retried), and takes the next job.
 * A slide's job (`slide.NAME` of predict) stores the slide's tile batches (tasks/_predict_queue.ts).
 * Paths in the arguments (`--data consep:DIR`, `--text-encoder DIR`, predict's `--model` and
 * `--input`) must exist on this machine too.
 * See docs/distributed.md.
 */
import * as NodeServices from "@effect/platform-node/NodeServices";
import { Console, Effect, Layer, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { Progress } from "../mod.ts";
import { computeNode, errorLine } from "../pipeline/queue/nodes.ts";
import { JobError, type NodeJob, serve, settingsFromEnv } from "../pipeline/queue/queue.ts";
import type { Store } from "../pipeline/store/store.ts";
import { ablateFlags, buildAblation } from "./ablate.ts";
import { buildPrediction, predictFlags } from "./predict.ts";
import { computePrediction } from "./_predict_queue.ts";
import { cacheFlag, queueUrl, remoteCacheFlag, runTask, storeLayer, withPlanningThreads } from "./_main.ts";

const VERSION = "0.1.0";

/** A task whose nodes can be queued: how a worker computes node `node` of it from `argv`. */
type QueuedTask = (
  argv: ReadonlyArray<string>,
  node: string,
  id: string,
) => Effect.Effect<void, JobError, Store | Progress>;

/** Arguments a worker cannot parse fail the job at once: a retry would parse them the same way. */
const parseWith = <const N extends string, I, C, E, R>(
  command: Command.Command<N, I, C, E, R>,
  argv: ReadonlyArray<string>,
) =>
  Command.runWith(command, { version: VERSION, renderErrors: false })(argv).pipe(
    Effect.provide(NodeServices.layer),
    Effect.mapError((e) =>
      e instanceof JobError
        ? e
        : new JobError({ message: `cannot use the job's arguments: ${errorLine(e)}`, retry: false })
    ),
  );

const say = (line: string) => Console.error(line);

const TASKS: Readonly<Record<string, QueuedTask>> = {
  ablate: (argv, node, id) =>
    Effect.flatMap(Effect.context<Store | Progress>(), (context) =>
      parseWith(
        Command.make("ablate", ablateFlags, (f) =>
          withPlanningThreads(Option.getOrUndefined(f.threads))(
            buildAblation(f).pipe(
              Effect.mapError((e) => new JobError({ message: errorLine(e), retry: false })),
              Effect.flatMap((built) =>
                computeNode(built.pipeline, node, id, say).pipe(
                  Effect.provide(Layer.mergeAll(built.services, Layer.succeedContext(context))),
                  Effect.catchTag("BackendUnavailable", (e) =>
                    Effect.fail(new JobError({ message: e.message, retry: true }))),
                )
              ),
            ),
          )),
        argv,
      )),
  predict: (argv, node, id) =>
    Effect.flatMap(Effect.context<Store | Progress>(), (context) =>
      parseWith(
        Command.make("predict", predictFlags, (f) =>
          buildPrediction(f).pipe(
            Effect.mapError((e) => new JobError({ message: errorLine(e), retry: false })),
            Effect.flatMap((built) =>
              computePrediction(built, node, id, say).pipe(
                Effect.provide(Layer.mergeAll(built.services, Layer.succeedContext(context))),
                Effect.catchTag(
                  "BackendUnavailable",
                  (e) => Effect.fail(new JobError({ message: e.message, retry: true })),
                ),
              )
            ),
          )),
        argv,
      )),
};

/** One job: the task's pipeline from its arguments, then the node (or the test-only injected fault). */
const handle = (job: NodeJob, id: string): Effect.Effect<void, JobError, Store | Progress> => {
  const task = TASKS[job.task];
  if (task === undefined) {
    return Effect.fail(
      new JobError({
        message: `unknown task '${job.task}' (this worker runs ${Object.keys(TASKS).join(", ")})`,
        retry: false,
      }),
    );
  }
  // the fault tests: this node fails on every attempt, as a stage with a deterministic error would
  if (Deno.env.get("IVAAN_QUEUE_TEST_FAULT") === job.node) {
    return Effect.fail(
      new JobError({ message: `injected fault (IVAAN_QUEUE_TEST_FAULT) (in node '${job.node}')`, retry: true }),
    );
  }
  return task(job.argv, job.node, id);
};

const worker = Command.make("worker", {
  queue: Flag.String("queue").pipe(
    Flag.withDescription("The Redis of the queue, redis://HOST:PORT (as given to deno task ablate or predict --queue)"),
  ),
  cache: cacheFlag,
  remoteCache: remoteCacheFlag,
}, (f) =>
  Effect.gen(function* () {
    const url = yield* queueUrl({ queue: Option.some(f.queue), remoteCache: f.remoteCache });
    if (url === undefined) return;
    yield* say(`worker ${Deno.pid}: taking jobs from ${url} (Ctrl-C stops)`);
    yield* serve(url, handle, { settings: settingsFromEnv(), say }).pipe(
      Effect.provide(Layer.mergeAll(storeLayer({ ...f, strict: true }), Progress.auto)),
    );
  })).pipe(
    Command.withDescription(
      "Take node jobs (trainings of deno task ablate --queue, images and slides of deno task predict --queue) from a Redis queue and compute them into the shared remote cache. Example: deno task worker --queue redis://10.0.0.5:6379 --remote-cache http://10.0.0.5:8080",
    ),
  );

if (import.meta.main) {
  runTask(worker.pipe(Command.run({ version: VERSION }), Effect.provide(NodeServices.layer)));
}
