/**
 * An in-memory Store for tests: same semantics as the file store (verified reads, per-key locks,
 * quarantine), nothing on disk, gone when the layer is released.
 */
import { Effect, Layer, Option, Semaphore } from "effect";
import type { Payload } from "../codec/codec.ts";
import { CacheCorrupt } from "../errors.ts";
import type { Digest } from "../hash.ts";
import { type Fingerprint, type Manifest, payloadProblem, Store } from "./store.ts";

interface Entry {
  readonly manifest: Manifest;
  readonly payload: Payload;
  usedAt: number;
}

/** Builds a fresh in-memory store. `quarantined` is exposed so tests can inspect it. */
export const makeMemoryStore = Effect.sync(() => {
  const entries = new Map<Digest, Entry>();
  const latest = new Map<string, Digest>();
  const locks = new Map<Digest, Semaphore.Semaphore>();
  const fingerprints = new Map<string, Fingerprint>();
  const quarantined = new Map<Digest, { readonly entry: Entry; readonly reason: string }>();
  const lockOf = (key: Digest) => {
    let lock = locks.get(key);
    if (lock === undefined) locks.set(key, lock = Semaphore.makeUnsafe(1));
    return lock;
  };
  const store = Store.of({
    location: "memory",
    lookup: (key) => Effect.sync(() => Option.map(Option.fromNullishOr(entries.get(key)), (e) => e.manifest)),
    read: (manifest) =>
      Effect.suspend(() => {
        const entry = entries.get(manifest.key);
        if (entry === undefined) return Effect.fail(new CacheCorrupt({ key: manifest.key, reason: "entry vanished" }));
        const problem = payloadProblem(manifest, entry.payload);
        return problem === undefined
          ? Effect.succeed(entry.payload)
          : Effect.fail(new CacheCorrupt({ key: manifest.key, reason: problem }));
      }),
    write: (manifest, payload) =>
      Effect.sync(() => {
        const copy = Object.fromEntries(Object.entries(payload).map(([k, v]) => [k, v.slice()]));
        entries.set(manifest.key, { manifest, payload: copy, usedAt: Date.now() });
        latest.set(`${manifest.node}\0${manifest.stage}`, manifest.key);
      }),
    quarantine: (key, reason) =>
      Effect.sync(() => {
        const entry = entries.get(key);
        if (entry !== undefined) quarantined.set(key, { entry, reason });
        entries.delete(key);
      }),
    withLock: (key, effect) => lockOf(key).withPermit(effect),
    latest: (node, stage) =>
      Effect.sync(() => {
        const key = latest.get(`${node}\0${stage}`);
        return Option.map(Option.fromNullishOr(key === undefined ? undefined : entries.get(key)), (e) => e.manifest);
      }),
    touch: (key) =>
      Effect.sync(() => {
        const entry = entries.get(key);
        if (entry !== undefined) entry.usedAt = Date.now();
      }),
    list: Effect.sync(() =>
      [...entries].map(([key, e]) => ({ key, manifest: Option.some(e.manifest), usedAt: e.usedAt }))
    ),
    remove: (key) => Effect.sync(() => void entries.delete(key)),
    clear: Effect.sync(() => entries.clear()),
    fingerprint: (path, size, mtimeMs) =>
      Effect.sync(() => {
        const f = fingerprints.get(path);
        return f !== undefined && f.size === size && f.mtimeMs === mtimeMs ? Option.some(f.digest) : Option.none();
      }),
    rememberFingerprint: (f) => Effect.sync(() => void fingerprints.set(f.path, f)),
  });
  return { store, entries, quarantined };
});

/** A Store layer backed by memory. */
export const layer: Layer.Layer<Store> = Layer.effect(Store, Effect.map(makeMemoryStore, (m) => m.store));
