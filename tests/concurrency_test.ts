import assert from "node:assert/strict";
import { Effect, Option } from "effect";
import { Runner, Store } from "../mod.ts";
import { concurrentPipeline } from "./_concurrent_runner.ts";
import { deno, inDir, withTempDir } from "./_helpers.ts";

Deno.test("3 processes run the same pipeline at once: all succeed, each node computed once, one valid entry per key", () =>
  withTempDir(async (dir) => {
    const runner = new URL("./_concurrent_runner.ts", import.meta.url).pathname;
    const results = await Promise.all([0, 1, 2].map(() => deno(["run", "-A", runner, dir])));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const parsed = results.map((r) =>
      JSON.parse(r.stdout) as { outputs: { abc: number }; report: Array<{ node: string; status: string; key: string }> }
    );
    for (const p of parsed) assert.equal(p.outputs.abc, 6);
    for (const node of ["a", "b", "c", "ab", "abc"]) {
      const computed = parsed.filter((p) => p.report.find((s) => s.node === node)?.status === "computed").length;
      assert.equal(computed, 1, `node ${node} computed ${computed} times`);
      assert.equal(new Set(parsed.map((p) => p.report.find((s) => s.node === node)?.key)).size, 1);
    }
    await inDir(
      dir,
      Effect.gen(function* () {
        const store = yield* Store;
        const entries = yield* store.list;
        assert.equal(entries.length, 5);
        for (const e of entries) {
          assert.ok(Option.isSome(e.manifest));
          yield* store.read(e.manifest.value);
        }
        assert.equal([...Deno.readDirSync(`${dir}/locks`)].length, 0, "lock files are removed by their holders");
      }),
    );
    const rerun = await inDir(dir, Runner.run(concurrentPipeline, ["abc"]));
    assert.ok(rerun.report.every((s) => s.status === "hit"));
  }));

Deno.test("a lock held by a killed process is broken by the kernel: the next process proceeds", () =>
  withTempDir(async (dir) => {
    const key = "f".repeat(64);
    await Deno.mkdir(`${dir}/locks`, { recursive: true });
    // a child takes the lock the way the store does (flock) and is then killed while holding it
    const holder = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `const f = await Deno.open(${JSON.stringify(`${dir}/locks/${key}.lock`)}, { write: true, create: true });
        await f.lock(true); console.log("locked"); await new Promise(() => setInterval(() => {}, 1000));`,
      ],
      stdout: "piped",
    }).spawn();
    const reader = holder.stdout.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value).trim(), "locked");
    holder.kill("SIGKILL");
    await holder.status;
    reader.releaseLock();
    await holder.stdout.cancel();
    const got = await inDir(dir, Effect.flatMap(Store, (store) => store.withLock(key, Effect.succeed("acquired"))));
    assert.equal(got, "acquired");
  }));

Deno.test("in one process, two fibers computing the same key wait for each other", () =>
  withTempDir(async (dir) => {
    const order: string[] = [];
    await inDir(
      dir,
      Effect.gen(function* () {
        const store = yield* Store;
        const critical = (name: string) =>
          store.withLock(
            "e".repeat(64),
            Effect.gen(function* () {
              order.push(`${name} in`);
              yield* Effect.sleep(50);
              order.push(`${name} out`);
            }),
          );
        yield* Effect.all([critical("x"), critical("y")], { concurrency: "unbounded" });
      }),
    );
    assert.equal(order.length, 4);
    assert.equal(order[0]?.split(" ")[0], order[1]?.split(" ")[0], `critical sections interleaved: ${order}`);
  }));
