/**
 * The runner: plans and runs the part of a pipeline that the requested outputs need.
 *
 * Mental model: every stage node gets a key from its stage name and version, its canonical config,
 * its environment tag and the digests of its inputs. A key found in the store is a hit: only its
 * manifest is read, and its payload is loaded (and verified) only if a consumer or the caller needs
 * the value. A miss computes the node under the key's lock, writes the entry atomically, and
 * passes on the digest of the encoded output, so an upstream rerun that produces identical bytes
 * leaves downstream keys unchanged (early cutoff).
 *
 * Common tasks: `explain(p, ["x"])` → a Plan (hit/miss and why, nothing computed);
 * `run(p, ["x"])` → `{ outputs: { x }, report }`. Independent nodes run concurrently, at most
 * `concurrency` stages at once. A failing stage fails the run with NodeFailed (node name + the
 * stage's typed error); entries completed before that stay in the store.
 *
 * Gotcha: a corrupt entry is reported, quarantined and recomputed; it is never trusted.
 */
import { Effect, Option, Schema, Semaphore } from "effect";
import { describeValue, schemaProblems } from "./schema_problems.ts";
import { CacheCorrupt, ConfigInvalid, NodeFailed, UnknownNode } from "./errors.ts";
import type { CodecError, SourceError, StoreError } from "./errors.ts";
import type { Digest } from "./hash.ts";
import { type CanonicalValue, nodeKey } from "./key.ts";
import type { Pipeline, PipelineNode, StageNode } from "./pipeline.ts";
import { Progress, track, type Tracker } from "./progress.ts";
import { makeManifest, type Manifest, Store } from "./store/store.ts";

/** Errors a run can end with; `E` are the stages' own errors, wrapped in NodeFailed. */
export type RunError<E> = NodeFailed<E> | ConfigInvalid | UnknownNode | SourceError | StoreError | CodecError;

/** What the runner did (or, in a plan, will do) for one node. */
export interface Step {
  readonly node: string;
  /** stage name, or "source" */
  readonly stage: string;
  /** plan: source | hit | miss | pending (key known after upstream runs); run: source | hit | computed */
  readonly status: "source" | "hit" | "miss" | "pending" | "computed";
  readonly key?: Digest;
  readonly digest?: Digest;
  /** why a miss is a miss; which upstream a pending node waits for */
  readonly reason?: string;
  readonly durationMs?: number;
}

/** The plan of a run: one step per needed node, in topological order. */
export interface Plan {
  readonly targets: ReadonlyArray<string>;
  readonly steps: ReadonlyArray<Step>;
}

export interface RunOptions {
  /** at most this many stages compute at once (default: number of CPUs) */
  readonly concurrency?: number;
}

type Outputs<Nodes, T extends string> = { readonly [K in T]: K extends keyof Nodes ? Nodes[K] : never };

/** Decodes a node's config: the decoded value for `run` and the canonical encoded form for the key. */
const decodeConfig = (node: StageNode) =>
  Schema.decodeUnknownEffect(node.stage.config)(node.config, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError((e) =>
      new ConfigInvalid({ node: node.name, stage: node.stage.name, problems: schemaProblems(e, node.config) })
    ),
    Effect.flatMap((decoded) =>
      Schema.encodeUnknownEffect(node.stage.config)(decoded).pipe(
        Effect.orDie, // a config that decodes must encode; anything else is a bug in its Schema
        Effect.map((canonical) => ({ decoded, canonical: canonical as CanonicalValue })),
      )
    ),
  );

const changedFields = (before: unknown, after: unknown): string => {
  const isRecord = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isRecord(before) || !isRecord(after)) return `${describeValue(before)} → ${describeValue(after)}`;
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return keys
    .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]))
    .map((k) => `${k} ${describeValue(before[k])} → ${describeValue(after[k])}`)
    .join(", ");
};

/** Why `key` is not in the store, from the last entry written for the same node and stage. */
const missReason = (
  node: StageNode,
  parts: {
    readonly config: CanonicalValue;
    readonly environment: string;
    readonly inputs: Readonly<Record<string, Digest>>;
  },
) =>
  Effect.flatMap(Store, (store) => store.latest(node.name, node.stage.name)).pipe(Effect.map(Option.match({
    onNone: () => "no entry for this node yet",
    onSome: (last: Manifest) => {
      if (last.version !== node.stage.version) return `version bump ${last.version} → ${node.stage.version}`;
      if (JSON.stringify(last.config) !== JSON.stringify(parts.config)) {
        return `new config: ${changedFields(last.config, parts.config)}`;
      }
      if (
        last.environment !== parts.environment
      ) return `environment changed: ${last.environment} → ${parts.environment}`;
      const changed = Object.keys(parts.inputs).filter((k) => last.inputs[k] !== parts.inputs[k]).sort();
      return changed.length > 0
        ? `changed input ${changed.map((c) => `'${c}'`).join(", ")}`
        : "no entry for this key (removed?)";
    },
  })));

/** Everything about a stage node that does not need its inputs' values. */
const prepare = (node: StageNode, inputs: Readonly<Record<string, Digest>>) =>
  Effect.gen(function* () {
    const { decoded, canonical } = yield* decodeConfig(node);
    const environment = yield* node.stage.environment;
    const key = nodeKey({
      stage: node.stage.name,
      version: node.stage.version,
      config: canonical,
      inputs,
      environment,
    });
    return { key, config: decoded, canonical, environment, inputs };
  });

const checkTargets = <Nodes extends Record<string, unknown>, E, R>(
  pipeline: Pipeline<Nodes, E, R>,
  targets: ReadonlyArray<string>,
) =>
  Effect.forEach(
    targets,
    (t) => pipeline.nodes.has(t) ? Effect.void : Effect.fail(new UnknownNode({ node: t, known: pipeline.names })),
    { discard: true },
  );

/** Input digests of a stage node from the digests of the nodes it is wired to. */
const inputDigests = (node: StageNode, digests: ReadonlyMap<string, Digest>): Record<string, Digest> | undefined => {
  const out: Record<string, Digest> = {};
  for (const [input, from] of Object.entries(node.inputs)) {
    const d = digests.get(from);
    if (d === undefined) return undefined;
    out[input] = d;
  }
  return out;
};

/**
 * The plan for computing `targets`: for each needed node, hit or miss and why. Reads manifests
 * and fingerprints sources; computes nothing and changes nothing.
 */
export const explain = <Nodes extends Record<string, unknown>, E, R>(
  pipeline: Pipeline<Nodes, E, R>,
  targets: ReadonlyArray<string>,
): Effect.Effect<Plan, RunError<never>, R | Store> =>
  Effect.gen(function* () {
    yield* checkTargets(pipeline, targets);
    const store = yield* Store;
    const digests = new Map<string, Digest>();
    const steps: Step[] = [];
    for (const node of pipeline.ancestors(targets)) {
      if (node.kind === "source") {
        const { digest } = yield* node.source.resolve;
        digests.set(node.name, digest);
        steps.push({ node: node.name, stage: "source", status: "source", digest, reason: node.source.describe });
        continue;
      }
      const inputs = inputDigests(node, digests);
      if (inputs === undefined) {
        const waiting = Object.values(node.inputs).filter((from) => !digests.has(from));
        yield* decodeConfig(node); // a bad config is reported now, not after the upstream work
        steps.push({
          node: node.name,
          stage: node.stage.name,
          status: "pending",
          reason: `key known after ${waiting.map((w) => `'${w}'`).join(", ")} run`,
        });
        continue;
      }
      const prepared = yield* prepare(node, inputs);
      const found: Option.Option<Manifest> | CacheCorrupt = yield* store.lookup(prepared.key).pipe(
        Effect.catchTag("CacheCorrupt", (e) => Effect.succeed(e)),
      );
      const step = { node: node.name, stage: node.stage.name, key: prepared.key };
      if (found instanceof CacheCorrupt) {
        steps.push({ ...step, status: "miss", reason: `corrupt entry (${found.reason}); will be quarantined` });
      } else if (Option.isNone(found)) {
        steps.push({
          ...step,
          status: "miss",
          reason: yield* missReason(node, { ...prepared, config: prepared.canonical }),
        });
      } else {
        digests.set(node.name, found.value.digest);
        steps.push({ ...step, status: "hit", digest: found.value.digest });
      }
    }
    return { targets, steps };
  });

/** A plan as aligned text lines, for `--explain`. */
export const formatPlan = (plan: Plan): string => {
  const count = (s: Step["status"]) => plan.steps.filter((x) => x.status === s).length;
  const width = Math.max(4, ...plan.steps.map((s) => s.node.length));
  const stageWidth = Math.max(6, ...plan.steps.map((s) => s.stage.length));
  const lines = plan.steps.map((s) => {
    const id = s.key ?? s.digest;
    const detail = s.status === "hit" ? "" : s.reason ?? "";
    return `  ${s.node.padEnd(width)}  ${s.status.padEnd(7)}  ${s.stage.padEnd(stageWidth)}  ${
      id === undefined ? " ".repeat(12) : id.slice(0, 12)
    }  ${detail}`.trimEnd();
  });
  return [
    `plan for ${plan.targets.join(", ")}: ${plan.steps.length} nodes — ${count("hit")} hit, ${count("miss")} miss, ${
      count("pending")
    } pending, ${count("source")} source`,
    ...lines,
  ].join("\n");
};

interface Resolved<E, R> {
  readonly digest: Digest;
  readonly step: Step;
  /** the node's value, loaded (and verified) at most once, only when asked for */
  readonly value: Effect.Effect<unknown, RunError<E>, R>;
}

/**
 * Computes `targets` (and the ancestors they need), using and filling the store.
 * Returns the target values and one Step per node that was visited.
 */
export const run = <Nodes extends Record<string, unknown>, E, R, const T extends string>(
  pipeline: Pipeline<Nodes, E, R>,
  targets: ReadonlyArray<T>,
  options: RunOptions = {},
): Effect.Effect<
  { readonly outputs: Outputs<Nodes, T>; readonly report: ReadonlyArray<Step> },
  RunError<E>,
  R | Store | Progress
> =>
  Effect.gen(function* () {
    yield* checkTargets(pipeline, targets);
    const store = yield* Store;
    const permits = yield* Semaphore.make(Math.max(1, options.concurrency ?? navigator.hardwareConcurrency ?? 1));
    const needed = pipeline.ancestors(targets);
    const resolvers = new Map<
      string,
      Effect.Effect<Resolved<E, R | Store | Progress>, RunError<E>, R | Store | Progress>
    >();
    type Env = R | Store | Progress;

    const resolveStage = (node: StageNode, tracker: Tracker): Effect.Effect<Resolved<E, Env>, RunError<E>, Env> =>
      Effect.gen(function* () {
        const upstream = yield* Effect.all(
          Object.fromEntries(
            Object.entries(node.inputs).map((
              [input, from],
            ) => [input, resolvers.get(from) as Effect.Effect<Resolved<E, Env>, RunError<E>, Env>]),
          ),
          { concurrency: "unbounded" },
        );
        const digests = Object.fromEntries(Object.entries(upstream).map(([k, r]) => [k, r.digest]));
        const prepared = yield* prepare(node, digests);
        const { key } = prepared;

        const lookup = store.lookup(key).pipe(Effect.catchTag("CacheCorrupt", (e) =>
          Effect.logWarning(`node '${node.name}': ${e.message}; quarantined, recomputing`).pipe(
            Effect.andThen(store.quarantine(key, e.reason)),
            Effect.as(Option.none<Manifest>()),
          )));

        const decode = (payload: Parameters<typeof node.stage.output.decode>[0]) =>
          node.stage.output.decode(payload).pipe(Effect.mapError((e) =>
            e
          ));

        const compute: Effect.Effect<Resolved<E, Env>, RunError<E>, Env> = Effect.gen(function* () {
          const values = yield* Effect.all(Object.fromEntries(Object.entries(upstream).map(([k, r]) => [k, r.value])), {
            concurrency: "unbounded",
          });
          return yield* permits.withPermit(Effect.gen(function* () {
            const started = performance.now();
            const out = yield* (node.stage.run(values, prepared.config) as Effect.Effect<unknown, E, R>).pipe(
              Effect.mapError((error) => new NodeFailed({ node: node.name, stage: node.stage.name, error })),
            );
            const payload = yield* node.stage.output.encode(out);
            const durationMs = performance.now() - started;
            const manifest = makeManifest(
              {
                key,
                node: node.name,
                stage: node.stage.name,
                version: node.stage.version,
                config: prepared.canonical,
                environment: prepared.environment,
                inputs: digests,
                codec: node.stage.output.id,
                durationMs: Math.round(durationMs * 1000) / 1000,
              },
              payload,
              new Date(),
            );
            yield* store.write(manifest, payload);
            yield* Effect.logDebug(`computed '${node.name}' in ${durationMs.toFixed(0)} ms`);
            return {
              digest: manifest.digest,
              step: {
                node: node.name,
                stage: node.stage.name,
                status: "computed" as const,
                key,
                digest: manifest.digest,
                durationMs,
              },
              value: yield* Effect.cached(decode(payload)),
            };
          }));
        });

        const hit = (manifest: Manifest): Effect.Effect<Resolved<E, Env>, RunError<E>, Env> =>
          Effect.gen(function* () {
            yield* store.touch(key);
            const load: Effect.Effect<unknown, RunError<E>, Env> = store.read(manifest).pipe(
              Effect.flatMap(decode),
              Effect.catchTag("CacheCorrupt", (e: CacheCorrupt) =>
                Effect.logWarning(`node '${node.name}': ${e.message}; quarantined, recomputing`).pipe(
                  Effect.andThen(store.quarantine(key, e.reason)),
                  Effect.andThen(store.withLock(key, compute)),
                  Effect.flatMap((r) => r.value),
                )),
            );
            return {
              digest: manifest.digest,
              step: { node: node.name, stage: node.stage.name, status: "hit" as const, key, digest: manifest.digest },
              value: yield* Effect.cached(load),
            };
          });

        const first = yield* lookup;
        const resolved = Option.isSome(first) ? yield* hit(first.value) : yield* store.withLock(
          key,
          // another process may have finished it while we waited for the lock
          Effect.flatMap(
            lookup,
            Option.match({
              onNone: () =>
                compute,
              onSome: hit,
            }),
          ),
        );
        yield* tracker.advance(1);
        return resolved;
      });

    const resolveSource = (
      node: Extract<PipelineNode, { kind: "source" }>,
    ): Effect.Effect<Resolved<E, Env>, RunError<E>, Env> =>
      Effect.gen(function* () {
        const { digest, value } = yield* node.source.resolve;
        return {
          digest,
          step: { node: node.name, stage: "source", status: "source" as const, digest, reason: node.source.describe },
          value: Effect.succeed(value),
        };
      });

    return yield* track(
      "pipeline",
      needed.filter((n) => n.kind === "stage").length,
      (tracker) =>
        Effect.gen(function* () {
          for (const node of needed) {
            resolvers.set(
              node.name,
              yield* Effect.cached(node.kind === "source" ? resolveSource(node) : resolveStage(node, tracker)),
            );
          }
          const resolved = yield* Effect.all(
            needed.map((n) => resolvers.get(n.name) as Effect.Effect<Resolved<E, Env>, RunError<E>, Env>),
            {
              concurrency: "unbounded",
            },
          );
          const outputs = yield* Effect.all(
            Object.fromEntries(targets.map((t) => [
              t,
              (resolved[
                needed.findIndex((n) => n.name === t)
              ] as Resolved<E, Env>).value,
            ])),
            { concurrency: "unbounded" },
          );
          return { outputs: outputs as Outputs<Nodes, T>, report: resolved.map((r) => r.step) };
        }),
    );
  });
