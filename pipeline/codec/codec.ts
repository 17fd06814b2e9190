/**
 * A codec turns a stage output into payload files and back. Payloads are plain bytes, so the
 * store never holds a closure or a class instance; the digest of a node is the digest of its
 * payload (`digestFiles`), which is what makes early cutoff possible.
 */
import { Effect } from "effect";
import { CodecError } from "../errors.ts";

/** Named files of one encoded value, e.g. `{ "value.json": … }`. Names are flat (no `/`). */
export type Payload = Readonly<Record<string, Uint8Array>>;

/**
 * Encoding and decoding of one output type. Declared with method syntax on purpose: it makes a
 * `Codec<number>` usable where a `Codec<unknown>` is expected (stage input records).
 */
export interface Codec<A> {
  /** recorded in manifests, e.g. `json`, `safetensors`, `png` */
  readonly id: string;
  encode(value: A): Effect.Effect<Payload, CodecError>;
  decode(payload: Payload): Effect.Effect<A, CodecError>;
}

/** The value type of a codec. */
export type CodecType<C> = C extends Codec<infer A> ? A : never;

/** Looks up a payload file or fails with a CodecError naming it. */
export const payloadFile = (codec: string, payload: Payload, name: string): Effect.Effect<Uint8Array, CodecError> => {
  const bytes = payload[name];
  return bytes === undefined
    ? Effect.fail(new CodecError({ codec, reason: `payload file '${name}' is missing` }))
    : Effect.succeed(bytes);
};

/** Raw bytes stored as one file; for stages that already produce an encoded form. */
export const bytes: Codec<Uint8Array> = {
  id: "bytes",
  encode: (value) => Effect.succeed({ "value.bin": value }),
  decode: (payload) => payloadFile("bytes", payload, "value.bin"),
};
