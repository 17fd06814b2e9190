import assert from "node:assert/strict";
import { Runner } from "../mod.ts";
import { thresholdPipeline } from "./examples/threshold_pipeline.ts";
import { deno, inDir, withTempDir } from "./_helpers.ts";
import { taskArgs } from "./_tasks.ts";

const cache = (...args: string[]) => deno([...taskArgs("cache"), ...args]);

Deno.test("deno.json wires every required task", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  for (
    const task of [
      "test",
      "check",
      "train",
      "evaluate",
      "predict",
      "report",
      "ablate",
      "data",
      "features",
      "attributes",
      "cache",
      "bench",
    ]
  ) {
    assert.equal(typeof config.tasks[task], "string", `task ${task}`);
  }
  assert.equal(config.lock.frozen, true);
  for (const [name, spec] of Object.entries(config.imports as Record<string, string>)) {
    assert.match(spec, /@\d+\.\d+\.\d+\/?$/, `import ${name} is pinned exactly`);
  }
});

Deno.test("cache ls / show / gc / clear on a populated cache", () =>
  withTempDir(async (dir) => {
    await inDir(dir, Runner.run(thresholdPipeline(2, 64), ["foreground"]));
    await inDir(dir, Runner.run(thresholdPipeline(3, 64), ["foreground"]));
    const ls = await cache("--cache", dir, "ls");
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /9 entries, [\d.]+ KB in /);
    assert.match(ls.stdout, /smoothed\s+example\.smooth v1/);
    const key = ls.stdout.split("\n")[1]?.split(" ")[0] as string;
    const show = await cache("--cache", dir, "show", key.slice(0, 8));
    assert.equal(show.code, 0, show.stderr);
    assert.equal(JSON.parse(show.stdout.slice(0, show.stdout.lastIndexOf("}") + 1)).key.slice(0, 12), key);
    const unknown = await cache("--cache", dir, "show", "zzzz");
    assert.equal(unknown.code, 1);
    assert.equal(
      unknown.stderr.trim(),
      "error: no cache entry has a key starting with 'zzzz' (see: deno task cache ls)",
    );
    const gc = await cache("--cache", dir, "gc", "--keep-last", "1");
    assert.equal(gc.code, 0, gc.stderr);
    assert.match(gc.stdout, /4 removed, 5 kept/); // image is shared; 4 nodes had two versions
    const badSize = await cache("--cache", dir, "gc", "--max-size", "lots");
    assert.equal(badSize.code, 1);
    assert.match(badSize.stderr, /^error: --max-size: expected a size such as 20GB or 512MiB, found 'lots'\n$/);
    const small = await cache("--cache", dir, "gc", "--max-size", "1KB");
    assert.match(small.stdout, / → [\d.]+ (B|KB)\n$/);
    const clear = await cache("--cache", dir, "clear");
    assert.equal(clear.code, 0);
    assert.match((await cache("--cache", dir, "ls")).stdout, /0 entries/);
  }));

Deno.test("IVAAN_CACHE selects the cache directory when --cache is absent", () =>
  withTempDir(async (dir) => {
    await inDir(dir, Runner.run(thresholdPipeline(1, 32), ["image"]));
    const r = await deno([...taskArgs("cache"), "ls"], { IVAAN_CACHE: dir });
    assert.match(r.stdout, new RegExp(`1 entries, .* in ${dir}`));
  }));

Deno.test("an unwritable cache directory is one clear line, no stack trace", async () => {
  const r = await cache("--cache", "/proc/ivaan-cannot-write-here", "ls");
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0] as string,
    /^error: cache store error at \/proc\/ivaan-cannot-write-here: cache directory is not writable \(.*\); choose another with --cache DIR or IVAAN_CACHE$/,
  );
});

Deno.test("cache --help explains every subcommand", async () => {
  const r = await cache("--help");
  assert.equal(r.code, 0);
  for (const sub of ["ls", "show", "verify", "gc", "clear"]) assert.match(r.stdout, new RegExp(`\\n\\s+${sub}\\s+\\S`));
  assert.match(r.stdout, /--cache string\s+Cache directory/);
});

Deno.test("the README example: the second run is all hits and gives the same answer", () =>
  withTempDir(async (dir) => {
    const args = [...taskArgs("example"), "--cache", dir, "--passes", "2"];
    const first = await deno(args);
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stdout,
      /image=computed smoothed=computed histogram=computed threshold=computed foreground=computed/,
    );
    const second = await deno(args);
    assert.match(second.stdout, /5 hit, 0 miss/);
    assert.match(second.stdout, /image=hit smoothed=hit histogram=hit threshold=hit foreground=hit/);
    const answer = (s: string) => s.split("\n").find((l) => l.startsWith("foreground:"));
    assert.ok(answer(first.stdout) !== undefined);
    assert.equal(answer(second.stdout), answer(first.stdout));
  }));

Deno.test("deno task bench: --help explains the sections; an unknown section is one error", async () => {
  const help = await deno([...taskArgs("bench"), "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Example: deno task bench --only model/);
  const bad = await deno([...taskArgs("bench"), "--only", "nothing"]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stdout + bad.stderr, /nothing/);
});
