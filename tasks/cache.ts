/**
 * `deno task cache`: look at and tidy the stage cache.
 *
 *   deno task cache ls                       entries, most recently used first
 *   deno task cache show KEY                 one entry's manifest (a unique key prefix is enough)
 *   deno task cache verify [--quarantine]    re-hash every entry; exit 1 if any is corrupt
 *   deno task cache gc [--max-size 20GB] [--keep-last N]
 *   deno task cache clear                    remove every entry
 *
 * The cache directory is `--cache DIR`, else `$IVAAN_CACHE`, else `.ivaan-cache`.
 */
import * as NodeServices from "@effect/platform-node/NodeServices";
import { Console, Effect, Option } from "effect";
import { Argument, Command, Flag } from "effect/cli";
import { FileStore, Gc, type Manifest, Store } from "../mod.ts";
import { cacheDirectory, cacheFlag, runTask, UsageError } from "./_main.ts";

const human = (bytes: number): string => {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = bytes, u = 0;
  while (v >= 1000 && u < units.length - 1) [v, u] = [v / 1000, u + 1];
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
};

const root = Command.make("cache").pipe(
  Command.withSharedFlags({
    cache: cacheFlag,
  }),
  Command.withDescription("Inspect and tidy the content-addressed stage cache."),
);

/** Runs `f` against the store of the chosen cache directory. */
const withStore = <A, E>(f: (store: Store["Service"]) => Effect.Effect<A, E, Store>) =>
  Effect.gen(function* () {
    const { cache } = yield* root;
    return yield* Effect.flatMap(Store, f).pipe(Effect.provide(FileStore.layer(cacheDirectory(cache))));
  });

const ls = Command.make("ls", {
  json: Flag.Boolean("json").pipe(Flag.withDescription("Print JSON lines instead of a table"), Flag.withDefault(false)),
}, ({ json }) =>
  withStore((store) =>
    Effect.gen(function* () {
      const entries = [...(yield* store.list)].sort((a, b) => b.usedAt - a.usedAt);
      if (json) {
        for (const e of entries) {
          yield* Console.log(
            JSON.stringify({
              key: e.key,
              usedAt: new Date(e.usedAt).toISOString(),
              manifest: Option.getOrNull(e.manifest),
              problem: e.problem,
            }),
          );
        }
        return;
      }
      let total = 0;
      yield* Console.log(
        `${"key".padEnd(12)}  ${"node".padEnd(20)}  ${"stage".padEnd(24)}  ${"size".padStart(9)}  last used`,
      );
      for (const e of entries) {
        const m = Option.getOrUndefined(e.manifest);
        total += m?.bytes ?? 0;
        yield* Console.log(
          m === undefined
            ? `${e.key.slice(0, 12)}  CORRUPT: ${e.problem}`
            : `${e.key.slice(0, 12)}  ${m.node.padEnd(20)}  ${`${m.stage} v${m.version}`.padEnd(24)}  ${
              human(m.bytes).padStart(9)
            }  ${new Date(e.usedAt).toISOString()}`,
        );
      }
      yield* Console.log(`${entries.length} entries, ${human(total)} in ${store.location}`);
    })
  )).pipe(Command.withDescription("List cache entries, most recently used first. Example: deno task cache ls"));

/** The one key starting with `prefix`, or a clear error. */
const resolveKey = (store: Store["Service"], prefix: string) =>
  Effect.gen(function* () {
    const keys = (yield* store.list).map((e) => e.key).filter((k) => k.startsWith(prefix.toLowerCase()));
    if (keys.length === 1) return keys[0] as string;
    return yield* Effect.fail(
      new UsageError({
        message: keys.length === 0
          ? `no cache entry has a key starting with '${prefix}' (see: deno task cache ls)`
          : `'${prefix}' matches ${keys.length} entries; give more characters`,
      }),
    );
  });

const show = Command.make("show", {
  key: Argument.String("key").pipe(Argument.withDescription("A key or a unique prefix of one")),
}, ({ key }) =>
  withStore((store) =>
    Effect.gen(function* () {
      const full = yield* resolveKey(store, key);
      const manifest = yield* store.lookup(full);
      yield* Console.log(JSON.stringify(Option.getOrNull(manifest), null, 2));
      yield* Console.log(`entry: ${store.location}/objects/${full}`);
    })
  )).pipe(Command.withDescription("Print an entry's manifest. Example: deno task cache show 3fa2c1"));

const verify = Command.make("verify", {
  quarantine: Flag.Boolean("quarantine").pipe(
    Flag.withDescription("Move corrupt entries to quarantine/ (they are recomputed on the next run)"),
    Flag.withDefault(false),
  ),
}, ({ quarantine }) =>
  withStore((store) =>
    Effect.gen(function* () {
      const entries = yield* store.list;
      const bad: Array<{ key: string; reason: string }> = [];
      for (const e of entries) {
        const problem = Option.isNone(e.manifest)
          ? e.problem ?? "manifest missing"
          : yield* store.read(e.manifest.value as Manifest).pipe(
            Effect.as(undefined),
            Effect.catchTag("CacheCorrupt", (c) => Effect.succeed(c.reason)),
          );
        if (problem !== undefined) {
          bad.push({ key: e.key, reason: problem });
          yield* Console.log(`CORRUPT ${e.key}: ${problem}`);
          if (quarantine) yield* store.quarantine(e.key, problem);
        }
      }
      yield* Console.log(
        `${entries.length - bad.length} of ${entries.length} entries verified${
          bad.length > 0 ? `, ${bad.length} corrupt${quarantine ? " (quarantined)" : ""}` : ""
        }`,
      );
      if (bad.length > 0) {
        return yield* Effect.fail(
          new UsageError({
            message: `${bad.length} corrupt cache entr${
              bad.length === 1 ? "y" : "ies"
            }; rerun with --quarantine or just rerun the pipeline (corrupt entries are recomputed)`,
          }),
        );
      }
    })
  )).pipe(
    Command.withDescription(
      "Re-hash every entry against its manifest; exits 1 if any is corrupt. Example: deno task cache verify",
    ),
  );

const gc = Command.make("gc", {
  maxSize: Flag.String("max-size").pipe(
    Flag.withDescription("Evict least recently used entries until the cache is at most this size, e.g. 20GB, 512MiB"),
    Flag.optional,
  ),
  keepLast: Flag.Int("keep-last").pipe(
    Flag.withDescription("Keep only the N most recently used entries of each node"),
    Flag.optional,
  ),
}, ({ maxSize, keepLast }) =>
  withStore(() =>
    Effect.gen(function* () {
      const size = Option.map(maxSize, (s) => [s, Gc.parseSize(s)] as const);
      if (Option.isSome(size) && size.value[1] === undefined) {
        return yield* Effect.fail(
          new UsageError({ message: `--max-size: expected a size such as 20GB or 512MiB, found '${size.value[0]}'` }),
        );
      }
      if (Option.isSome(keepLast) && keepLast.value < 0) {
        return yield* Effect.fail(new UsageError({ message: `--keep-last: expected N ≥ 0, found ${keepLast.value}` }));
      }
      if (Option.isNone(size) && Option.isNone(keepLast)) {
        return yield* Effect.fail(new UsageError({ message: "gc needs --max-size SIZE and/or --keep-last N" }));
      }
      const report = yield* Gc.gc({
        ...(Option.isSome(size) ? { maxSize: size.value[1] as number } : {}),
        ...(Option.isSome(keepLast) ? { keepLast: keepLast.value } : {}),
      });
      for (const r of report.removed) {
        yield* Console.log(`removed ${r.key.slice(0, 12)} ${r.node} (${human(r.bytes)}): ${r.why}`);
      }
      yield* Console.log(
        `${report.removed.length} removed, ${report.keptEntries} kept; ${human(report.bytesBefore)} → ${
          human(report.bytesAfter)
        }`,
      );
    })
  )).pipe(Command.withDescription("Remove old entries. Example: deno task cache gc --keep-last 3 --max-size 20GB"));

const clear = Command.make("clear", {}, () =>
  withStore((store) =>
    Effect.gen(function* () {
      const n = (yield* store.list).length;
      yield* store.clear;
      yield* Console.log(`removed ${n} entries from ${store.location}`);
    })
  )).pipe(Command.withDescription("Remove every entry. Example: deno task cache clear"));

if (import.meta.main) {
  runTask(root.pipe(
    Command.withSubcommands([ls, show, verify, gc, clear]),
    Command.run({ version: "0.1.0" }),
    Effect.provide(NodeServices.layer),
  ));
}
