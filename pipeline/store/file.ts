/**
 * The on-disk Store: one directory per entry, crash-safe and shared safely between processes.
 *
 * Layout under the cache directory:
 *   objects/<key>/manifest.json + payload files   complete entries only
 *   tmp/<key>.<pid>.<nonce>/                       entries being written (never read)
 *   locks/<key>.lock                               flock(2) files of keys being computed
 *   quarantine/<key>.<time>/                       corrupt entries moved aside, with reason.txt
 *   index/<sha256(node, stage)>.json               the last key written for a node (explain's "why")
 *   sources/<sha256(path)>.json                    size+mtime → content hash of source files
 *
 * Crash safety: an entry is written into tmp/, every file and the directory are fsynced, and only
 * then is the directory renamed into objects/ (atomic on POSIX). A crash at any point leaves
 * either no entry or a complete one; stale tmp/ directories of dead processes are removed when a
 * store opens. Concurrency: computing a key holds an exclusive flock on its lock file. The kernel
 * drops a dead process's flock, so stale locks break themselves; waiting is a blocking lock, never
 * an "unable to acquire lock" failure. The holder unlinks the lock file before unlocking, and a
 * waiter that wakes on an unlinked file retries, so two processes never hold "the" lock at once.
 */
import { Effect, Layer, Option, Schema } from "effect";
import type { Payload } from "../codec/codec.ts";
import { CacheCorrupt, StoreError } from "../errors.ts";
import { type Digest, sha256Text } from "../hash.ts";
import { type Fingerprint, Manifest, payloadProblem, Store, type StoreShape } from "./store.ts";

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const isNotFound = (e: unknown): boolean => e instanceof Deno.errors.NotFound;

/**
 * Wraps a Deno file-system call; failures become StoreError naming the path. The hot read path
 * (manifests, stats, touch) uses the synchronous calls: for small files they cost a few µs, while
 * each async call waits for a thread-pool round trip (it made a cached 1,000-node run 2× slower).
 */
const io = <A>(path: string, f: () => A | Promise<A>): Effect.Effect<A, StoreError> =>
  Effect.tryPromise({ try: async () => await f(), catch: (e) => new StoreError({ path, reason: describe(e) }) });

/** Like `io`, but a missing path yields None instead of an error. */
const ioOptional = <A>(path: string, f: () => A | Promise<A>): Effect.Effect<Option.Option<A>, StoreError> =>
  Effect.tryPromise({
    try: async () => {
      try {
        return Option.some(await f());
      } catch (e) {
        if (isNotFound(e)) return Option.none<A>();
        throw e;
      }
    },
    catch: (e) => new StoreError({ path, reason: describe(e) }),
  });

/** Writes a new file completely and fsyncs it. */
const writeSynced = async (path: string, bytes: Uint8Array): Promise<void> => {
  using file = await Deno.open(path, { write: true, createNew: true });
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
  await file.sync();
};

/** fsyncs a directory so that renames and creations inside it are durable. */
const syncDir = async (path: string): Promise<void> => {
  using dir = await Deno.open(path, { read: true });
  await dir.sync();
};

/** Writes a small file atomically (temp file + fsync + rename). */
const writeAtomic = async (path: string, text: string): Promise<void> => {
  const tmp = `${path}.${Deno.pid}.${crypto.randomUUID()}.tmp`;
  try {
    await writeSynced(tmp, new TextEncoder().encode(text));
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
};

/** The size of a file, or -1 when it is missing. */
const fileSize = (path: string): number => {
  try {
    return Deno.statSync(path).size;
  } catch (e) {
    if (isNotFound(e)) return -1;
    throw e;
  }
};

const processAlive = (pid: number): boolean => {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
};

const decodeManifest = Schema.decodeUnknownResult(Schema.fromJsonString(Manifest));

/** Opens (creating if needed) the store in `dir`; an unusable directory is one clear StoreError. */
export const makeFileStore = (dir: string): Effect.Effect<StoreShape, StoreError> =>
  Effect.gen(function* () {
    const objects = `${dir}/objects`, tmp = `${dir}/tmp`, locks = `${dir}/locks`;
    const quarantineDir = `${dir}/quarantine`, index = `${dir}/index`, sources = `${dir}/sources`;
    yield* Effect.tryPromise({
      try: async () => {
        for (const d of [objects, tmp, locks, quarantineDir, index, sources]) await Deno.mkdir(d, { recursive: true });
        const probe = `${tmp}/.probe.${Deno.pid}.${crypto.randomUUID()}`;
        await Deno.writeFile(probe, new Uint8Array(1));
        await Deno.remove(probe);
      },
      catch: (e) =>
        new StoreError({
          path: dir,
          reason: `cache directory is not writable (${describe(e)}); choose another with --cache DIR or IVAAN_CACHE`,
        }),
    });
    yield* removeStaleTemporaries(tmp);

    const entryDir = (key: Digest) => `${objects}/${key}`;
    const indexFile = (node: string, stage: string) => `${index}/${sha256Text(`${node}\0${stage}`)}.json`;

    const readManifest = (key: Digest): Effect.Effect<Option.Option<Manifest>, CacheCorrupt | StoreError> =>
      ioOptional(`${entryDir(key)}/manifest.json`, () => Deno.readTextFileSync(`${entryDir(key)}/manifest.json`)).pipe(
        Effect.flatMap(Option.match({
          onNone: () =>
            // a directory without a manifest can only come from outside tampering: report it
            ioOptional(entryDir(key), () => Deno.statSync(entryDir(key))).pipe(Effect.flatMap((dirStat) =>
              Option.isSome(dirStat)
                ? Effect.fail(new CacheCorrupt({ key, reason: "manifest.json is missing" }))
                : Effect.succeed(Option.none<Manifest>())
            )),
          onSome: (text) => {
            const decoded = decodeManifest(text);
            if (decoded._tag === "Failure") {
              return Effect.fail(
                new CacheCorrupt({
                  key,
                  reason: `manifest.json is unreadable (${decoded.failure.message.split("\n")[0]})`,
                }),
              );
            }
            return decoded.success.key === key
              ? Effect.succeed(Option.some(decoded.success))
              : Effect.fail(new CacheCorrupt({ key, reason: `manifest.json belongs to key ${decoded.success.key}` }));
          },
        })),
      );

    const lookup: StoreShape["lookup"] = (key) =>
      readManifest(key).pipe(
        Effect.flatMap((found): Effect.Effect<Option.Option<Manifest>, CacheCorrupt | StoreError> => {
          if (Option.isNone(found)) return Effect.succeed(found);
          const manifest = found.value;
          return io(entryDir(key), () => {
            for (const f of manifest.files) {
              const size = fileSize(`${entryDir(key)}/${f.name}`);
              if (size !== f.size) {
                return size < 0 ? `${f.name} is missing` : `${f.name} has ${size} bytes, manifest says ${f.size}`;
              }
            }
            return undefined;
          }).pipe(
            Effect.flatMap((problem) =>
              problem === undefined ? Effect.succeed(found) : Effect.fail(new CacheCorrupt({ key, reason: problem }))
            ),
          );
        }),
      );

    const read: StoreShape["read"] = (manifest) =>
      io(entryDir(manifest.key), async () => {
        const payload: Record<string, Uint8Array> = {};
        for (const f of manifest.files) {
          payload[f.name] = await Deno.readFile(`${entryDir(manifest.key)}/${f.name}`).catch((e) => {
            if (isNotFound(e)) return new Uint8Array(0);
            throw e;
          });
        }
        return payload as Payload;
      }).pipe(Effect.flatMap((payload) => {
        const problem = payloadProblem(manifest, payload);
        return problem === undefined
          ? Effect.succeed(payload)
          : Effect.fail(new CacheCorrupt({ key: manifest.key, reason: problem }));
      }));

    const write: StoreShape["write"] = (manifest, payload) =>
      io(entryDir(manifest.key), async () => {
        const staging = `${tmp}/${manifest.key}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}`;
        await Deno.mkdir(staging);
        try {
          for (const [name, bytes] of Object.entries(payload)) await writeSynced(`${staging}/${name}`, bytes);
          await writeSynced(`${staging}/manifest.json`, new TextEncoder().encode(JSON.stringify(manifest, null, 2)));
          await syncDir(staging);
          try {
            await Deno.rename(staging, entryDir(manifest.key));
          } catch (e) {
            // another writer got there first (only possible without the lock): theirs is complete
            if (!(await Deno.stat(`${entryDir(manifest.key)}/manifest.json`).then(() => true, () => false))) throw e;
            await Deno.remove(staging, { recursive: true });
          }
          await syncDir(objects);
        } catch (e) {
          await Deno.remove(staging, { recursive: true }).catch(() => {});
          throw e;
        }
        await writeAtomic(indexFile(manifest.node, manifest.stage), JSON.stringify({ key: manifest.key }));
      });

    const quarantine: StoreShape["quarantine"] = (key, reason) =>
      io(entryDir(key), async () => {
        const target = `${quarantineDir}/${key}.${Date.now()}.${Deno.pid}`;
        try {
          await Deno.rename(entryDir(key), target);
        } catch (e) {
          if (isNotFound(e)) return; // already moved by another process
          throw e;
        }
        await Deno.writeTextFile(`${target}/reason.txt`, `${new Date().toISOString()} ${reason}\n`);
      });

    const acquireLock = (key: Digest) =>
      io(`${locks}/${key}.lock`, async () => {
        const path = `${locks}/${key}.lock`;
        for (;;) {
          const file = await Deno.open(path, { write: true, create: true });
          await file.lock(true);
          const [held, current] = await Promise.all([file.stat(), Deno.stat(path).catch(() => undefined)]);
          if (current !== undefined && current.ino === held.ino) return { file, path };
          file.close(); // the previous holder unlinked this file: retry on a fresh one
        }
      });
    const releaseLock = ({ file, path }: { readonly file: Deno.FsFile; readonly path: string }) =>
      Effect.promise(async () => {
        await Deno.remove(path).catch(() => {});
        file.close(); // closing drops the flock
      });
    const withLock: StoreShape["withLock"] = (key, effect) =>
      Effect.acquireUseRelease(acquireLock(key), () => effect, releaseLock);

    const latest: StoreShape["latest"] = (node, stage) =>
      ioOptional(indexFile(node, stage), () => Deno.readTextFile(indexFile(node, stage))).pipe(
        Effect.flatMap(Option.match({
          onNone: () => Effect.succeed(Option.none<Manifest>()),
          onSome: (text) => {
            let key: unknown;
            try {
              key = JSON.parse(text).key;
            } catch {
              return Effect.succeed(Option.none<Manifest>());
            }
            return typeof key === "string"
              ? readManifest(key).pipe(Effect.catchTag("CacheCorrupt", () => Effect.succeed(Option.none<Manifest>())))
              : Effect.succeed(Option.none<Manifest>());
          },
        })),
      );

    const touch: StoreShape["touch"] = (key) =>
      io(entryDir(key), () => {
        const now = new Date();
        try {
          Deno.utimeSync(`${entryDir(key)}/manifest.json`, now, now);
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      });

    const list: StoreShape["list"] = io(objects, async () => {
      const keys: string[] = [];
      for await (const e of Deno.readDir(objects)) if (e.isDirectory) keys.push(e.name);
      return keys.sort();
    }).pipe(Effect.flatMap((keys) =>
      Effect.forEach(keys, (key) =>
        Effect.gen(function* () {
          const usedAt = yield* io(
            key,
            () => Deno.stat(`${entryDir(key)}/manifest.json`).then((s) => s.mtime?.getTime() ?? 0, () => 0),
          );
          return yield* lookup(key).pipe(
            Effect.map((manifest) => ({ key, manifest, usedAt })),
            Effect.catchTag(
              "CacheCorrupt",
              (e) => Effect.succeed({ key, manifest: Option.none<Manifest>(), usedAt, problem: e.reason }),
            ),
          );
        }), { concurrency: 16 })
    ));

    const remove: StoreShape["remove"] = (key) =>
      io(entryDir(key), async () => {
        // rename first so that a half-deleted entry is never visible under objects/
        const doomed = `${tmp}/${key}.${Deno.pid}.deleted-${crypto.randomUUID().slice(0, 8)}`;
        try {
          await Deno.rename(entryDir(key), doomed);
        } catch (e) {
          if (isNotFound(e)) {
            return;
          }
          throw e;
        }
        await Deno.remove(doomed, { recursive: true });
      });

    const clear: StoreShape["clear"] = list.pipe(
      Effect.flatMap((entries) => Effect.forEach(entries, (e) => remove(e.key), { discard: true })),
      Effect.andThen(io(dir, async () => {
        for (const d of [index, sources, quarantineDir]) {
          await Deno.remove(d, { recursive: true }).catch(() => {});
          await Deno.mkdir(d, { recursive: true });
        }
      })),
    );

    const sourceFile = (path: string) => `${sources}/${sha256Text(path)}.json`;
    const fingerprint: StoreShape["fingerprint"] = (path, size, mtimeMs) =>
      ioOptional(sourceFile(path), () => Deno.readTextFileSync(sourceFile(path))).pipe(Effect.map((text) =>
        Option.flatMap(text, (t) => {
          try {
            const f = JSON.parse(t) as Fingerprint;
            return f.path === path && f.size === size && f.mtimeMs === mtimeMs && typeof f.digest === "string"
              ? Option.some(f.digest)
              : Option.none();
          } catch {
            return Option.none();
          }
        })
      ));
    const rememberFingerprint: StoreShape["rememberFingerprint"] = (f) =>
      io(sourceFile(f.path), () =>
        writeAtomic(sourceFile(f.path), JSON.stringify(f)));

    return Store.of({
      location: dir,
      lookup,
      read,
      write,
      quarantine,
      withLock,
      latest,
      touch,
      list,
      remove,
      clear,
      fingerprint,
      rememberFingerprint,
    });
  });

/** Removes tmp/ directories left by processes that died mid-write. */
const removeStaleTemporaries = (tmp: string): Effect.Effect<void> =>
  Effect.promise(async () => {
    for await (const e of Deno.readDir(tmp)) {
      const pid = Number(e.name.split(".")[1]);
      if (Number.isSafeInteger(pid) && pid !== Deno.pid && !processAlive(pid)) {
        await Deno.remove(`${tmp}/${e.name}`, { recursive: true }).catch(() => {});
      }
    }
  });

/** A Store layer on the directory `dir` (created if missing). */
export const layer = (dir: string): Layer.Layer<Store, StoreError> => Layer.effect(Store, makeFileStore(dir));
