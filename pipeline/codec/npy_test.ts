import assert from "node:assert/strict";
import { decodeNpy, encodeNpy, openNpy, readNpy } from "./npy.ts";

const dir = new URL("../../tests/fixtures/npy/", import.meta.url).pathname;
const expected: Record<string, { shape: number[]; values: Array<number | string | boolean | null> }> = JSON.parse(
  await Deno.readTextFile(`${dir}expected.json`),
);

Deno.test("reads every numpy-written fixture: all dtypes, versions 1-3, unicode (tests/fixtures/make_npy_fixtures.py)", async () => {
  assert.ok(Object.keys(expected).length >= 17);
  for (const [name, want] of Object.entries(expected)) {
    const got = await readNpy(`${dir}${name}`);
    assert.deepEqual([...got.shape], want.shape, name);
    const values = Array.from(
      got.data as ArrayLike<number | string>,
      (v) => (typeof v === "number" && Number.isNaN(v) ? null : v),
    );
    const wanted = want.values.map((v) => (typeof v === "boolean" ? Number(v) : v));
    if (name === "f2.npy" || name === "f4.npy") {
      wanted.forEach((w, i) =>
        assert.ok(Math.abs((values[i] as number) - (w as number)) <= Math.abs(w as number) * 1e-7, `${name}[${i}]`)
      );
    } else {
      assert.deepEqual(values, wanted, name);
    }
  }
});

Deno.test("slab reads along the first axis [4,3,2] f8", async () => {
  const reader = await openNpy(`${dir}slabs.npy`);
  try {
    assert.deepEqual([...reader.header.shape], [4, 3, 2]);
    const slab = await reader.read(2, 2);
    assert.deepEqual([...slab.shape], [2, 3, 2]);
    assert.deepEqual(Array.from(slab.data as Float64Array), Array.from({ length: 12 }, (_, i) => 12 + i));
    await assert.rejects(() => reader.read(3, 2), /slabs \[3, 5\) outside \[0, 4\)/);
  } finally {
    reader.close();
  }
});

Deno.test("malformed and unsupported files are one clear error each, naming the file and field", async () => {
  const cases: Array<[string, RegExp]> = [
    ["bad_fortran.npy", /bad_fortran\.npy: field fortran_order: Fortran \(column-major\) order is not supported/],
    ["bad_bigendian.npy", /bad_bigendian\.npy: field descr: big-endian data \('>i4'\) is not supported/],
    ["bad_object.npy", /bad_object\.npy: field descr: dtype '\|O' is not supported/],
    ["bad_truncated.npy", /bad_truncated\.npy: data is truncated: shape \(1,4\) needs 32 bytes, found 27/],
    ["bad_magic.npy", /bad_magic\.npy: not a \.npy file/],
  ];
  for (const [name, pattern] of cases) {
    await assert.rejects(() => readNpy(`${dir}${name}`), pattern, name);
  }
  await assert.rejects(() => openNpy(`${dir}bad_truncated.npy`), /data is truncated/);
});

Deno.test("encodeNpy round trips through decodeNpy (u2 [2,3])", () => {
  const data = Uint16Array.from([1, 2, 3, 65535, 0, 7]);
  const back = decodeNpy(encodeNpy(data, [2, 3]));
  assert.deepEqual([...back.shape], [2, 3]);
  assert.deepEqual(back.data, data);
  assert.equal((encodeNpy(data, [6]).length - data.byteLength) % 64, 0, "header aligned to 64 bytes");
});
