/**
 * Shared plumbing of the `tasks/` entry points: run a program as a CLI (exit codes, Ctrl-C,
 * one-line errors for user mistakes, a stack trace only for bugs), resolve the cache directory, and
 * the flags several tasks share.
 */
import { resolve } from "node:path";
import * as NodeRuntime from "@effect/platform-node/NodeRuntime";
import { Cause, Console, Data, Effect, Layer, Option } from "effect";
import { CliError, Flag } from "effect/cli";
import { NodeFailed, type StoreError } from "../pipeline/errors.ts";
import * as FileStore from "../pipeline/store/file.ts";
import * as MemoryStore from "../pipeline/store/memory.ts";
import { parseRedisUrl } from "../pipeline/queue/address.ts";
import * as RemoteStore from "../pipeline/store/remote.ts";
import type { Store } from "../pipeline/store/store.ts";
import { setPlanningThreads } from "../stages/model/plan_pool.ts";
import { blasNotice } from "../stages/backend/blas_notice.ts";
import type { BackendName } from "../stages/backend/tf.ts";
import { defaultLossWeights } from "../stages/model/recipe.ts";
import type { ModelPreset } from "../stages/model/model.ts";

/** A mistake in how a task was called (bad flag value, unknown key): printed as one line. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

const isTagged = (e: unknown): e is { readonly _tag: string; readonly message: string } =>
  e instanceof Error && typeof (e as { _tag?: unknown })._tag === "string";

/** Prints what ended the program: nothing for interrupts and CLI usage errors (already printed). */
const report = (cause: Cause.Cause<unknown>): Effect.Effect<void> =>
  Effect.sync(() => {
    if (Cause.hasInterruptsOnly(cause)) return;
    const failure = cause.reasons.find(Cause.isFailReason);
    if (failure !== undefined) {
      const error = failure.error;
      if (CliError.isCliError(error)) return; // effect/cli has already printed the help and the problem
      // a stage's own error reads better than the runner's wrapper; the node name stays as context
      const text = error instanceof NodeFailed && isTagged(error.error)
        ? `${error.error.message} (in node '${error.node}')`
        : error instanceof Error
        ? error.message
        : String(error);
      console.error(`error: ${text}`);
      return;
    }
    console.error(`internal error (please report it):\n${Cause.pretty(cause)}`);
  });

/**
 * Runs a task program: exit 0 on success, 1 on failure (with one clear line), 130 on Ctrl-C. The places its
 * arguments name for writing are checked first (`requireWritable`), so that a run never fails at its end on a
 * folder it may not write.
 */
export const runTask = <E>(program: Effect.Effect<void, E>): void =>
  NodeRuntime.runMain(Effect.andThen(requireWritable(Deno.args), program).pipe(Effect.tapCause(report)), {
    disableErrorReporting: true,
  });

/** `--threads` of the tasks that train: the native BLAS's threads and the loss planning's. */
export const threadsFlag = Flag.Int("threads").pipe(
  Flag.withDescription(
    "Threads of the native BLAS on wasm, and of the loss's planning (matching and point sampling; at most 2: " +
      "this thread and one worker). Default: one per core. tfjs-wasm's own kernels run on one thread under Deno",
  ),
  Flag.optional,
);

/**
 * Runs `effect` with the loss's planning on `threads` threads (default: one per core; at most 2),
 * and ends the planning worker afterwards, whatever the outcome (a live worker keeps Deno running).
 */
export const withPlanningThreads = (threads: number | undefined) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => setPlanningThreads(threads ?? navigator.hardwareConcurrency)),
    () => effect,
    () => Effect.sync(() => setPlanningThreads(1)),
  );

/**
 * Prints, on stderr, the one-line note that `backend` runs `work` (e.g. "training") without the native BLAS
 * (why, the cost, the command that installs it); nothing when BLAS is in use or was turned off (IVAAN_BLAS=off).
 */
export const noteMissingBlas = (backend: BackendName, work: string): Effect.Effect<void> =>
  Effect.suspend(() => {
    const line = blasNotice(backend, work);
    return line === undefined ? Effect.void : Console.error(line);
  });

/** `--cache DIR`, resolved by `cacheDirectory`. */
export const cacheFlag = Flag.String("cache").pipe(
  Flag.withDescription("Cache directory (default: $IVAAN_CACHE, else .ivaan-cache)"),
  Flag.optional,
);

/** `--remote-cache URL`, resolved by `storeLayer`. */
export const remoteCacheFlag = Flag.String("remote-cache").pipe(
  Flag.withDescription(
    "A shared HTTP cache server behind the local cache, e.g. http://10.0.0.5:8080/ivaan (default: $IVAAN_REMOTE_CACHE); " +
      "needs Deno's --allow-net=HOST:PORT, which deno task does not grant: see the README's Remote cache",
  ),
  Flag.optional,
);

/** `--no-cache`: compute without touching the store. */
export const noCacheFlag = Flag.Boolean("no-cache").pipe(
  Flag.withDescription("Compute without reading or writing the cache"),
  Flag.withDefault(false),
);

/** `--tiles N` for synthetic data sources. */
export const tilesFlag = Flag.Int("tiles").pipe(
  Flag.withDescription("Synthetic sources: number of tiles (default 256)"),
  Flag.withDefault(256),
);

/** `--merge` for CoNSeP sources: its 7 classes merged into the standard 4. */
export const mergeFlag = Flag.Boolean("merge").pipe(
  Flag.withDescription(
    "CoNSeP: merge the 7 classes into the standard 4 (other, inflammatory, epithelial, spindle-shaped)",
  ),
  Flag.withDefault(false),
);

/** `--dense-weight` (train, ablate): the dense losses' weight beside the queries'; default: the recipe's. */
export const denseWeightFlag = Flag.Finite("dense-weight").pipe(
  Flag.withDescription(
    `Weight of the dense losses (foreground, distance maps) beside the queries' losses (default ${
      defaultLossWeights("conv").dense
    } for the conv presets, 1 otherwise)`,
  ),
  Flag.optional,
);

/** `--center-weight` (train, ablate): the centre loss's weight beside the queries'; default: the recipe's. */
export const centerWeightFlag = Flag.Finite("center-weight").pipe(
  Flag.withDescription(
    `Weight of the centre heat map's focal loss beside the queries' losses (default ${
      defaultLossWeights("conv").center
    } for the conv presets, 1 otherwise)`,
  ),
  Flag.optional,
);

/**
 * The dense and centre loss weights of a run: the flags' where given, else the recipe's; a negative one is an error
 * message.
 */
export const lossWeightsOf = (
  preset: ModelPreset,
  dense: Option.Option<number>,
  center: Option.Option<number>,
): { readonly dense: number; readonly center: number } | { readonly error: string } => {
  const recipe = defaultLossWeights(preset);
  const d = Option.getOrElse(dense, () => recipe.dense), c = Option.getOrElse(center, () => recipe.center);
  return d < 0 || c < 0
    ? { error: `--dense-weight and --center-weight must be ≥ 0, found ${d} and ${c}` }
    : { dense: d, center: c };
};

/** `--organ-prompts` for the rows with text (train, ablate). */
export const organPromptsFlag = Flag.Boolean("organ-prompts").pipe(
  Flag.withDescription(
    "Rows with text: L_fix's class prompts name the image's organ, as the paper's `a {class} nucleus in {organ}` (default: organ-free `a {class} nucleus`)",
  ),
  Flag.withDefault(false),
);

/** `--text-encoder DIR` for the rows with text (train, ablate); checked by `textEncoderFolder`. */
export const textEncoderFlag = Flag.String("text-encoder").pipe(
  Flag.withDescription(
    "Rows with text: a frozen CLIP text encoder folder (config.json, vocab.json, merges.txt, one .safetensors; e.g. PLIP) instead of the jointly trained tiny tower; its prompt features are a cached stage",
  ),
  Flag.optional,
);

/** The folder of `--text-encoder`, if given; one that is not a folder is a UsageError. */
export const textEncoderFolder = (path: string) =>
  Effect.promise(() => Deno.stat(path).then((s) => s.isDirectory, () => false)).pipe(
    Effect.flatMap((isDir) =>
      isDir ? Effect.succeed(path) : Effect.fail(
        new UsageError({
          message: `--text-encoder: ${path} is not a folder (config.json, vocab.json, merges.txt, model .safetensors)`,
        }),
      )
    ),
  );

/** What `deno task train` records next to its checkpoint (`run.json`): how to find its data again. */
export interface RunRecord {
  readonly data?: string;
  readonly tiles?: number;
  readonly merge?: boolean;
  readonly binning?: "entropy" | "quantile";
}

/** The `run.json` of a run folder; undefined when there is none or it is not JSON. */
export const readRunRecord = (dir: string): Effect.Effect<RunRecord | undefined> =>
  Effect.promise(async () => {
    try {
      return JSON.parse(await Deno.readTextFile(`${dir}/run.json`)) as RunRecord;
    } catch {
      return undefined;
    }
  });

/** The cache directory: `--cache DIR`, else `$IVAAN_CACHE`, else `.ivaan-cache`. */
export const cacheDirectory = (flag: Option.Option<string>): string =>
  Option.getOrElse(flag, () => Deno.env.get("IVAAN_CACHE") || ".ivaan-cache");

/**
 * Where the deno tasks may write (deno.json): this folder (the project's; `deno task` runs there) and the system's
 * temporary folder. Reads are not scoped: inputs come from anywhere, and with no network a read cannot leave the
 * machine; a write can overwrite a user's files, so a place outside these needs its own grant.
 */
export const TASK_WRITE_SCOPE = [".", "/tmp"] as const;

/** The permissions of the `deno run` tasks in deno.json, for the commands that add a grant. */
const TASK_PERMISSIONS = ["--allow-read", `--allow-write=${TASK_WRITE_SCOPE.join(",")}`, "--allow-env", "--allow-ffi"];

/** An argument as a POSIX shell reads it back. */
const shellQuote = (arg: string): string =>
  /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;

/** The command line of this task again, with write access to `write` and network access to `net` added. */
const commandWith = (grants: { readonly write?: ReadonlyArray<string>; readonly net?: string }): string => {
  const main = new URL(Deno.mainModule);
  const cwd = Deno.cwd();
  const path = main.protocol !== "file:" ? main.href : decodeURIComponent(main.pathname);
  const script = path.startsWith(`${cwd}/`) ? path.slice(cwd.length + 1) : path;
  const permissions = TASK_PERMISSIONS.map((flag) =>
    flag.startsWith("--allow-write=") && grants.write !== undefined
      ? `--allow-write=${[...TASK_WRITE_SCOPE, ...grants.write].join(",")}`
      : flag
  );
  const net = grants.net === undefined ? [] : [`--allow-net=${grants.net}`];
  return ["deno", "run", ...permissions, ...net, script, ...Deno.args].map(shellQuote).join(" ");
};

/** The flags that name a place a task writes (an output file or folder, the cache), in every task. */
const WRITE_FLAGS = ["--out", "--json", "--md", "--cache"] as const;

/**
 * The places `args` name for writing — the values of WRITE_FLAGS (`--flag V` or `--flag=V`), and `$IVAAN_CACHE`
 * when no `--cache` is given — with the flag (or variable) that names each; none with `--help`, and no cache
 * with `--no-cache`.
 */
export const writtenPlaces = (
  args: ReadonlyArray<string>,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Array<{ readonly named: string; readonly path: string }> => {
  if (args.includes("--help") || args.includes("-h")) return [];
  const noCache = args.includes("--no-cache");
  const places: Array<{ named: string; path: string }> = [];
  args.forEach((arg, i) => {
    for (const flag of WRITE_FLAGS) {
      const value = arg === flag ? args[i + 1] : arg.startsWith(`${flag}=`) ? arg.slice(flag.length + 1) : undefined;
      if (value === undefined || value === "" || value.startsWith("--")) continue;
      if (flag === "--cache" && noCache) continue;
      places.push({ named: flag, path: value });
    }
  });
  const envCache = env("IVAAN_CACHE");
  if (!noCache && !places.some((p) => p.named === "--cache") && envCache !== undefined && envCache !== "") {
    places.push({ named: "IVAAN_CACHE", path: envCache });
  }
  return places;
};

/** The places this task's arguments name for writing outside TASK_WRITE_SCOPE, as a grant for `commandWith`. */
const writeGrants = (): { write?: ReadonlyArray<string> } => {
  const scope = TASK_WRITE_SCOPE.map((p) => resolve(p));
  const outside = writtenPlaces(Deno.args).map((p) => p.path).filter((path) => {
    const full = resolve(path);
    return !scope.some((root) => full === root || full.startsWith(`${root}/`));
  });
  return outside.length === 0 ? {} : { write: [...new Set(outside)] };
};

/**
 * Succeeds when this process may write every place `args` names (`writtenPlaces`); otherwise one UsageError
 * naming them, with the command that also grants exactly those places (Deno cannot grant a permission at
 * run time, and the deno tasks write only inside TASK_WRITE_SCOPE).
 */
export const requireWritable = (args: ReadonlyArray<string>): Effect.Effect<void, UsageError> =>
  Effect.suspend(() => {
    const denied = writtenPlaces(args).filter(({ path }) =>
      Deno.permissions.querySync({ name: "write", path }).state !== "granted"
    );
    if (denied.length === 0) return Effect.void;
    const named = denied.map((d) => `${d.named} ${d.path}`).join(", ");
    return Effect.fail(
      new UsageError({
        message: `${named}: no write access there (the deno tasks write only inside ${
          TASK_WRITE_SCOPE.map((p) => resolve(p)).join(" and ")
        }); run: ${commandWith({ write: [...new Set(denied.map((d) => d.path))] })}`,
      }),
    );
  });

/** The remote cache URL of a task: `--remote-cache URL`, else `$IVAAN_REMOTE_CACHE`; "" when none. */
export const remoteCacheUrl = (flag: Option.Option<string>): string =>
  Option.getOrElse(flag, () => Deno.env.get("IVAAN_REMOTE_CACHE") ?? "").trim();

/** `HOST:PORT` of an http(s) URL (the port made explicit), or a UsageError naming `flag`. */
const httpHost = (flag: string, url: string): Effect.Effect<{ parsed: URL; host: string }, UsageError> => {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    return Effect.fail(new UsageError({ message: `${flag}: ${url} is not an http:// or https:// URL` }));
  }
  return Effect.succeed({
    parsed,
    host: `${parsed.hostname}:${parsed.port || (parsed.protocol === "https:" ? "443" : "80")}`,
  });
};

/**
 * Succeeds when this process may reach every host of `hosts` (`HOST:PORT`); otherwise one UsageError,
 * `what: no network access to …`, with the command that grants exactly `hosts` (Deno cannot grant
 * network access at run time, and the deno tasks have none).
 */
const requireNet = (what: string, hosts: ReadonlyArray<string>): Effect.Effect<void, UsageError> =>
  Effect.gen(function* () {
    const denied: string[] = [];
    for (const host of hosts) {
      const { state } = yield* Effect.promise(() => Deno.permissions.query({ name: "net", host }));
      if (state !== "granted") denied.push(host);
    }
    if (denied.length === 0) return;
    return yield* new UsageError({
      message: `${what}: no network access to ${denied.join(", ")} (deno task grants none); run: ${
        commandWith({ net: [...new Set(hosts)].join(","), ...writeGrants() })
      }`,
    });
  });

/**
 * The store of a task: memory with `noCache`, else the FileStore of `cacheDirectory(cache)`, in front of
 * the remote cache of `--remote-cache URL` (else `$IVAAN_REMOTE_CACHE`) when one is given
 * (pipeline/store/remote.ts: a remote failure is one warning and the run goes on locally, or ends the run
 * with IVAAN_REMOTE_CACHE_STRICT=1 or `strict`). Deno cannot grant network access at run time and the deno
 * tasks have none, so a remote cache without `--allow-net` for its host is one UsageError with the command to run.
 */
export const storeLayer = (flags: {
  readonly cache: Option.Option<string>;
  readonly remoteCache: Option.Option<string>;
  readonly noCache?: boolean;
  readonly strict?: boolean;
}): Layer.Layer<Store, StoreError | UsageError> => {
  if (flags.noCache === true) return MemoryStore.layer; // --no-cache: no cache at all, local or remote
  const dir = cacheDirectory(flags.cache);
  const url = remoteCacheUrl(flags.remoteCache);
  if (url === "") return FileStore.layer(dir);
  return Layer.unwrap(Effect.gen(function* () {
    const { parsed, host } = yield* httpHost("--remote-cache", url);
    yield* requireNet(`--remote-cache ${url}`, [host]);
    const strict = flags.strict === true ||
      /^(1|true|on|yes)$/i.test(Deno.env.get("IVAAN_REMOTE_CACHE_STRICT") ?? "");
    return RemoteStore.layer(dir, parsed.href, { strict });
  }));
};

/** `--queue redis://HOST:PORT` of the tasks that hand their nodes to workers (ablate, predict); see `queueUrl`. */
export const queueFlag = Flag.String("queue").pipe(
  Flag.withDescription(
    "Hand the expensive nodes to `deno task worker` processes through this Redis, e.g. redis://10.0.0.5:6379, " +
      "wait for them, then assemble the results here; needs --remote-cache (the results travel through it) and " +
      "Deno's --allow-net for both hosts: see docs/distributed.md",
  ),
  Flag.optional,
);

/**
 * The Redis URL of `--queue`, checked: a `redis://` URL, a remote cache given (the workers' results
 * travel through it), and network access to both hosts (else one UsageError with the exact command).
 * Undefined without `--queue`.
 */
export const queueUrl = (flags: {
  readonly queue: Option.Option<string>;
  readonly remoteCache: Option.Option<string>;
}, flagName = "--queue"): Effect.Effect<string | undefined, UsageError> =>
  Effect.gen(function* () {
    if (Option.isNone(flags.queue)) return undefined;
    const url = flags.queue.value.trim();
    const address = parseRedisUrl(url);
    if ("error" in address) return yield* new UsageError({ message: `${flagName}: ${address.error}` });
    const cache = remoteCacheUrl(flags.remoteCache);
    if (cache === "") {
      return yield* new UsageError({
        message:
          `${flagName} needs --remote-cache URL (or IVAAN_REMOTE_CACHE): the workers' results travel through the shared cache`,
      });
    }
    const { host: cacheHost } = yield* httpHost("--remote-cache", cache);
    const redisHost = address.host.includes(":")
      ? `[${address.host}]:${address.port}`
      : `${address.host}:${address.port}`;
    yield* requireNet(`${flagName} ${url}`, [redisHost, cacheHost]);
    return url;
  });

/**
 * Writes text or bytes to `path` atomically (a temp file renamed into place, removed on failure),
 * so a crash never leaves half a file; a failure is one UsageError line naming the path.
 */
export const writeAtomic = (path: string, content: string | Uint8Array, what = "") =>
  Effect.tryPromise({
    try: async () => {
      const tmp = `${path}.${Deno.pid}.tmp`;
      try {
        if (typeof content === "string") await Deno.writeTextFile(tmp, content);
        else await Deno.writeFile(tmp, content);
        await Deno.rename(tmp, path);
      } catch (e) {
        await Deno.remove(tmp).catch(() => {});
        throw e;
      }
    },
    catch: (e) => new UsageError({ message: `${what}cannot write ${path}: ${e instanceof Error ? e.message : e}` }),
  });
