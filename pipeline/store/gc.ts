/**
 * Garbage collection of a store: drop unreadable entries, keep the N most recently used entries of
 * each (node, stage), then evict least recently used entries until the store fits a size budget.
 * Works on any Store through its interface; removal is atomic per entry.
 */
import { ByteSize, Effect, Option } from "effect";
import type { StoreError } from "../errors.ts";
import { Store } from "./store.ts";

export interface GcOptions {
  /** keep at most this many entries per (node, stage), most recently used first */
  readonly keepLast?: number;
  /** then evict least recently used entries until the total payload size is at most this */
  readonly maxSize?: number;
}

export interface GcReport {
  readonly removed: ReadonlyArray<{ readonly key: string; readonly node: string; readonly bytes: number; readonly why: string }>;
  readonly keptEntries: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
}

/** Parses a size such as `20GB`, `512 MiB` or `1000` (bytes); undefined when it is not one. */
export const parseSize = (text: string): number | undefined =>
  Option.getOrUndefined(Option.flatMap(ByteSize.fromString(text.trim()), ByteSize.toNumber));

/** Runs the collection (see the module header) and reports what it removed. */
export const gc = (options: GcOptions): Effect.Effect<GcReport, StoreError, Store> =>
  Effect.gen(function* () {
    const store = yield* Store;
    const entries = yield* store.list;
    const removed: Array<GcReport["removed"][number]> = [];
    const live = [];
    for (const e of entries) {
      if (Option.isNone(e.manifest)) removed.push({ key: e.key, node: "?", bytes: 0, why: `unreadable: ${e.problem ?? "no manifest"}` });
      else live.push({ key: e.key, usedAt: e.usedAt, manifest: e.manifest.value });
    }
    const bytesBefore = live.reduce((n, e) => n + e.manifest.bytes, 0);
    live.sort((a, b) => b.usedAt - a.usedAt || a.key.localeCompare(b.key)); // most recent first
    let kept = live;
    if (options.keepLast !== undefined) {
      const seen = new Map<string, number>();
      kept = [];
      for (const e of live) {
        const group = `${e.manifest.node}\0${e.manifest.stage}`;
        const n = (seen.get(group) ?? 0) + 1;
        seen.set(group, n);
        if (n <= options.keepLast) kept.push(e);
        else removed.push({ key: e.key, node: e.manifest.node, bytes: e.manifest.bytes, why: `older than the last ${options.keepLast}` });
      }
    }
    let total = kept.reduce((n, e) => n + e.manifest.bytes, 0);
    if (options.maxSize !== undefined) {
      while (total > options.maxSize && kept.length > 0) {
        const e = kept.pop() as (typeof kept)[number]; // least recently used
        total -= e.manifest.bytes;
        removed.push({ key: e.key, node: e.manifest.node, bytes: e.manifest.bytes, why: "least recently used over --max-size" });
      }
    }
    yield* Effect.forEach(removed, (r) => store.remove(r.key), { discard: true });
    return { removed, keptEntries: kept.length, bytesBefore, bytesAfter: total };
  });
