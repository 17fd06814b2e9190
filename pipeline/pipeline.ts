/**
 * Pipelines: a typed DAG of named nodes. A node is a source or a stage with its inputs wired to
 * earlier nodes by name, and its config.
 *
 * Mental model: `Pipeline.empty.source("raw", …).node("parsed", parse, { inputs: { text: "raw" } })`
 * builds an immutable value whose type records every node's output type, so wiring an input to a
 * node of the wrong type is a compile error. The same stage may appear under several names with
 * different configs (ablations). Nodes are added after their inputs, so insertion order is a
 * topological order and cycles cannot be built.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect";
 * import { json, Pipeline, Source, Stage } from "./mod.ts";
 *
 * const numbers = json(Schema.Array(Schema.Number));
 * const scale = Stage.make({
 *   name: "scale",
 *   version: 1,
 *   config: Schema.Struct({ factor: Schema.Number }),
 *   inputs: { values: numbers },
 *   output: numbers,
 *   run: ({ values }, { factor }) => Effect.succeed(values.map((v) => v * factor)),
 * });
 * const pipeline = Pipeline.empty
 *   .source("values", Source.value(numbers, [1, 2, 3]))
 *   .node("doubled", scale, { inputs: { values: "values" }, config: { factor: 2 } })
 *   .node("tripled", scale, { inputs: { values: "values" }, config: { factor: 3 } });
 * console.log(pipeline.toMermaid());
 * ```
 */
import type { Source } from "./source.ts";
import type { AnyStage, StageConfig, StageError, StageInputs, StageOutput, StageRequirements } from "./stage.ts";
import type { CodecType } from "./codec/codec.ts";

/** A source node. */
export interface SourceNode {
  readonly kind: "source";
  readonly name: string;
  readonly source: Source<unknown>;
}

/** A stage node: the stage, the node each input is wired to, and the (encoded) config given. */
export interface StageNode {
  readonly kind: "stage";
  readonly name: string;
  readonly stage: AnyStage;
  readonly inputs: Readonly<Record<string, string>>;
  readonly config: unknown;
}

export type PipelineNode = SourceNode | StageNode;

/** Names of the nodes in `Nodes` whose output is assignable to `T`. */
export type NodesProducing<Nodes, T> =
  & {
    [K in keyof Nodes]-?: [Nodes[K]] extends [T] ? K : never;
  }[keyof Nodes]
  & string;

/** The type of an object with no keys (what `{}` means in a type position is something else). */
type Empty = Record<never, never>;

/** How a stage is wired into a pipeline: inputs by node name, and config (optional when all fields default). */
export type Wiring<Nodes, S extends AnyStage> =
  & (keyof StageInputs<S> extends never ? { readonly inputs?: Record<string, never> }
    : {
      readonly inputs: { readonly [K in keyof StageInputs<S>]: NodesProducing<Nodes, CodecType<StageInputs<S>[K]>> };
    })
  & (Empty extends StageConfig<S>["Encoded"] ? { readonly config?: StageConfig<S>["Encoded"] }
    : { readonly config: StageConfig<S>["Encoded"] });

/** A node name not yet used (any string for pipelines built in loops over a widened `Record<string, T>`). */
export type FreshName<N extends string, Nodes> = string extends keyof Nodes ? N : N extends keyof Nodes ? never : N;

const NODE_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * A typed pipeline. `Nodes` maps node names to output types; `E` and `R` collect the stages'
 * errors and requirements.
 */
export class Pipeline<Nodes extends Record<string, unknown>, E = never, R = never> {
  declare readonly _Nodes: Nodes;
  declare readonly _E: E;
  declare readonly _R: R;

  private constructor(readonly nodes: ReadonlyMap<string, PipelineNode>) {}

  /** The pipeline with no nodes. */
  static readonly empty: Pipeline<Empty> = new Pipeline(new Map());

  /**
   * An empty pipeline whose nodes all have type T, for pipelines built in loops (generated node
   * names). Wiring is still checked against T.
   */
  static dynamic<T>(): Pipeline<Record<string, T>> {
    return new Pipeline(new Map());
  }

  /** Adds a source node. */
  source<const N extends string, A>(
    name: FreshName<N, Nodes>,
    source: Source<A>,
  ): Pipeline<Nodes & { readonly [K in N]: A }, E, R> {
    return new Pipeline(this.add({ kind: "source", name, source: source as Source<unknown> }));
  }

  /** Adds a stage node; its inputs name earlier nodes of matching output types. */
  node<const N extends string, S extends AnyStage>(
    name: FreshName<N, Nodes>,
    stage: S,
    wiring: Wiring<Nodes, S>,
  ): Pipeline<Nodes & { readonly [K in N]: StageOutput<S> }, E | StageError<S>, R | StageRequirements<S>> {
    const inputs: Record<string, string> = { ...(wiring.inputs ?? {}) };
    const expected = Object.keys(stage.inputs).sort();
    const given = Object.keys(inputs).sort();
    if (expected.join("\0") !== given.join("\0")) {
      throw new TypeError(`node '${name}': stage ${stage.name} takes inputs [${expected}], wired [${given}]`);
    }
    for (const [input, from] of Object.entries(inputs)) {
      if (!this.nodes.has(from)) {
        throw new TypeError(`node '${name}': input '${input}' is wired to unknown node '${from}'`);
      }
    }
    return new Pipeline(this.add({ kind: "stage", name, stage, inputs, config: wiring.config ?? {} }));
  }

  private add(node: PipelineNode): Map<string, PipelineNode> {
    if (!NODE_NAME.test(node.name)) {
      throw new TypeError(`node name ${JSON.stringify(node.name)} must match ${NODE_NAME}`);
    }
    if (this.nodes.has(node.name)) throw new TypeError(`node '${node.name}' is already defined`);
    return new Map([...this.nodes, [node.name, node]]);
  }

  /** Node names in topological order. */
  get names(): ReadonlyArray<string> {
    return [...this.nodes.keys()];
  }

  /** The requested nodes and all their ancestors, in topological order. */
  ancestors(targets: ReadonlyArray<string>): ReadonlyArray<PipelineNode> {
    const needed = new Set<string>();
    const visit = (name: string) => {
      if (needed.has(name)) return;
      needed.add(name);
      const node = this.nodes.get(name);
      if (node?.kind === "stage") Object.values(node.inputs).forEach(visit);
    };
    targets.forEach(visit);
    return [...this.nodes.values()].filter((n) => needed.has(n.name));
  }

  /** The graph as a Mermaid flowchart: sources as stadiums, stages as boxes, edges labelled by input. */
  toMermaid(): string {
    const id = (name: string) => `n_${name.replace(/[^A-Za-z0-9_]/g, "_")}`;
    const lines = ["flowchart LR"];
    for (const node of this.nodes.values()) {
      lines.push(
        node.kind === "source"
          ? `  ${id(node.name)}(["${node.name}<br/>${node.source.describe.replaceAll('"', "'")}"])`
          : `  ${id(node.name)}["${node.name}<br/>${node.stage.name} v${node.stage.version}"]`,
      );
    }
    for (const node of this.nodes.values()) {
      if (node.kind !== "stage") continue;
      for (const [input, from] of Object.entries(node.inputs).sort()) {
        lines.push(`  ${id(from)} -->|${input}| ${id(node.name)}`);
      }
    }
    return lines.join("\n");
  }
}

/** The output type of node `K` of a pipeline. */
export type NodeOutput<P, K extends string> = P extends Pipeline<infer Nodes, infer _E, infer _R> ? Nodes[K] : never;
