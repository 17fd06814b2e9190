/**
 * The Store service: where stage results live, one entry per cache key.
 *
 * An entry is a manifest (what produced it: stage, version, config, input digests, environment,
 * output digest, file sizes, duration, creation time) plus the payload files of the encoded
 * output. Layers: `FileStore.layer(dir)` (crash-safe, multi-process) and `MemoryStore.layer`
 * (tests). The runner is the only user in normal runs; `deno task cache` uses the rest.
 *
 * Gotchas: `lookup` is cheap (manifest + sizes) and does not hash payloads; `read` verifies the
 * digest and is the only way to get payload bytes, so corrupt bytes are never handed out.
 */
import { Context, Effect, Option, Schema } from "effect";
import type { Payload } from "../codec/codec.ts";
import type { CacheCorrupt, StoreError } from "../errors.ts";
import { type Digest, digestFiles, sha256 } from "../hash.ts";

const Json: Schema.Codec<unknown> = Schema.Unknown;

/** One payload file as recorded in a manifest. */
export const ManifestFile = Schema.Struct({ name: Schema.String, size: Schema.Number, sha256: Schema.String });

/** The manifest of a stored entry (`manifest.json`). */
export const Manifest = Schema.Struct({
  format: Schema.Literal(1),
  key: Schema.String,
  node: Schema.String,
  stage: Schema.String,
  version: Schema.String,
  config: Json,
  environment: Schema.String,
  inputs: Schema.Record(Schema.String, Schema.String),
  codec: Schema.String,
  digest: Schema.String,
  files: Schema.Array(ManifestFile),
  bytes: Schema.Number,
  durationMs: Schema.Number,
  createdAt: Schema.String,
});
export type Manifest = typeof Manifest.Type;

/** Builds the manifest of a payload that is about to be written. */
export const makeManifest = (
  fields: Omit<Manifest, "format" | "digest" | "files" | "bytes" | "createdAt">,
  payload: Payload,
  now: Date,
): Manifest => {
  const files = Object.keys(payload).sort().map((name) => {
    const bytes = payload[name] as Uint8Array;
    return { name, size: bytes.length, sha256: sha256(bytes) };
  });
  return {
    format: 1,
    ...fields,
    digest: digestFiles(payload),
    files,
    bytes: files.reduce((n, f) => n + f.size, 0),
    createdAt: now.toISOString(),
  };
};

/**
 * Checks payload bytes against their manifest; returns the problem, or undefined when they match.
 * Names the first file whose size or hash differs.
 */
export const payloadProblem = (manifest: Manifest, payload: Payload): string | undefined => {
  for (const file of manifest.files) {
    const bytes = payload[file.name];
    if (bytes === undefined) return `payload file ${file.name} is missing`;
    if (bytes.length !== file.size) return `${file.name} has ${bytes.length} bytes, manifest says ${file.size}`;
    if (sha256(bytes) !== file.sha256) return `${file.name} does not match its recorded sha256`;
  }
  if (Object.keys(payload).length !== manifest.files.length) return "payload has files the manifest does not list";
  const digest = digestFiles(payload);
  return digest === manifest.digest
    ? undefined
    : `payload digest ${digest} differs from the manifest's ${manifest.digest}`;
};

/** A remembered source fingerprint: the content hash of a file at a given size and mtime. */
export interface Fingerprint {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly digest: Digest;
}

/** The store operations. */
export interface StoreShape {
  /** where the store lives, for messages */
  readonly location: string;
  /** the manifest of `key`, if a complete entry exists; a broken manifest or missing file is CacheCorrupt */
  readonly lookup: (key: Digest) => Effect.Effect<Option.Option<Manifest>, CacheCorrupt | StoreError>;
  /** the payload of an entry, verified against its manifest */
  readonly read: (manifest: Manifest) => Effect.Effect<Payload, CacheCorrupt | StoreError>;
  /** stores an entry atomically: afterwards it is either complete or absent */
  readonly write: (manifest: Manifest, payload: Payload) => Effect.Effect<void, StoreError>;
  /** moves a corrupt entry out of the way (kept for inspection, never read again) */
  readonly quarantine: (key: Digest, reason: string) => Effect.Effect<void, StoreError>;
  /** runs `effect` holding the cross-process lock of `key`; waits for other holders */
  readonly withLock: <A, E, R>(key: Digest, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreError, R>;
  /** the most recent manifest written for (node, stage), to explain why a key changed */
  readonly latest: (node: string, stage: string) => Effect.Effect<Option.Option<Manifest>, StoreError>;
  /** marks an entry as used now (for `gc --keep-last` and `--max-size`) */
  readonly touch: (key: Digest) => Effect.Effect<void, StoreError>;
  /** every entry with its last-use time; unreadable entries are reported, not hidden */
  readonly list: Effect.Effect<
    ReadonlyArray<
      {
        readonly key: Digest;
        readonly manifest: Option.Option<Manifest>;
        readonly usedAt: number;
        readonly problem?: string;
      }
    >,
    StoreError
  >;
  readonly remove: (key: Digest) => Effect.Effect<void, StoreError>;
  readonly clear: Effect.Effect<void, StoreError>;
  /** remembered content hash of a source file with this size and mtime */
  readonly fingerprint: (
    path: string,
    size: number,
    mtimeMs: number,
  ) => Effect.Effect<Option.Option<Digest>, StoreError>;
  readonly rememberFingerprint: (fingerprint: Fingerprint) => Effect.Effect<void, StoreError>;
}

/** The Store service key. */
export class Store extends Context.Service<Store, StoreShape>()("ivaan/pipeline/Store") {}

/** Whether `store` holds an entry under `key`; a lookup that fails (corrupt, unreadable) counts as no. */
export const holds = (store: StoreShape, key: Digest): Effect.Effect<boolean> =>
  store.lookup(key).pipe(Effect.map(Option.isSome), Effect.orElseSucceed(() => false));
