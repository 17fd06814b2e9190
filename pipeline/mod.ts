/**
 * `pipeline/`: the typed, cached DAG framework. It knows nothing about nuclei.
 *
 * Mental model: write pure stages (`Stage.make`), wire them into a `Pipeline` by name, and ask
 * the runner for outputs. Every stage result is stored under a content-addressed key (stage name,
 * version, canonical config, input digests, environment), so a rerun recomputes only what changed
 * and an upstream rerun with identical output bytes leaves downstream results valid.
 *
 * Common task:
 * ```ts
 * import { Effect } from "effect";
 * import { FileStore, Pipeline, Progress, Runner } from "./mod.ts";
 * declare const pipeline: Pipeline<{ report: string }>;
 * const program = Effect.gen(function* () {
 *   console.log(Runner.formatPlan(yield* Runner.explain(pipeline, ["report"])));
 *   const { outputs } = yield* Runner.run(pipeline, ["report"]);
 *   return outputs.report;
 * }).pipe(Effect.provide(FileStore.layer(".ivaan-cache")), Effect.provide(Progress.auto));
 * ```
 *
 * Gotchas: bump a stage's `version` when its code changes its output; configs must be JSON-like
 * (they are keyed canonically); stages never read the store or files they were not given.
 */
export * as Stage from "./stage.ts";
export type { AnyStage, ConfigSchema, InputValues } from "./stage.ts";
export { type NodeOutput, Pipeline, type PipelineNode } from "./pipeline.ts";
export * as Source from "./source.ts";
export type { DirRef, FileRef } from "./source.ts";
export * as Runner from "./run.ts";
export type { Plan, RunError, RunOptions, Step } from "./run.ts";
export { Progress, track, type Tracker } from "./progress.ts";
export { type Manifest, Store, type StoreShape } from "./store/store.ts";
export * as FileStore from "./store/file.ts";
export * as MemoryStore from "./store/memory.ts";
export * as RemoteStore from "./store/remote.ts";
export * as Gc from "./store/gc.ts";
export { bytes, type Codec, type CodecType, type Payload } from "./codec/codec.ts";
export { json } from "./codec/json.ts";
export {
  decodeSafetensors,
  encodeSafetensors,
  type HostTensor,
  safetensors,
  tensor,
  type TensorFile,
} from "./codec/safetensors.ts";
export { decodePng, encodePng, png, type RasterImage } from "./codec/png.ts";
export { canonicalBytes, type CanonicalValue, type KeyParts, nodeKey } from "./key.ts";
export { type Digest, sha256 } from "./hash.ts";
export * from "./errors.ts";
