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

/**
 * A JSON codec for plain data described by a TypeScript type and checked by a guard instead of a
 * Schema — for large nested results (e.g. the §B6 attribute fit) whose every field the Schema would
 * have to restate. Encoding writes `JSON.stringify(value)`; decoding parses and runs `guard`.
 */
export const jsonOf = <A>(id: string, guard: (u: unknown) => u is A): Codec<A> => ({
  id: `json:${id}`,
  encode: (value) => Effect.succeed({ [FILE]: new TextEncoder().encode(JSON.stringify(value)) }),
  decode: (payload) =>
    payloadFile("json", payload, FILE).pipe(Effect.flatMap((bytes) =>
      Effect.try({
        try: () => JSON.parse(new TextDecoder().decode(bytes)) as unknown,
        catch: (e) =>
          new CodecError({ codec: "json", reason: `${FILE} is not JSON (${e instanceof Error ? e.message : e})` }),
      })
    )).pipe(Effect.flatMap((u) =>
      guard(u)
        ? Effect.succeed(u)
        : Effect.fail(new CodecError({ codec: "json", reason: `${FILE} is not a valid ${id}` }))
    )),
});
