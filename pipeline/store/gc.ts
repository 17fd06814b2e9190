/**
 * Garbage collection of a store: drop unreadable entries, keep the N most recently used entries of
 * each (node, stage), then evict least recently used entries until the store fits a size budget.
 * Works on any Store through its interface; removal is atomic per entry.
 */
import { Effect, Option } from "effect";
import type { StoreError } from "../errors.ts";
import { Store } from "./store.ts";

export interface GcOptions {
  /** keep at most this many entries per (node, stage), most recently used first */
  readonly keepLast?: number;
  /** then evict least recently used entries until the total payload size is at most this */
  readonly maxSize?: number;
}

export interface GcReport {
  readonly removed: ReadonlyArray<
    { readonly key: string; readonly node: string; readonly bytes: number; readonly why: string }
  >;
  readonly keptEntries: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(?:([kmgtp])(i)?)?b?$/i;
const POWERS: Readonly<Record<string, number>> = { k: 1, m: 2, g: 3, t: 4, p: 5 };

/**
 * Parses a size such as `20GB`, `20gb`, `512 MiB`, `1.5G` or `1000` (bytes), case-insensitively:
 * k/M/G/T/P are powers of 1000, Ki/Mi/Gi/Ti/Pi powers of 1024. Undefined when it is not a size.
 */
export const parseSize = (text: string): number | undefined => {
  const m = SIZE.exec(text.trim());
  if (m === null) return undefined;
  const power = m[2] === undefined ? 0 : POWERS[m[2].toLowerCase()] as number;
  return Math.round(Number(m[1]) * (m[3] === undefined ? 1000 : 1024) ** power);
};

/** Runs the collection (see the module header) and reports what it removed. */
export const gc = (options: GcOptions): Effect.Effect<GcReport, StoreError, Store> =>
  Effect.gen(function* () {
    const store = yield* Store;
    const entries = yield* store.list;
    const removed: Array<GcReport["removed"][number]> = [];
    const live = [];
    for (const e of entries) {
      if (Option.isNone(e.manifest)) {
        removed.push({ key: e.key, node: "?", bytes: 0, why: `unreadable: ${e.problem ?? "no manifest"}` });
      } else live.push({ key: e.key, usedAt: e.usedAt, manifest: e.manifest.value });
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
        else {removed.push({
            key: e.key,
            node: e.manifest.node,
            bytes: e.manifest.bytes,
            why: `older than the last ${options.keepLast}`,
          });}
      }
    }
    let total = kept.reduce((n, e) => n + e.manifest.bytes, 0);
    if (options.maxSize !== undefined) {
      while (total > options.maxSize && kept.length > 0) {
        const e = kept.pop() as (typeof kept)[number]; // least recently used
        total -= e.manifest.bytes;
        removed.push({
          key: e.key,
          node: e.manifest.node,
          bytes: e.manifest.bytes,
          why: "least recently used over --max-size",
        });
      }
    }
    yield* Effect.forEach(removed, (r) => store.remove(r.key), { discard: true });
    return { removed, keptEntries: kept.length, bytesBefore, bytesAfter: total };
  });
