import assert from "node:assert/strict";
import { Data, Effect } from "effect";
import { type Codec, Pipeline, Runner, Source, Stage } from "../mod.ts";
import { deno, inDir, Nums, Runs, testStages, withTempDir } from "./_helpers.ts";
import { taskArgs } from "./_tasks.ts";

const chain = (runs: Runs, opts: { factor?: number; label?: string; scaleVersion?: number } = {}) => {
  const s = testStages(runs, { scale: opts.scaleVersion ?? 1 });
  return Pipeline.empty
    .node("numbers", s.numbers, { config: { n: 5 } })
    .node("scaled", s.scale, {
      inputs: { values: "numbers" },
      config: { factor: opts.factor ?? 2, label: opts.label ?? "x" },
    })
    .node("total", s.sum, { inputs: { values: "scaled" } })
    .node("parity", s.parity, { inputs: { value: "total" } });
};

const statuses = (report: ReadonlyArray<{ node: string; status: string }>) =>
  Object.fromEntries(report.map((s) => [s.node, s.status]));

Deno.test("a rerun is all hits and computes nothing", () =>
  withTempDir(async (dir) => {
    const runs = new Runs();
    const first = await inDir(dir, Runner.run(chain(runs), ["parity"]));
    assert.equal(first.outputs.parity, "even"); // 2·(1+…+5) = 30
    const second = await inDir(dir, Runner.run(chain(runs), ["parity"]));
    assert.equal(second.outputs.parity, "even");
    assert.deepEqual(statuses(second.report), { numbers: "hit", scaled: "hit", total: "hit", parity: "hit" });
    assert.equal(runs.of("numbers") + runs.of("scale") + runs.of("sum") + runs.of("parity"), 4);
  }));

Deno.test("explain: a config change is a miss with the changed field, downstream pending", () =>
  withTempDir(async (dir) => {
    await inDir(dir, Runner.run(chain(new Runs()), ["parity"]));
    const plan = await inDir(dir, Runner.explain(chain(new Runs(), { factor: 3 }), ["parity"]));
    assert.deepEqual(plan.steps.map((s) => [s.node, s.status]), [["numbers", "hit"], ["scaled", "miss"], [
      "total",
      "pending",
    ], [
      "parity",
      "pending",
    ]]);
    assert.equal(plan.steps[1]?.reason, "new config: factor 2 → 3");
    assert.match(Runner.formatPlan(plan), /4 nodes — 1 hit, 1 miss, 2 pending/);
    const runs = new Runs();
    const { outputs, report } = await inDir(dir, Runner.run(chain(runs, { factor: 3 }), ["parity"]));
    assert.equal(outputs.parity, "odd"); // 45
    assert.deepEqual(statuses(report), { numbers: "hit", scaled: "computed", total: "computed", parity: "computed" });
  }));

Deno.test("explain: a version bump is a miss that says so", () =>
  withTempDir(async (dir) => {
    await inDir(dir, Runner.run(chain(new Runs()), ["total"]));
    const plan = await inDir(dir, Runner.explain(chain(new Runs(), { scaleVersion: 2 }), ["total"]));
    assert.equal(plan.steps[1]?.status, "miss");
    assert.equal(plan.steps[1]?.reason, "version bump 1 → 2");
  }));

Deno.test("early cutoff: an upstream rerun with identical output bytes keeps downstream hits", () =>
  withTempDir(async (dir) => {
    await inDir(dir, Runner.run(chain(new Runs()), ["parity"]));
    const runs = new Runs();
    // `label` is in the key but does not change the output
    const { report } = await inDir(dir, Runner.run(chain(runs, { label: "other" }), ["parity"]));
    assert.deepEqual(statuses(report), { numbers: "hit", scaled: "computed", total: "hit", parity: "hit" });
    assert.equal(runs.of("sum"), 0);
  }));

Deno.test("a changed input file is a miss naming the input; an unchanged one is a hit", () =>
  withTempDir(async (dir) => {
    const file = `${dir}/input.txt`;
    await Deno.writeTextFile(file, "1 2 3");
    const parse = Stage.make({
      name: "t.parse",
      version: 1,
      inputs: { text: Source.fileRefCodec },
      output: Nums,
      run: ({ text }) =>
        Effect.promise(() => Deno.readTextFile(text.path)).pipe(Effect.map((t) => t.split(" ").map(Number))),
    });
    const s = testStages(new Runs());
    const p = Pipeline.empty.source("text", Source.file(file)).node("values", parse, { inputs: { text: "text" } }).node(
      "total",
      s.sum,
      {
        inputs: { values: "values" },
      },
    );
    const cache = `${dir}/cache`;
    assert.equal((await inDir(cache, Runner.run(p, ["total"]))).outputs.total, 6);
    assert.deepEqual(statuses((await inDir(cache, Runner.run(p, ["total"]))).report), {
      text: "source",
      values: "hit",
      total: "hit",
    });
    await Deno.writeTextFile(file, "1 2 3 4");
    const plan = await inDir(cache, Runner.explain(p, ["total"]));
    assert.equal(plan.steps[1]?.status, "miss");
    assert.equal(plan.steps[1]?.reason, "changed input 'text'");
    assert.equal((await inDir(cache, Runner.run(p, ["total"]))).outputs.total, 10);
  }));

Deno.test("a fully cached run loads only the outputs that were asked for", () =>
  withTempDir(async (dir) => {
    const decoded: string[] = [];
    const counting = <A>(name: string, codec: Codec<A>): Codec<A> => ({
      id: codec.id,
      encode: (v) => codec.encode(v),
      decode: (p) => Effect.tap(codec.decode(p), () => Effect.sync(() => decoded.push(name))),
    });
    const runs = new Runs();
    const s = testStages(runs);
    const sumCounting = Stage.make({ ...s.sum, output: counting("total", s.sum.output), run: s.sum.run });
    const scaleCounting = Stage.make({ ...s.scale, output: counting("scaled", s.scale.output), run: s.scale.run });
    const p = Pipeline.empty
      .node("numbers", s.numbers, { config: { n: 3 } })
      .node("scaled", scaleCounting, { inputs: { values: "numbers" }, config: { factor: 2 } })
      .node("total", sumCounting, { inputs: { values: "scaled" } });
    await inDir(dir, Runner.run(p, ["total"]));
    decoded.length = 0;
    const { outputs } = await inDir(dir, Runner.run(p, ["total"]));
    assert.equal(outputs.total, 12);
    assert.deepEqual(decoded, ["total"]);
  }));

Deno.test("a failing node keeps every completed entry; the rerun resumes from them", () =>
  withTempDir(async (dir) => {
    class Flaky extends Data.TaggedError("Flaky")<{ readonly message: string }> {}
    let fail = true;
    const flaky = Stage.make({
      name: "t.flaky",
      version: 1,
      inputs: { values: Nums },
      output: Nums,
      run: ({ values }) => (fail ? Effect.fail(new Flaky({ message: "transient" })) : Effect.succeed(values)),
    });
    const runs = new Runs();
    const s = testStages(runs);
    const p = Pipeline.empty
      .node("numbers", s.numbers, { config: { n: 3 } })
      .node("scaled", s.scale, { inputs: { values: "numbers" }, config: { factor: 2 } })
      .node("checked", flaky, { inputs: { values: "scaled" } });
    const err = await inDir(dir, Effect.flip(Runner.run(p, ["checked"], { concurrency: 1 })));
    assert.match(err.message, /node 'checked' \(stage t\.flaky\) failed: Flaky: transient/);
    fail = false;
    const { report } = await inDir(dir, Runner.run(p, ["checked"]));
    assert.deepEqual(statuses(report), { numbers: "hit", scaled: "hit", checked: "computed" });
    assert.equal(runs.of("scale"), 1);
  }));

Deno.test("a flipped payload byte: `cache verify` reports it, the next run quarantines and recomputes", () =>
  withTempDir(async (dir) => {
    const { report } = await inDir(dir, Runner.run(chain(new Runs()), ["scaled"]));
    const key = report.find((s) => s.node === "scaled")?.key as string;
    const payload = `${dir}/objects/${key}/value.json`;
    const bytes = await Deno.readFile(payload);
    bytes[1] = (bytes[1] as number) ^ 0x01;
    await Deno.writeFile(payload, bytes);

    const verify = await deno([...taskArgs("cache"), "--cache", dir, "verify"]);
    assert.equal(verify.code, 1);
    assert.match(verify.stdout, new RegExp(`CORRUPT ${key}: value\\.json does not match its recorded sha256`));
    assert.match(verify.stdout, /1 of 2 entries verified, 1 corrupt/);
    assert.match(verify.stderr, /^error: 1 corrupt cache entry/);

    const runs = new Runs();
    const again = await inDir(dir, Runner.run(chain(runs), ["scaled"]));
    assert.deepEqual(again.outputs.scaled, [2, 4, 6, 8, 10]);
    assert.equal(runs.of("scale"), 1);
    const quarantined = [...Deno.readDirSync(`${dir}/quarantine`)].map((e) => e.name);
    assert.equal(quarantined.length, 1);
    assert.ok(quarantined[0]?.startsWith(key));
    assert.equal((await deno([...taskArgs("cache"), "--cache", dir, "verify"])).code, 0);
  }));

Deno.test("a damaged manifest is reported by explain and recomputed by run", () =>
  withTempDir(async (dir) => {
    const { report } = await inDir(dir, Runner.run(chain(new Runs()), ["numbers"]));
    const key = report[0]?.key as string;
    await Deno.writeTextFile(`${dir}/objects/${key}/manifest.json`, "{ not json");
    const plan = await inDir(dir, Runner.explain(chain(new Runs()), ["numbers"]));
    assert.equal(plan.steps[0]?.status, "miss");
    assert.match(plan.steps[0]?.reason ?? "", /^corrupt entry \(manifest\.json is unreadable/);
    const again = await inDir(dir, Runner.run(chain(new Runs()), ["numbers"]));
    assert.equal(again.report[0]?.status, "computed");
  }));

Deno.test("an environment tag change (e.g. another backend) is a miss that says so", () =>
  withTempDir(async (dir) => {
    const tagged = (environment: string) =>
      Stage.make({
        name: "t.tagged",
        version: 1,
        inputs: {},
        output: Nums,
        environment: Effect.succeed(environment),
        run: () => Effect.succeed([1]),
      });
    await inDir(dir, Runner.run(Pipeline.empty.node("t", tagged("wasm/tfjs-4.22.0"), {}), ["t"]));
    const same = await inDir(dir, Runner.explain(Pipeline.empty.node("t", tagged("wasm/tfjs-4.22.0"), {}), ["t"]));
    assert.equal(same.steps[0]?.status, "hit");
    const other = await inDir(dir, Runner.explain(Pipeline.empty.node("t", tagged("webgpu/tfjs-4.22.0"), {}), ["t"]));
    assert.equal(other.steps[0]?.status, "miss");
    assert.equal(other.steps[0]?.reason, "environment changed: wasm/tfjs-4.22.0 → webgpu/tfjs-4.22.0");
  }));
