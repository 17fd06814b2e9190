import assert from "node:assert/strict";
import { Effect, Layer } from "effect";
import { makeManifest, Store } from "./store.ts";
import { gc, parseSize } from "./gc.ts";
import { makeMemoryStore } from "./memory.ts";

Deno.test("parseSize: SI and binary units, any case, bare bytes; nonsense is undefined", () => {
  assert.equal(parseSize("20GB"), 20e9);
  assert.equal(parseSize("20gb"), 20e9);
  assert.equal(parseSize("512 MiB"), 512 * 1024 ** 2);
  assert.equal(parseSize("1.5G"), 1.5e9);
  assert.equal(parseSize("1000"), 1000);
  assert.equal(parseSize("1kB"), 1000);
  assert.equal(parseSize("lots"), undefined);
  assert.equal(parseSize("-1GB"), undefined);
});

Deno.test("gc keeps the last N per node, then evicts least recently used entries over the size budget", async () => {
  const report = await Effect.runPromise(Effect.gen(function* () {
    const memory = yield* makeMemoryStore;
    const write = (key: string, node: string, size: number, usedAt: number) =>
      Effect.gen(function* () {
        const payload = { "value.bin": new Uint8Array(size) };
        const manifest = makeManifest(
          {
            key,
            node,
            stage: "s",
            version: "1",
            config: {},
            environment: "",
            inputs: {},
            codec: "bytes",
            durationMs: 0,
          },
          payload,
          new Date(0),
        );
        yield* memory.store.write(manifest, payload);
        (memory.entries.get(key) as { usedAt: number }).usedAt = usedAt;
      });
    yield* write("a1", "a", 100, 1);
    yield* write("a2", "a", 100, 2);
    yield* write("a3", "a", 100, 3);
    yield* write("b1", "b", 300, 4);
    yield* write("c1", "c", 50, 5);
    const result = yield* gc({ keepLast: 2, maxSize: 400 }).pipe(Effect.provide(Layer.succeed(Store, memory.store)));
    return { result, left: [...memory.entries.keys()].sort() };
  }));
  assert.deepEqual(report.result.removed.map((r) => [r.key, r.why]), [
    ["a1", "older than the last 2"],
    ["a2", "least recently used over --max-size"], // 550 > 400
    ["a3", "least recently used over --max-size"], // 450 > 400
  ]);
  assert.deepEqual(report.left, ["b1", "c1"]);
  assert.equal(report.result.bytesBefore, 650);
  assert.equal(report.result.bytesAfter, 350);
});
