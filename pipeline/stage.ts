/**
 * A stage is one pure step of a pipeline: a name, a version, a config Schema, named typed inputs,
 * an output codec and a `run` function returning an Effect.
 *
 * Mental model: a stage is a function `run(inputs, config)` plus everything the framework needs
 * to cache it — what it is called and which version of its code it is (the key), how its inputs
 * and output are serialised (codecs), and how its config is validated (Schema). A stage never
 * touches the store, never reads files it was not given, never logs setup; caching, progress and
 * concurrency are switched on from outside by the runner.
 *
 * Gotcha: bump `version` whenever the code changes what `run` returns; the cache cannot see code.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect";
 * import { json, Stage } from "./mod.ts";
 *
 * const scale = Stage.make({
 *   name: "scale",
 *   version: 1,
 *   config: Schema.Struct({ factor: Schema.Number }),
 *   inputs: { values: json(Schema.Array(Schema.Number)) },
 *   output: json(Schema.Array(Schema.Number)),
 *   run: ({ values }, { factor }) => Effect.succeed(values.map((v) => v * factor)),
 * });
 * ```
 */
import { Effect, Schema } from "effect";
import type { Codec, CodecType } from "./codec/codec.ts";

/** Named input codecs of a stage. */
export type Inputs = Readonly<Record<string, Codec<unknown>>>;

/** The values a stage's `run` receives for its inputs. */
export type InputValues<In extends Inputs> = { readonly [K in keyof In]: CodecType<In[K]> };

/** A config Schema: decodes JSON-like values, needs no services. */
export type ConfigSchema = Schema.Codec<unknown, unknown, never, never>;

/** A stage; build one with `Stage.make`. */
export interface Stage<In extends Inputs, Out, Cfg extends ConfigSchema, E, R> {
  readonly name: string;
  /** the version of `run`'s code; part of the key */
  readonly version: string;
  readonly config: Cfg;
  readonly inputs: In;
  readonly output: Codec<Out>;
  /** an environment tag (backend, library versions) for results that depend on it; "" when none */
  readonly environment: Effect.Effect<string, never, R>;
  run(inputs: InputValues<In>, config: Cfg["Type"]): Effect.Effect<Out, E, R>;
}

/** Any stage, for constraints. */
// deno-lint-ignore no-explicit-any
export type AnyStage = Stage<any, any, ConfigSchema, any, any>;

/** Parts of a stage type. */
export type StageInputs<S> = S extends Stage<infer In, infer _O, infer _C, infer _E, infer _R> ? In : never;
export type StageOutput<S> = S extends Stage<infer _I, infer O, infer _C, infer _E, infer _R> ? O : never;
export type StageConfig<S> = S extends Stage<infer _I, infer _O, infer C, infer _E, infer _R> ? C : never;
export type StageError<S> = S extends Stage<infer _I, infer _O, infer _C, infer E, infer _R> ? E : never;
export type StageRequirements<S> = S extends Stage<infer _I, infer _O, infer _C, infer _E, infer R> ? R : never;

/** The config of a stage that takes none. */
export const NoConfig = Schema.Struct({});
type NoConfig = typeof NoConfig;

const STAGE_NAME = /^[A-Za-z][A-Za-z0-9_.:-]*$/;

/** Builds a stage. `config` defaults to an empty Struct, `environment` to "". */
export const make = <
  const In extends Inputs,
  Out,
  E = never,
  R = never,
  Cfg extends ConfigSchema = NoConfig,
>(definition: {
  readonly name: string;
  readonly version: string | number;
  readonly config?: Cfg;
  readonly inputs: In;
  readonly output: Codec<Out>;
  readonly environment?: Effect.Effect<string, never, R>;
  readonly run: (inputs: InputValues<In>, config: Cfg["Type"]) => Effect.Effect<Out, E, R>;
}): Stage<In, Out, Cfg, E, R> => {
  if (!STAGE_NAME.test(definition.name)) {
    throw new TypeError(`Stage.make: name ${JSON.stringify(definition.name)} must match ${STAGE_NAME}`);
  }
  return {
    name: definition.name,
    version: String(definition.version),
    config: (definition.config ?? NoConfig) as Cfg,
    inputs: definition.inputs,
    output: definition.output,
    environment: definition.environment ?? Effect.succeed(""),
    run: definition.run,
  };
};
