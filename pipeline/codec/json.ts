/**
 * JSON codec validated by a Schema: the value is Schema-encoded, written as `value.json`, and
 * decoded (and validated) with the same Schema on the way back. A value that the Schema rejects
 * is a CodecError naming the field.
 */
import { Effect, Schema } from "effect";
import { CodecError } from "../errors.ts";
import { type Codec, payloadFile } from "./codec.ts";

const FILE = "value.json";

/** A JSON codec for values described by `schema` (no decoding/encoding services). */
export const json = <S extends Schema.Codec<unknown, unknown, never, never>>(schema: S): Codec<S["Type"]> => {
  const codec = Schema.fromJsonString(schema);
  const fail = (action: string) => (e: Schema.SchemaError) =>
    new CodecError({ codec: "json", reason: `${action}: ${e.message.replaceAll("\n", " ")}` });
  return {
    id: "json",
    encode: (value) =>
      Schema.encodeUnknownEffect(codec)(value).pipe(
        Effect.map((text): Record<string, Uint8Array> => ({ [FILE]: new TextEncoder().encode(text as string) })),
        Effect.mapError(fail("value does not match its schema")),
      ),
    decode: (payload) =>
      payloadFile("json", payload, FILE).pipe(
        Effect.flatMap((bytes) =>
          Schema.decodeUnknownEffect(codec)(new TextDecoder().decode(bytes)).pipe(
            Effect.mapError(fail(`${FILE} does not match its schema`)),
          )
        ),
      ),
  };
};
