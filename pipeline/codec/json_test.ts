import assert from "node:assert/strict";
import { Effect, Schema } from "effect";
import { json } from "./json.ts";

const Point = json(Schema.Struct({ x: Schema.Number, tags: Schema.Array(Schema.String) }));

Deno.test("json codec round trips a value through value.json", async () => {
  const value = { x: 1.5, tags: ["a", "b"] };
  const payload = await Effect.runPromise(Point.encode(value));
  assert.deepEqual(Object.keys(payload), ["value.json"]);
  assert.deepEqual(await Effect.runPromise(Point.decode(payload)), value);
});

Deno.test("json codec rejects stored JSON that no longer matches the schema, naming the field", async () => {
  const bad = { "value.json": new TextEncoder().encode('{"x":"one","tags":[]}') };
  const e = await Effect.runPromise(Effect.flip(Point.decode(bad)));
  assert.match(
    e.message,
    /value\.json does not match its schema: Expected number, got "one"\s+at \["x"\]|value\.json does not match its schema: Expected number/,
  );
  const missing = await Effect.runPromise(Effect.flip(Point.decode({})));
  assert.match(missing.message, /payload file 'value\.json' is missing/);
});
