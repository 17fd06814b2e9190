/**
 * The pipeline framework's errors: flat tagged classes, each with a message that names the node,
 * file or field and says what was expected. Stage errors stay the stages' own; the runner wraps
 * them in `NodeFailed`, which keeps the original typed error in `error`.
 */
import { Data } from "effect";

/** A node's config does not decode with its stage's Schema. */
export class ConfigInvalid extends Data.TaggedError("ConfigInvalid")<{
  readonly node: string;
  readonly stage: string;
  /** one line per problem: `field: expected …, found …` */
  readonly problems: ReadonlyArray<string>;
}> {
  override get message(): string {
    return `invalid config for node '${this.node}' (stage ${this.stage}): ${this.problems.join("; ")}`;
  }
}

/** A requested node is not part of the pipeline. */
export class UnknownNode extends Data.TaggedError("UnknownNode")<{
  readonly node: string;
  readonly known: ReadonlyArray<string>;
}> {
  override get message(): string {
    return `unknown node '${this.node}'; known nodes: ${this.known.join(", ")}`;
  }
}

/** A source (file, directory) could not be read or fingerprinted. */
export class SourceError extends Data.TaggedError("SourceError")<{
  readonly path: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `cannot read source ${this.path}: ${this.reason}`;
  }
}

/** A value could not be encoded to, or decoded from, its payload files. */
export class CodecError extends Data.TaggedError("CodecError")<{
  readonly codec: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `${this.codec} codec: ${this.reason}`;
  }
}

/** A stored entry failed verification (digest, sizes or manifest). It is never trusted. */
export class CacheCorrupt extends Data.TaggedError("CacheCorrupt")<{
  readonly key: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `cache entry ${this.key} is corrupt: ${this.reason}`;
  }
}

/** The store itself failed (unwritable directory, full disk, …). */
export class StoreError extends Data.TaggedError("StoreError")<{
  readonly path: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `cache store error at ${this.path}: ${this.reason}`;
  }
}

/** A stage's `run` failed; `error` is the stage's own typed error. */
export class NodeFailed<E = unknown> extends Data.TaggedError("NodeFailed")<{
  readonly node: string;
  readonly stage: string;
  readonly error: E;
}> {
  override get message(): string {
    const e = this.error as { readonly _tag?: unknown; readonly message?: unknown };
    const tag = typeof e?._tag === "string" ? `${e._tag}: ` : "";
    const text = typeof e?.message === "string" ? e.message : String(this.error);
    return `node '${this.node}' (stage ${this.stage}) failed: ${tag}${text}`;
  }
}
