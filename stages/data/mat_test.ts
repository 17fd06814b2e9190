import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { decodeMat, readMat } from "./mat.ts";
import { DatasetError } from "./sample.ts";

const dir = new URL("../../tests/fixtures/mat/", import.meta.url).pathname;
interface Expected {
  readonly variables: Record<string, { class: string; shape: number[]; values: Array<number | string | null> }>;
  readonly skipped: string[];
}
const expected: Record<string, Expected> = JSON.parse(await Deno.readTextFile(`${dir}expected.json`));

/** Values as JSON writes them: NaN → null, 64-bit integers → decimal strings. */
const plain = (data: ArrayLike<number | bigint>): Array<number | string | null> =>
  Array.from(data, (v) => (typeof v === "bigint" ? v.toString() : Number.isNaN(v) ? null : v));

Deno.test("reads every scipy-written and hand-built fixture (tests/fixtures/mat/make_mat_fixtures.py)", async () => {
  assert.deepEqual(Object.keys(expected).sort(), [
    "narrowed_plain.mat",
    "narrowed_zlib.mat",
    "scipy_plain.mat",
    "scipy_zlib.mat",
  ]);
  for (const [file, want] of Object.entries(expected)) {
    const got = await readMat(`${dir}${file}`);
    assert.deepEqual([...got.variables.keys()].sort(), Object.keys(want.variables).sort(), file);
    assert.deepEqual([...got.skipped].sort(), want.skipped, `${file}: skipped`);
    for (const [name, w] of Object.entries(want.variables)) {
      const v = got.variables.get(name);
      assert.ok(v, `${file}: ${name}`);
      assert.equal(v.class, w.class, `${file}: ${name} class`);
      assert.deepEqual([...v.shape], w.shape, `${file}: ${name} shape`);
      assert.deepEqual(plain(v.data), w.values, `${file}: ${name} values`);
    }
  }
});

Deno.test("each class comes back as its typed array, whatever the storage type", async () => {
  const { variables } = await readMat(`${dir}narrowed_zlib.mat`);
  const kind = (name: string) => variables.get(name)?.data.constructor.name;
  assert.equal(kind("i32_as_u8"), "Int32Array"); // int32 stored as miUINT8
  assert.equal(kind("d_as_i32"), "Float64Array"); // double stored as miINT32
  assert.equal(kind("u16_as_u8"), "Uint16Array");
  assert.equal(kind("i64_as_i32"), "BigInt64Array");
  assert.equal(kind("bits"), "Uint8Array");
  const { variables: all } = await readMat(`${dir}scipy_zlib.mat`);
  assert.equal(all.get("s3x2")?.data.constructor.name, "Float32Array");
  assert.equal(all.get("u64")?.data.constructor.name, "BigUint64Array");
});

Deno.test("row-major order: [2,3,4] cube is arange(24) in C order; [2,3] transposes MATLAB's columns", async () => {
  const { variables } = await readMat(`${dir}scipy_plain.mat`);
  assert.deepEqual(Array.from(variables.get("cube")?.data as Int32Array), Array.from({ length: 24 }, (_, i) => i));
  assert.deepEqual(Array.from(variables.get("i32")?.data as Int32Array), [-2147483648, 2147483647, 2, 3, 60000, -7]);
});

Deno.test("names: returns just those; a missing or unsupported one is an error naming the file", async () => {
  const bytes = await Deno.readFile(`${dir}scipy_zlib.mat`);
  const some = decodeMat(bytes, "some.mat", ["col", "x"]);
  assert.deepEqual([...some.variables.keys()].sort(), ["col", "x"]);
  assert.throws(
    () => decodeMat(bytes, "some.mat", ["nope"]),
    /^DatasetError: some\.mat: no variable 'nope' \(found d2x3, /,
  );
  const unsupported: Array<[string, string]> = [
    ["txt", "a char array"],
    ["cel", "a cell array"],
    ["st", "a struct"],
    ["sp", "a sparse matrix"],
    ["cx", "complex"],
  ];
  for (const [name, what] of unsupported) {
    assert.throws(
      () => decodeMat(bytes, "some.mat", [name]),
      new RegExp(`some\\.mat: variable '${name}' is ${what}; expected a numeric matrix`),
    );
  }
});

Deno.test("malformed and unsupported files are one clear DatasetError each, naming the file", async () => {
  const cases: Array<[string, RegExp]> = [
    [
      "bad_truncated.mat",
      /bad_truncated\.mat: variable #3: truncated: element at byte 276 needs 43 bytes, only 16 remain/,
    ],
    ["bad_short.mat", /bad_short\.mat: truncated: a MAT-file header is 128 bytes, the file has 60/],
    [
      "bad_header.mat",
      /bad_header\.mat: not a MATLAB v5 MAT-file: expected a text header and the endian indicator 'IM'/,
    ],
    ["bad_v73.mat", /bad_v73\.mat: MATLAB v7\.3 \(HDF5\) files are not supported; save with -v7/],
    ["bad_zlib.mat", /bad_zlib\.mat: variable #1: miCOMPRESSED data is not a valid zlib stream/],
    ["bad_bigendian.mat", /bad_bigendian\.mat: big-endian MAT-file \(endian indicator 'MI'\) is not supported/],
  ];
  for (const [name, pattern] of cases) {
    await assert.rejects(() => readMat(`${dir}${name}`), (e) => e instanceof DatasetError && pattern.test(e.message));
  }
  await assert.rejects(() => readMat(`${dir}absent.mat`), /absent\.mat: cannot read/);
});

Deno.test("a zlib stream that inflates to a cut-off matrix is reported inside the variable", async () => {
  const good = await Deno.readFile(`${dir}narrowed_plain.mat`);
  // first variable, uncompressed: tag (8 bytes) + payload; compress it without its last 8 bytes
  const size = new DataView(good.buffer, good.byteOffset + 132, 4).getUint32(0, true);
  const cut = deflateSync(good.subarray(128, 128 + 8 + size - 8));
  const file = new Uint8Array(128 + 8 + cut.length);
  file.set(good.subarray(0, 128));
  new DataView(file.buffer).setUint32(128, 15, true);
  new DataView(file.buffer).setUint32(132, cut.length, true);
  file.set(cut, 136);
  assert.throws(
    () => decodeMat(file, "cut.mat"),
    /cut\.mat: variable #1 \(decompressed\): truncated: element at byte 0 needs \d+ bytes, only \d+ remain/,
  );
});
