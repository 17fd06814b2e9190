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
  // granted by Deno (the task's scope extended to it), refused by the file system
  const where = "/proc/ivaan-cannot-write-here";
  const args = taskArgs("cache").map((w) => (w.startsWith("--allow-write=") ? `${w},${where}` : w));
  const r = await deno([...args, "--cache", where, "ls"]);
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

Deno.test("deno task bench --only slide: a 1024² slide's throughput, forward share and peak RSS, also as JSON", () =>
  withTempDir(async (dir) => {
    const json = `${dir}/slide.json`;
    const args = ["--only", "slide", "--slide-side", "1024", "--slide-preset", "tiny", "--json", json];
    const r = await deno([...taskArgs("bench"), ...args]);
    assert.equal(r.code, 0, r.stderr);
    const title = "slide 1024², tiny preset \\(untrained\\)";
    assert.match(r.stdout, new RegExp(`\\| ${title}: tissue tiles/s \\| [\\d.]+ tiles/s \\| \\d+ of 25 256² tiles`));
    assert.match(r.stdout, new RegExp(`\\| ${title}: mm²/min of tissue tiles \\| [\\d.]+ mm²/min \\| [\\d.]+ s/mm²`));
    assert.match(r.stdout, new RegExp(`\\| ${title}: share of wall time in the model's forward \\| [\\d.]+ % \\|`));
    assert.match(r.stdout, /read [\d.]+ s .*, forward [\d.]+ s .*, decode .*, features .*, contours .*, write .*other/);
    assert.match(r.stdout, new RegExp(`\\| ${title}: peak RSS \\| \\d+ MB \\|`));
    assert.match(r.stdout, /\| slide, HoVer-NeXt \(published, not measured here\) \| 3\.2 s\/mm² \|/);
    const { results } = JSON.parse(await Deno.readTextFile(json)) as { results: Record<string, number> };
    const wall = results["slide.tiny.wallSeconds"] as number;
    assert.ok((results["slide.tiny.tiles"] as number) > 0 && (results["slide.tiny.tiles"] as number) <= 25);
    const steps = ["read", "forward", "decode", "tissue", "features", "contours", "write"]
      .map((s) => results[`slide.tiny.${s}Seconds`] as number);
    assert.ok(steps.every((s) => s >= 0), "each step's own time");
    assert.ok(
      Math.abs(steps.reduce((a, b) => a + b, 0) + (results["slide.tiny.otherSeconds"] as number) - wall) < 1e-6,
    );
    assert.ok((results["slide.tiny.forwardShare"] as number) > 0 && (results["slide.tiny.forwardShare"] as number) < 1);
    const small = await deno([...taskArgs("bench"), "--only", "slide", "--slide-side", "100"]);
    assert.equal(small.code, 1);
    assert.match(small.stderr, /--slide-side must be at least 256, found 100/);
  }));

Deno.test("a cache directory outside the write grant is one line with the command that grants it", async () => {
  const r = await cache("--cache", "/proc/ivaan-cannot-write-here", "ls");
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0] as string,
    /^error: --cache \/proc\/ivaan-cannot-write-here: no write access there \(.*\); run: deno run .*--allow-write=\.,\/tmp,\/proc\/ivaan-cannot-write-here /,
  );
});

Deno.test("deno task bench --only slide --slide-compression none: the raw pyramid's size is reported; --slide-islands is checked", () =>
  withTempDir(async (dir) => {
    const json = `${dir}/slide.json`;
    const args = ["--only", "slide", "--slide-side", "512", "--slide-preset", "tiny", "--json", json];
    const r = await deno([...taskArgs("bench"), ...args, "--slide-compression", "none", "--slide-islands", "0.5"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /an uncompressed pyramidal TIFF of \d+ MB/);
    const { results } = JSON.parse(await Deno.readTextFile(json)) as { results: Record<string, number> };
    // raw RGB: at least the full level's 512² × 3 bytes
    assert.ok((results["slide.fileBytes"] as number) >= 512 * 512 * 3, String(results["slide.fileBytes"]));
    const bad = await deno([...taskArgs("bench"), "--only", "slide", "--slide-islands", "2"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--slide-islands must be in \(0, 1\], found 2/);
  }));
