import assert from "node:assert/strict";
import { Effect } from "effect";
import { Progress, track } from "./progress.ts";

Deno.test("plain progress: periodic lines and a final line, also when the work fails", async () => {
  const lines: string[] = [];
  const layer = Progress.plain(0, (line) => lines.push(line));
  await Effect.runPromise(
    track("features", 4, (t) => Effect.repeat(t.advance(1), { times: 3 })).pipe(Effect.provide(layer)),
  );
  assert.deepEqual(lines.slice(0, 4), [
    "features: 1/4 (25%)",
    "features: 2/4 (50%)",
    "features: 3/4 (75%)",
    "features: 4/4 (100%)",
  ]);
  assert.match(lines[4] as string, /^features: 4\/4 \(100%\) done in \d+\.\d s$/);
  lines.length = 0;
  const failed = await Effect.runPromiseExit(
    track("io", 2, (t) => Effect.andThen(t.advance(1), Effect.fail("disk full"))).pipe(
      Effect.provide(Progress.plain(60_000, (l) => lines.push(l))),
    ),
  );
  assert.equal(failed._tag, "Failure");
  assert.match(lines.at(-1) as string, /^io: 1\/2 \(50%\) done in/);
});

Deno.test("plain progress prints at most one line per interval", async () => {
  const lines: string[] = [];
  await Effect.runPromise(
    track("big", 1000, (t) => Effect.repeat(t.advance(1), { times: 999 })).pipe(
      Effect.provide(Progress.plain(60_000, (l) => lines.push(l))),
    ),
  );
  assert.equal(lines.length, 1); // only the final line within one interval
});
