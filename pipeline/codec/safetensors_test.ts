import assert from "node:assert/strict";
import { Effect } from "effect";
import { decodeSafetensors, encodeSafetensors, type HostTensor, safetensors, tensor } from "./safetensors.ts";

const fixture = (name: string) => new URL(`../../tests/fixtures/safetensors/${name}`, import.meta.url);
const reference = await Deno.readFile(fixture("reference.safetensors"));
const expected: Record<string, { dtype: string; shape: number[]; values: Array<number | string> }> = JSON.parse(
  await Deno.readTextFile(fixture("reference.json")),
);

const valuesOf = (t: HostTensor): Array<number | string> =>
  t.data instanceof BigInt64Array ? Array.from(t.data, (v) => v.toString()) : Array.from(t.data as ArrayLike<number>);

Deno.test("decodes the numpy-written reference file: every dtype, shape and value", async () => {
  const file = await Effect.runPromise(decodeSafetensors(reference));
  assert.deepEqual(file.metadata, { format: "np", source: "make_safetensors.py" });
  assert.deepEqual(Object.keys(file.tensors).sort(), Object.keys(expected).sort());
  for (const [name, want] of Object.entries(expected)) {
    const got = file.tensors[name] as HostTensor;
    assert.equal(got.dtype, want.dtype, name);
    assert.deepEqual([...got.shape], want.shape, name);
    assert.deepEqual(valuesOf(got), want.values, name);
  }
});

Deno.test("encoding the same tensors reproduces the reference file byte for byte", async () => {
  const file = await Effect.runPromise(decodeSafetensors(reference));
  assert.deepEqual(encodeSafetensors(file), reference);
});

Deno.test("round trip through the codec keeps values exactly (F32 x=[2,3])", async () => {
  const x = tensor("F32", [2, 3], Float32Array.from([1.5, -2, 0, 3.25, 1e-30, -0]));
  const payload = await Effect.runPromise(safetensors.encode({ tensors: { x } }));
  const back = await Effect.runPromise(safetensors.decode(payload));
  assert.deepEqual(back.tensors.x, x);
  const bytes = payload["tensors.safetensors"] as Uint8Array;
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + headerLength) % 8, 0, "header padded to a multiple of 8");
});

Deno.test("malformed files are errors that name the problem", async () => {
  const fail = async (bytes: Uint8Array) => (await Effect.runPromise(Effect.flip(decodeSafetensors(bytes)))).message;
  assert.match(await fail(new Uint8Array(3)), /shorter than the 8-byte header length/);
  const withHeader = (header: string, data = new Uint8Array(0)) => {
    const h = new TextEncoder().encode(header);
    const out = new Uint8Array(8 + h.length + data.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
    out.set(h, 8);
    out.set(data, 8 + h.length);
    return out;
  };
  assert.match(await fail(withHeader("{oops")), /header is not valid UTF-8 JSON/);
  assert.match(
    await fail(withHeader('{"x":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}}', new Uint8Array(2))),
    /tensor 'x': dtype "BF16"/,
  );
  assert.match(
    await fail(withHeader('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', new Uint8Array(4))),
    /do not hold shape \[2\] of F32/,
  );
  assert.match(
    await fail(withHeader('{"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', new Uint8Array(2))),
    /starts at 1, expected 0/,
  );
  assert.match(
    await fail(withHeader('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(2))),
    /1 trailing data bytes/,
  );
  const big = new Uint8Array(16);
  new DataView(big.buffer).setBigUint64(0, 1000n, true);
  assert.match(await fail(big), /header length 1000 does not fit/);
});
