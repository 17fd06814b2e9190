/**
 * Shared plumbing of the `tasks/` entry points: run a program as a CLI (exit codes, Ctrl-C,
 * one-line errors for user mistakes, a stack trace only for bugs), resolve the cache directory, and
 * the flags several tasks share.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime";
import { Cause, Data, Effect, Option } from "effect";
import { CliError, Flag } from "effect/cli";
import { NodeFailed } from "../pipeline/errors.ts";

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

/** Runs a task program: exit 0 on success, 1 on failure (with one clear line), 130 on Ctrl-C. */
export const runTask = <E>(program: Effect.Effect<void, E>): void =>
  NodeRuntime.runMain(program.pipe(Effect.tapCause(report)), { disableErrorReporting: true });

/** `--cache DIR`, resolved by `cacheDirectory`. */
export const cacheFlag = Flag.String("cache").pipe(
  Flag.withDescription("Cache directory (default: $IVAAN_CACHE, else .ivaan-cache)"),
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

/** The cache directory: `--cache DIR`, else `$IVAAN_CACHE`, else `.ivaan-cache`. */
export const cacheDirectory = (flag: Option.Option<string>): string =>
  Option.getOrElse(flag, () => Deno.env.get("IVAAN_CACHE") || ".ivaan-cache");

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
