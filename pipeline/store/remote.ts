/**
 * A remote cache behind the Store service: the local FileStore in front, a plain HTTP server of
 * content-addressed objects behind it (the shape of Bazel's HTTP remote cache; nginx with
 * `dav_methods PUT` is enough).
 *
 * Layout under the base URL:
 *   BASE/cas/<sha256>       one payload file, named by the SHA-256 of its bytes (shared between entries)
 *   BASE/ac/<key>.json      the entry's manifest: it lists its files and their hashes
 *
 * Mental model: `layered(local, remote)` is a Store whose lookups try the local cache, then the
 * remote; a remote hit is downloaded, verified against its manifest and written into the local cache
 * (read-through), so the next lookup is local. Entries larger than `eagerBytes` are downloaded on
 * their first `read` instead, so a hit that is never loaded (a checkpoint upstream of a cached
 * prediction) is never pulled. Writes go to the local cache, then are uploaded: payload files first,
 * the manifest last, so a reader never sees an entry whose files are not all there. Every downloaded
 * byte is verified (each file's SHA-256, then `payloadProblem`); a corrupt remote object is a
 * CacheCorrupt, never handed out: the runner recomputes the node and its upload repairs the object.
 *
 * Failures: by default a remote that cannot be reached (connection refused, timeout, non-2xx status)
 * is one warning line naming the URL; the run continues on the local cache alone and the remote is
 * not asked again in this process (no timeout per node). With `strict: true` the same failure is a
 * StoreError that ends the run. A remote never makes a run wrong: at worst it makes it slower.
 *
 * Gotchas: locks stay local (two machines computing the same key at the same moment both compute
 * it; both uploads are complete entries, the last manifest wins); `list`, `gc`, `remove`, `clear`,
 * `latest`, `touch` and source fingerprints are the local store's: nothing here deletes remote
 * objects (expire them on the server). Deno needs `--allow-net=HOST:PORT` to reach the server.
 */
import { Data, Effect, Layer, Option, Schema } from "effect";
import type { Payload } from "../codec/codec.ts";
import { CacheCorrupt, StoreError } from "../errors.ts";
import { type Digest, sha256 } from "../hash.ts";
import { makeFileStore } from "./file.ts";
import { Manifest, payloadProblem, Store, type StoreShape } from "./store.ts";

/** The remote could not be asked: connection failure, timeout or a non-2xx status. */
export class RemoteUnavailable extends Data.TaggedError("RemoteUnavailable")<{
  readonly method: string;
  readonly url: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `remote cache ${this.method} ${this.url} failed: ${this.reason}`;
  }
}

/** Options of the HTTP client. */
export interface RemoteOptions {
  /**
   * ms without progress before a request is given up: until the response headers arrive, and then
   * between two chunks of a body. An upload gets this plus 1 s per MiB. Default 30,000.
   */
  readonly timeoutMs?: number;
  /** requests in flight at once for the files of one entry (default 4) */
  readonly concurrency?: number;
  /** the fetch to use (default: the global one); a seam for fault-injection tests */
  readonly fetch?: typeof fetch;
}

/** The HTTP client of a remote cache: look up, download (verified) and upload whole entries. */
export interface RemoteCache {
  /** the base URL, without a trailing slash */
  readonly url: string;
  /** the manifest stored for `key` (`GET BASE/ac/<key>.json`), if any; an unreadable one is CacheCorrupt */
  readonly manifest: (key: Digest) => Effect.Effect<Option.Option<Manifest>, CacheCorrupt | RemoteUnavailable>;
  /** every payload file of `manifest` (`GET BASE/cas/<sha256>`), verified; a missing or wrong one is CacheCorrupt */
  readonly download: (manifest: Manifest) => Effect.Effect<Payload, CacheCorrupt | RemoteUnavailable>;
  /** uploads the payload files the server lacks (HEAD, then PUT), then the manifest (PUT) */
  readonly upload: (manifest: Manifest, payload: Payload) => Effect.Effect<void, RemoteUnavailable>;
}

const MIB = 2 ** 20;
/** a manifest is a small JSON record; more than this from `ac/` is not one */
const MANIFEST_LIMIT = 64 * MIB;
/** payload file names become local file names: plain names only, never a path */
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const HEX64 = /^[0-9a-f]{64}$/;

const decodeManifest = Schema.decodeUnknownResult(Schema.fromJsonString(Manifest));

/** What one HTTP exchange returned: the status, and the body when it was asked for and 2xx. */
interface Exchange {
  readonly status: number;
  readonly statusText: string;
  readonly length: number | undefined;
  readonly body?: Uint8Array;
  /** the body had more bytes than the caller's limit (it was not read further) */
  readonly tooLarge?: boolean;
}

class Timeout extends Error {}

/** The cause of a failed fetch in one short line (Deno nests the useful part in `cause`). */
const describeFailure = (e: unknown): string => {
  if (e instanceof Timeout) return e.message;
  const inner = e instanceof Error && e.cause instanceof Error ? e.cause : e;
  const text = inner instanceof Error ? inner.message : String(inner);
  return text.replace(/^error sending request for url \([^)]*\): /, "").replace(/^client error \(Connect\): /, "")
    .split("\n")[0] ?? text;
};

/** A hint for the statuses a misconfigured server answers. */
const statusHint = (status: number): string =>
  status === 405
    ? " (the server does not accept PUT: nginx needs `dav_methods PUT; create_full_put_path on;`)"
    : status === 413
    ? " (the server refuses large uploads: nginx needs `client_max_body_size 0;`)"
    : status === 403 || status === 500
    ? " (can the server write its root directory?)"
    : "";

const isOwnBuffer = (bytes: Uint8Array): bytes is Uint8Array<ArrayBuffer> => bytes.buffer instanceof ArrayBuffer;
/** `bytes` as fetch accepts a body: itself, or a copy when it views a SharedArrayBuffer. */
const ownBuffer = (bytes: Uint8Array): Uint8Array<ArrayBuffer> => isOwnBuffer(bytes) ? bytes : new Uint8Array(bytes);

/**
 * One request with timeouts: `timeoutMs` until the headers, then `timeoutMs` between body chunks.
 * Reads the body of a 2xx answer when `limit` is given, at most `limit` bytes; discards it otherwise.
 */
const exchange = async (
  fetchImpl: typeof fetch,
  method: string,
  url: string,
  options: { readonly body?: Uint8Array; readonly limit?: number; readonly timeoutMs: number },
  interrupted: AbortSignal,
): Promise<Exchange> => {
  const controller = new AbortController();
  const onInterrupt = () => controller.abort(interrupted.reason);
  interrupted.addEventListener("abort", onInterrupt, { once: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = "";
  const arm = (ms: number, what: string) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = `${what} within ${(ms / 1000).toFixed(1)} s`;
      controller.abort();
    }, ms);
  };
  try {
    const upload = options.body?.length ?? 0;
    arm(options.timeoutMs + (upload / MIB) * 1000, "no response");
    const response = await fetchImpl(url, {
      method,
      signal: controller.signal,
      ...(options.body === undefined ? {} : { body: ownBuffer(options.body) }),
    });
    const header = response.headers.get("content-length");
    const base = {
      status: response.status,
      statusText: response.statusText,
      length: header === null ? undefined : Number(header),
    };
    if (options.limit === undefined || !response.ok || response.body === null) {
      await response.body?.cancel();
      return base;
    }
    const reader = response.body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      arm(options.timeoutMs, "no data");
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > options.limit) {
        await reader.cancel();
        return { ...base, tooLarge: true };
      }
      chunks.push(value);
    }
    const body = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) {
      body.set(chunk, at);
      at += chunk.length;
    }
    return { ...base, body };
  } catch (e) {
    if (timedOut !== "") throw new Timeout(timedOut);
    throw e;
  } finally {
    clearTimeout(timer);
    interrupted.removeEventListener("abort", onInterrupt);
  }
};

/** The HTTP client for the remote cache at `url` (an http or https URL; a path prefix is kept). */
export const makeRemoteCache = (url: string, options: RemoteOptions = {}): Effect.Effect<RemoteCache, StoreError> =>
  Effect.gen(function* () {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return yield* new StoreError({
        path: url,
        reason: "the remote cache is not a URL (expected http://HOST:PORT/…)",
      });
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      return yield* new StoreError({ path: url, reason: "the remote cache must be an http:// or https:// URL" });
    }
    const base = parsed.href.replace(/\/+$/, "");
    const fetchImpl = options.fetch ?? fetch;
    const timeoutMs = options.timeoutMs ?? 30_000;
    const concurrency = Math.max(1, options.concurrency ?? 4);
    /** blobs this process found corrupt on the server: re-uploaded even when a HEAD says they exist */
    const badBlobs = new Set<Digest>();

    const call = (method: string, target: string, body?: Uint8Array, limit?: number) =>
      Effect.tryPromise({
        try: (signal) =>
          exchange(fetchImpl, method, target, {
            timeoutMs,
            ...(body === undefined ? {} : { body }),
            ...(limit === undefined ? {} : { limit }),
          }, signal),
        catch: (e) => new RemoteUnavailable({ method, url: target, reason: describeFailure(e) }),
      });
    const failed = (method: string, target: string, r: Exchange) =>
      new RemoteUnavailable({
        method,
        url: target,
        reason: `HTTP ${r.status}${r.statusText === "" ? "" : ` ${r.statusText}`}${statusHint(r.status)}`,
      });
    const blobUrl = (hash: Digest) => `${base}/cas/${hash}`;
    const manifestUrl = (key: Digest) => `${base}/ac/${key}.json`;

    const manifest: RemoteCache["manifest"] = (key) =>
      Effect.gen(function* () {
        const target = manifestUrl(key);
        const r = yield* call("GET", target, undefined, MANIFEST_LIMIT);
        if (r.status === 404) return Option.none();
        if (r.status < 200 || r.status > 299) return yield* failed("GET", target, r);
        const corrupt = (reason: string) => new CacheCorrupt({ key, reason: `remote manifest ${target} ${reason}` });
        if (r.tooLarge === true || r.body === undefined) return yield* corrupt(`is over ${MANIFEST_LIMIT} bytes`);
        const decoded = decodeManifest(new TextDecoder().decode(r.body));
        if (decoded._tag === "Failure") {
          return yield* corrupt(`is unreadable (${decoded.failure.message.split("\n")[0]})`);
        }
        const m = decoded.success;
        if (m.key !== key) return yield* corrupt(`belongs to key ${m.key}`);
        const bad = m.files.find((f) => !SAFE_NAME.test(f.name) || f.name === "manifest.json" || !HEX64.test(f.sha256));
        if (bad !== undefined) {
          return yield* corrupt(`lists a file with a bad name or hash (${JSON.stringify(bad.name)})`);
        }
        return Option.some(m);
      });

    const download: RemoteCache["download"] = (m) =>
      Effect.forEach(m.files, (file) =>
        Effect.gen(function* () {
          const target = blobUrl(file.sha256);
          const corrupt = (reason: string) =>
            new CacheCorrupt({ key: m.key, reason: `remote cache: ${file.name} (${target}) ${reason}` });
          const r = yield* call("GET", target, undefined, file.size);
          if (r.status === 404) return yield* corrupt("is missing on the server");
          if (r.status < 200 || r.status > 299) return yield* failed("GET", target, r);
          const bytes = r.body ?? new Uint8Array(0);
          const problem = r.tooLarge === true
            ? `has more than the manifest's ${file.size} bytes`
            : bytes.length !== file.size
            ? `has ${bytes.length} bytes, the manifest says ${file.size}`
            : sha256(bytes) !== file.sha256
            ? "does not match its sha256"
            : undefined;
          if (problem !== undefined) {
            badBlobs.add(file.sha256);
            return yield* corrupt(problem);
          }
          return [file.name, bytes] as const;
        }), { concurrency }).pipe(Effect.flatMap((pairs) => {
          const payload: Payload = Object.fromEntries(pairs);
          const problem = payloadProblem(m, payload);
          return problem === undefined
            ? Effect.succeed(payload)
            : Effect.fail(new CacheCorrupt({ key: m.key, reason: `remote cache: ${problem}` }));
        }));

    const put = (target: string, body: Uint8Array) =>
      call("PUT", target, body).pipe(
        Effect.flatMap((r) => r.status >= 200 && r.status <= 299 ? Effect.void : Effect.fail(failed("PUT", target, r))),
      );

    const upload: RemoteCache["upload"] = (m, payload) =>
      Effect.gen(function* () {
        // payload files first (those the server lacks), all of them before the manifest
        yield* Effect.forEach(m.files, (file) =>
          Effect.gen(function* () {
            const target = blobUrl(file.sha256);
            const bytes = payload[file.name];
            if (bytes === undefined) {
              return yield* new RemoteUnavailable({
                method: "PUT",
                url: target,
                reason: `no payload file ${file.name}`,
              });
            }
            if (!badBlobs.has(file.sha256)) {
              const head = yield* call("HEAD", target);
              if (head.status >= 200 && head.status <= 299 && head.length === file.size) return;
              if (head.status !== 404 && (head.status < 200 || head.status > 299)) {
                return yield* failed("HEAD", target, head);
              }
            }
            yield* put(target, bytes);
            badBlobs.delete(file.sha256);
          }), { concurrency, discard: true });
        // the manifest last: once it is visible, every file it names is there
        yield* put(manifestUrl(m.key), new TextEncoder().encode(JSON.stringify(m, null, 2)));
      });

    return { url: base, manifest, download, upload };
  });

/** Options of the layered store. */
export interface LayeredOptions {
  /** a remote failure ends the run (StoreError) instead of a warning and the local cache alone */
  readonly strict?: boolean;
  /** remote hits of at most this many payload bytes are downloaded at lookup, larger ones at first read (64 MiB) */
  readonly eagerBytes?: number;
}

/**
 * The local store in front of the remote cache (see the module header). Lookups and reads fall back
 * to the remote and fill the local store; writes go to both, the manifest last. Locks, `quarantine`,
 * `latest`, `touch`, `list`, `remove`, `clear` and fingerprints are the local store's alone, so
 * `deno task cache` and gc manage this machine's copy and never delete remote objects (a corrupt
 * remote copy is not deleted either: the recomputed entry's upload replaces it).
 */
export const layered = (local: StoreShape, remote: RemoteCache, options: LayeredOptions = {}): StoreShape => {
  const strict = options.strict ?? false;
  const eagerBytes = options.eagerBytes ?? 64 * MIB;
  /** non-strict: the first failure, after which the remote is not asked again in this process */
  let down: RemoteUnavailable | undefined;
  /** keys whose remote copy was found corrupt here: not looked up remotely again until rewritten */
  const corrupt = new Set<Digest>();

  /** Strict: a StoreError. Otherwise: one warning (the first time), the remote off, and `fallback`. */
  const unavailable = <A, E>(fallback: Effect.Effect<A, E>) => (e: RemoteUnavailable) =>
    Effect.suspend((): Effect.Effect<A, E | StoreError> => {
      if (strict) return Effect.fail(new StoreError({ path: e.url, reason: `remote cache ${e.method}: ${e.reason}` }));
      if (down !== undefined) return fallback;
      down = e;
      return Effect.logWarning(
        `${e.message}; continuing on the local cache alone (the remote cache is off for the rest of this run)`,
      ).pipe(Effect.andThen(fallback));
    });
  const noteCorrupt = (key: Digest) => (e: CacheCorrupt) => Effect.sync(() => void corrupt.add(key)).pipe(Effect.as(e));

  /** Downloads a remote entry and stores it locally; afterwards a local lookup finds it. */
  const pull = (manifest: Manifest) =>
    remote.download(manifest).pipe(
      Effect.tapError((e) => e._tag === "CacheCorrupt" ? noteCorrupt(manifest.key)(e) : Effect.void),
      Effect.tap((payload) => local.write(manifest, payload)),
    );

  const lookup: StoreShape["lookup"] = (key) =>
    local.lookup(key).pipe(Effect.flatMap((found) => {
      if (Option.isSome(found) || down !== undefined || corrupt.has(key)) return Effect.succeed(found);
      return remote.manifest(key).pipe(
        Effect.tapError((e) => e._tag === "CacheCorrupt" ? noteCorrupt(key)(e) : Effect.void),
        Effect.flatMap((m) =>
          Option.isSome(m) && m.value.bytes <= eagerBytes ? Effect.as(pull(m.value), m) : Effect.succeed(m)
        ),
        Effect.catchTag("RemoteUnavailable", unavailable(Effect.succeed(Option.none<Manifest>()))),
      );
    }));

  const read: StoreShape["read"] = (manifest) =>
    local.lookup(manifest.key).pipe(Effect.flatMap((found) => {
      if (Option.isSome(found)) return local.read(manifest);
      const gone = new CacheCorrupt({
        key: manifest.key,
        reason: "the entry is in neither the local cache nor a reachable remote cache",
      });
      if (down !== undefined) return Effect.fail(gone);
      return pull(manifest).pipe(Effect.catchTag("RemoteUnavailable", unavailable(Effect.fail(gone))));
    }));

  const write: StoreShape["write"] = (manifest, payload) =>
    local.write(manifest, payload).pipe(
      Effect.andThen(Effect.suspend(() =>
        down !== undefined ? Effect.void : remote.upload(manifest, payload).pipe(
          Effect.tap(() => Effect.sync(() => void corrupt.delete(manifest.key))),
          Effect.catchTag("RemoteUnavailable", unavailable(Effect.void)),
        )
      )),
    );

  return {
    ...local,
    lookup,
    read,
    write,
  };
};

/** A Store layer: the FileStore in `dir` in front of the remote cache at `url`. */
export const layer = (
  dir: string,
  url: string,
  options: RemoteOptions & LayeredOptions = {},
): Layer.Layer<Store, StoreError> =>
  Layer.effect(
    Store,
    Effect.gen(function* () {
      const local = yield* makeFileStore(dir);
      const remote = yield* makeRemoteCache(url, options);
      return Store.of(layered(local, remote, options));
    }),
  );
