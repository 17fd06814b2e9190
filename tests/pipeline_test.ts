import assert from "node:assert/strict";
import { Data, Effect, Schema } from "effect";
import { json, Pipeline, Runner, Source, Stage } from "../mod.ts";
import { inMemory, Nums, Runs, testStages } from "./_helpers.ts";

const build = (runs: Runs) => {
  const s = testStages(runs);
  return Pipeline.empty
    .node("numbers", s.numbers, { config: { n: 4 } })
    .node("doubled", s.scale, { inputs: { values: "numbers" }, config: { factor: 2 } })
    .node("tripled", s.scale, { inputs: { values: "numbers" }, config: { factor: 3 } })
    .node("sumDoubled", s.sum, { inputs: { values: "doubled" } })
    .node("sumTripled", s.sum, { inputs: { values: "tripled" } })
    .node("parity", s.parity, { inputs: { value: "sumTripled" } });
};

// `deno test` type-checks this file: if a line below compiled, its unused @ts-expect-error
// directive would fail the check, so these lines are the proof that mis-wiring does not compile.
Deno.test("mis-wiring is a compile error", () => {
  const s = testStages(new Runs());
  const p = Pipeline.empty.node("numbers", s.numbers, { config: { n: 2 } }).node("total", s.sum, {
    inputs: { values: "numbers" },
  });
  const wrongType = () =>
    // @ts-expect-error: 'total' produces a number, 'values' wants number[]
    p.node("bad", s.sum, { inputs: { values: "total" } });
  assert.equal(typeof wrongType, "function"); // never called: nothing at run time can see codec types
  // @ts-expect-error: an unknown node name
  assert.throws(() => p.node("bad2", s.sum, { inputs: { values: "nope" } }), /unknown node 'nope'/);
  // @ts-expect-error: a missing config field
  p.node("bad3", s.scale, { inputs: { values: "numbers" }, config: { label: "y" } });
  // @ts-expect-error: a name used twice
  assert.throws(() => p.node("total", s.sum, { inputs: { values: "numbers" } }), /already defined/);
});

Deno.test("the same stage in several nodes with different configs (ablations)", async () => {
  const runs = new Runs();
  const { outputs, report } = await inMemory(Runner.run(build(runs), ["sumDoubled", "sumTripled"]));
  assert.equal(outputs.sumDoubled, 20);
  assert.equal(outputs.sumTripled, 30);
  assert.equal(runs.of("scale"), 2);
  assert.equal(report.filter((s) => s.status === "computed").length, 5);
});

Deno.test("running computes only the ancestors of the requested outputs", async () => {
  const runs = new Runs();
  const { outputs, report } = await inMemory(Runner.run(build(runs), ["sumDoubled"]));
  assert.equal(outputs.sumDoubled, 20);
  assert.deepEqual(report.map((s) => s.node), ["numbers", "doubled", "sumDoubled"]);
  assert.equal(runs.of("scale"), 1);
  assert.equal(runs.of("parity"), 0);
});

Deno.test("toMermaid prints nodes and labelled edges", () => {
  const m = build(new Runs()).toMermaid();
  assert.match(m, /^flowchart LR/);
  assert.match(m, /n_doubled\["doubled<br\/>t\.scale v1"\]/);
  assert.match(m, /n_numbers -->\|values\| n_tripled/);
  assert.match(m, /n_sumTripled -->\|value\| n_parity/);
  assert.equal(m.split("\n").filter((l) => l.includes("-->")).length, 5);
});

Deno.test("an unknown requested node lists the known ones", async () => {
  const err = await inMemory(Effect.flip(Runner.run(build(new Runs()), ["sumDubled"])));
  assert.equal(err._tag, "UnknownNode");
  assert.match(
    err.message,
    /unknown node 'sumDubled'; known nodes: numbers, doubled, tripled, sumDoubled, sumTripled, parity/,
  );
});

Deno.test("a malformed config names the node, the field, the expected type and the value found", async () => {
  const s = testStages(new Runs());
  const p = Pipeline.empty
    .node("numbers", s.numbers, { config: { n: -1 } })
    .node("scaled", s.scale, {
      inputs: { values: "numbers" },
      config: { factor: "2" as unknown as number, label: "a" },
    });
  const err = await inMemory(Effect.flip(Runner.explain(p, ["scaled"])));
  assert.equal(err._tag, "ConfigInvalid");
  assert.match(
    err.message,
    /node 'numbers' \(stage t\.numbers\): n: expected a value greater than or equal to 0, found -1/,
  );
  const err2 = await inMemory(
    Effect.flip(Runner.run(p.node("sum", s.sum, { inputs: { values: "scaled" } }), ["scaled"])),
  );
  assert.match(err2.message, /node 'numbers'/);
  const p2 = Pipeline.empty.node("numbers", s.numbers, { config: { n: 1 } }).node("scaled", s.scale, {
    inputs: { values: "numbers" },
    config: { factor: "2", extra: true } as unknown as { factor: number },
  });
  const err3 = await inMemory(Effect.flip(Runner.run(p2, ["scaled"])));
  assert.match(
    err3.message,
    /node 'scaled' \(stage t\.scale\): extra: unknown field, found true; factor: expected number, found "2"/,
  );
});

Deno.test("a failing stage fails the run with the node name and its typed error", async () => {
  class Boom extends Data.TaggedError("Boom")<{ readonly message: string }> {}
  const fails = Stage.make({
    name: "t.fails",
    version: 1,
    inputs: { values: Nums },
    output: Nums,
    run: () => Effect.fail(new Boom({ message: "no luck" })),
  });
  const runs = new Runs();
  const p = build(runs).node("broken", fails, { inputs: { values: "doubled" } });
  const err = await inMemory(Effect.flip(Runner.run(p, ["broken"])));
  assert.equal(err._tag, "NodeFailed");
  if (err._tag !== "NodeFailed") return;
  assert.equal(err.node, "broken");
  assert.ok(err.error instanceof Boom);
  assert.match(err.message, /node 'broken' \(stage t\.fails\) failed: Boom: no luck/);
});

Deno.test("sources: in-line values and files feed stages", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/a.txt`, "hello");
    const length = Stage.make({
      name: "t.length",
      version: 1,
      inputs: { file: Source.fileRefCodec },
      output: json(Schema.Number),
      run: ({ file }) => Effect.promise(() => Deno.readTextFile(file.path)).pipe(Effect.map((t) => t.length)),
    });
    const s = testStages(new Runs());
    const p = Pipeline.empty
      .source("values", Source.value(Nums, [1, 2, 3]))
      .source("file", Source.file(`${dir}/a.txt`))
      .node("sum", s.sum, { inputs: { values: "values" } })
      .node("length", length, { inputs: { file: "file" } });
    const { outputs } = await inMemory(Runner.run(p, ["sum", "length"]));
    assert.deepEqual(outputs, { sum: 6, length: 5 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
