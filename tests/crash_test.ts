import assert from "node:assert/strict";
import { Effect, Option } from "effect";
import { Runner, Store } from "../mod.ts";
import { crashPipeline } from "./_crash_writer.ts";
import { inDir, withTempDir } from "./_helpers.ts";

const TRIALS = 24; // SIGKILL trials (the issue asks for at least 20)
const SIGNALS: ReadonlyArray<Deno.Signal> = [
  ...Array<Deno.Signal>(TRIALS).fill("SIGKILL"),
  "SIGINT",
  "SIGTERM",
  "SIGINT",
  "SIGTERM",
];

/** Every entry visible under objects/ must have a readable manifest and a payload matching it. */
const verifyAll = (dir: string) =>
  inDir(
    dir,
    Effect.gen(function* () {
      const store = yield* Store;
      const entries = yield* store.list;
      for (const e of entries) {
        assert.ok(Option.isSome(e.manifest), `entry ${e.key} is visible but broken: ${e.problem}`);
        yield* store.read(e.manifest.value); // fails the test on a digest mismatch
      }
      yield* store.clear; // keep each trial's check small; the next child starts on an empty store
      return entries.length;
    }),
  );

Deno.test(`crash safety: SIGKILL (${TRIALS}×), Ctrl-C and SIGTERM at random points while writing large entries`, () =>
  withTempDir(async (dir) => {
    const writer = new URL("./_crash_writer.ts", import.meta.url).pathname;
    let killedMidRun = 0, survived = 0, interruptedWrites = 0;
    for (const signal of SIGNALS) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", writer, dir, "6"],
        stdout: "null",
        stderr: "piped",
        stdin: "null",
      }).spawn();
      // startup takes ~0.3 s; one round (4 × 6 MB, fsynced) a few hundred ms more
      await new Promise((resolve) => setTimeout(resolve, 250 + Math.random() * 1000));
      child.kill(signal);
      const status = await child.status;
      if (status.signal === signal) killedMidRun++;
      await child.stderr.cancel();
      // a staging directory left in tmp/ is a write the kill interrupted (removed when a store opens)
      if ([...Deno.readDirSync(`${dir}/tmp`)].some((e) => e.isDirectory)) interruptedWrites++;
      survived += await verifyAll(dir);
    }
    assert.equal(killedMidRun, SIGNALS.length, "every child must have been killed while running");
    assert.ok(survived > 0, "the children completed some entries between kills");
    assert.ok(interruptedWrites > 0, "at least one kill must have hit a write in progress");
    // the next run succeeds, fills the cache, and a rerun is all hits
    const p = crashPipeline(424242, 4);
    const targets = ["big0", "big1", "big2", "big3"];
    const first = await inDir(dir, Runner.run(p, targets));
    assert.ok(first.report.every((s) => s.status === "computed"));
    const second = await inDir(dir, Runner.run(p, targets));
    assert.ok(second.report.every((s) => s.status === "hit"));
    await verifyAll(dir);
    console.log(
      `crash trials: ${TRIALS} SIGKILLs + ${
        SIGNALS.length - TRIALS
      } SIGINT/SIGTERM (${interruptedWrites} mid-write), ${survived} complete entries survived, no corrupt entry seen`,
    );
  }));
