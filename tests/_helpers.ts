/** Test helpers: small stages that count their runs, and ways to run pipelines against a store. */
import { Effect, Layer, Schema } from "effect";
import { FileStore, json, MemoryStore, Progress, Stage, Store } from "../mod.ts";

/** One case of tests/fixtures/evaluation/instances.json: two label maps, an IoU threshold, the golden metrics. */
export interface InstanceCase {
  name: string;
  true: string;
  pred: string;
  iou: number;
  expected: Record<string, number | null>;
}

export const Num = json(Schema.Number);
export const Nums = json(Schema.Array(Schema.Number));
export const Text = json(Schema.String);

/** Counts how often each stage ran. */
export class Runs {
  readonly counts = new Map<string, number>();
  hit(name: string): Effect.Effect<void> {
    return Effect.sync(() => void this.counts.set(name, (this.counts.get(name) ?? 0) + 1));
  }
  of(name: string): number {
    return this.counts.get(name) ?? 0;
  }
}

/** A stage family used across the tests: numbers → scaled → summed, each counting its runs. */
export const testStages = (runs: Runs, versions: { scale?: number } = {}) => ({
  numbers: Stage.make({
    name: "t.numbers",
    version: 1,
    config: Schema.Struct({ n: Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0))) }),
    inputs: {},
    output: Nums,
    run: (_, { n }) => Effect.as(runs.hit("numbers"), Array.from({ length: n }, (_, i) => i + 1)),
  }),
  scale: Stage.make({
    name: "t.scale",
    version: versions.scale ?? 1,
    config: Schema.Struct({
      factor: Schema.Number,
      label: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("x"))),
    }),
    inputs: { values: Nums },
    output: Nums,
    run: ({ values }, { factor }) => Effect.as(runs.hit("scale"), values.map((v) => v * factor)),
  }),
  sum: Stage.make({
    name: "t.sum",
    version: 1,
    inputs: { values: Nums },
    output: Num,
    run: ({ values }) => Effect.as(runs.hit("sum"), values.reduce((a, b) => a + b, 0)),
  }),
  parity: Stage.make({
    name: "t.parity",
    version: 1,
    inputs: { value: Num },
    output: Text,
    run: ({ value }) => Effect.as(runs.hit("parity"), value % 2 === 0 ? "even" : "odd"),
  }),
});

/** Runs an effect against a file store in `dir`, with silent progress. */
export const inDir = <A, E>(dir: string, effect: Effect.Effect<A, E, Store | Progress>): Promise<A> =>
  Effect.runPromise(effect.pipe(Effect.provide(Layer.mergeAll(FileStore.layer(dir), Progress.silent))));

/** Runs an effect against a fresh memory store, with silent progress. */
export const inMemory = <A, E>(effect: Effect.Effect<A, E, Store | Progress>): Promise<A> =>
  Effect.runPromise(effect.pipe(Effect.provide(Layer.mergeAll(MemoryStore.layer, Progress.silent))));

/** Runs `f` with a fresh temporary directory, removed afterwards. */
export const withTempDir = async <A>(f: (dir: string) => Promise<A>): Promise<A> => {
  const dir = await Deno.makeTempDir({ prefix: "ivaan-test-" });
  try {
    return await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
};

/** Runs a deno subcommand, returning exit code and captured output. */
export const deno = async (args: string[], env: Record<string, string> = {}) => {
  const out = await new Deno.Command(Deno.execPath(), { args, env, stdout: "piped", stderr: "piped", stdin: "null" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
};

/** A loopback port free a moment ago (bound to port 0, then released): servers started by tests listen on it. */
export const freePort = (): number => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
};

/** Whether something accepts connections on loopback `port`. */
export const listening = async (port: number): Promise<boolean> => {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
};
