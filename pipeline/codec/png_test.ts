import assert from "node:assert/strict";
import { Effect } from "effect";
import { decodePng, encodePng, png } from "./png.ts";

Deno.test("8-bit RGB [H=3,W=4,C=3] round trips exactly", async () => {
  const data = Uint8Array.from({ length: 36 }, (_, i) => (i * 37) % 256);
  const image = { width: 4, height: 3, channels: 3 as const, data };
  const back = await Effect.runPromise(Effect.flatMap(png.encode(image), png.decode));
  assert.deepEqual(back, image);
});

Deno.test("16-bit grey [H=2,W=5,C=1] (instance ids above 255) stays 16-bit", async () => {
  const data = Uint16Array.from([0, 1, 255, 256, 1000, 65535, 300, 2, 4097, 12]);
  const bytes = await Effect.runPromise(encodePng({ width: 5, height: 2, channels: 1, data }));
  const back = await Effect.runPromise(decodePng(bytes));
  assert.ok(back.data instanceof Uint16Array);
  assert.deepEqual(Array.from(back.data), Array.from(data));
  assert.equal(back.channels, 1);
});

Deno.test("a size mismatch and undecodable bytes are codec errors", async () => {
  const e1 = await Effect.runPromise(
    Effect.flip(encodePng({ width: 2, height: 2, channels: 1, data: new Uint8Array(3) })),
  );
  assert.match(e1.message, /2×2×1 needs 4 values, found 3/);
  const e2 = await Effect.runPromise(Effect.flip(decodePng(new Uint8Array([1, 2, 3]))));
  assert.match(e2.message, /^png codec: cannot decode/);
});

Deno.test("8-bit grey [H=2,W=2,C=1] and 16-bit RGBA [H=1,W=2,C=4] keep their channel counts", async () => {
  const grey = { width: 2, height: 2, channels: 1 as const, data: Uint8Array.from([1, 2, 3, 4]) };
  assert.deepEqual(await Effect.runPromise(Effect.flatMap(png.encode(grey), png.decode)), grey);
  const rgba = {
    width: 2,
    height: 1,
    channels: 4 as const,
    data: Uint16Array.from([0, 5000, 65535, 1, 2, 3, 4, 60000]),
  };
  assert.deepEqual(await Effect.runPromise(Effect.flatMap(png.encode(rgba), png.decode)), rgba);
});
