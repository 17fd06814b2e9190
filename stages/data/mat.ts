/**
 * MATLAB v5 MAT-files (the `-v6`/`-v7` format of `save`, scipy's `savemat`): reads the numeric
 * matrices of a file into row-major typed arrays. Used for CoNSeP labels.
 *
 * Supported: little-endian files ('IM' endian indicator); data elements in the long and the small
 * (≤ 4 bytes) format; miCOMPRESSED (zlib) variables; miMATRIX of class double, single, int8/16/32/64,
 * uint8/16/32/64 and logical, whatever storage type holds the values.
 *
 * Gotchas:
 * - MATLAB narrows storage: an int32 or double array whose values fit is stored as miUINT8 or
 *   miINT16; values are converted to the array class (`class`), never left in the storage type.
 * - MATLAB is column-major; `data` is row-major (C order) over `shape`, so `[H, W]` maps index as
 *   `y * W + x`. Shapes keep MATLAB's dimensions: a column vector is `[N, 1]`, a scalar `[1, 1]`.
 * - int64/uint64 come back as BigInt64Array/BigUint64Array (exact), everything else as the
 *   typed array of its class; logical as Uint8Array.
 * - Variables we cannot represent (char, cell, struct, object, sparse, complex, function handles)
 *   are skipped and listed in `skipped`; asking for one by name is an error. Undocumented
 *   opaque objects (MATLAB `string`, `table`) are skipped without reading their names.
 * - Big-endian files ('MI'), v4 files and v7.3 (HDF5) files are rejected with a clear error.
 * - Every error is a DatasetError naming the file and what was expected there.
 *
 * Why not the npm package `mat-for-js` (1.1.0, ~900 downloads/month, one release, GPL-3.0-or-later,
 * depends on `pako` while our lock is frozen): tried on CoNSeP and on our fixtures, it reads 2-D
 * compressed matrices correctly (train_1.mat in ~160 ms, as nested JS arrays of numbers), but it
 * returns 3-D and larger arrays in the wrong order (its column-major index uses only the previous
 * dimension as stride: arange(24).reshape(2, 3, 4) comes back starting [[0, 16, 1, 17], …]), drops
 * shapes (`[N, 1]` and `[1, 1]` become `[N]` and `[1]`), reads the variable `be` of a big-endian
 * file as `b` (small data elements swapped), and has no bounds checks (a truncated file fails with
 * a bare "Offset is outside the bounds of the DataView", a bad zlib stream throws a plain string).
 * This reader is ~300 lines on `node:zlib` and returns typed arrays.
 */
import { inflateSync } from "node:zlib";
import { DatasetError } from "./sample.ts";

/** The array classes we read. */
export type MatClass =
  | "double"
  | "single"
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "logical";

/** Values of a numeric array; the typed array of its class. */
export type MatNumbers =
  | Float64Array
  | Float32Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array;
export type MatData = MatNumbers | BigInt64Array | BigUint64Array;

/** One numeric variable. */
export interface MatMatrix {
  readonly class: MatClass;
  /** MATLAB's dimensions, e.g. [H, W] or [N, 1] */
  readonly shape: ReadonlyArray<number>;
  /** row-major (C order) over `shape` */
  readonly data: MatData;
}

/** The numeric variables of a file, by name, and the names of those skipped. */
export interface MatFile {
  readonly variables: Map<string, MatMatrix>;
  readonly skipped: ReadonlyArray<string>;
}

// data element types (miXXX) and array classes (mxXXX_CLASS) of the format
const MI_COMPRESSED = 15, MI_MATRIX = 14, MI_INT32 = 5, MI_UINT32 = 6, MI_INT8 = 1;
const STORAGE: Readonly<Record<number, { name: string; size: number }>> = {
  1: { name: "miINT8", size: 1 },
  2: { name: "miUINT8", size: 1 },
  3: { name: "miINT16", size: 2 },
  4: { name: "miUINT16", size: 2 },
  5: { name: "miINT32", size: 4 },
  6: { name: "miUINT32", size: 4 },
  7: { name: "miSINGLE", size: 4 },
  9: { name: "miDOUBLE", size: 8 },
  12: { name: "miINT64", size: 8 },
  13: { name: "miUINT64", size: 8 },
};
const CLASSES: Readonly<Record<number, MatClass>> = {
  6: "double",
  7: "single",
  8: "int8",
  9: "uint8",
  10: "int16",
  11: "uint16",
  12: "int32",
  13: "uint32",
  14: "int64",
  15: "uint64",
};
const UNSUPPORTED: Readonly<Record<number, string>> = {
  1: "a cell array",
  2: "a struct",
  3: "an object",
  4: "a char array",
  5: "a sparse matrix",
  16: "a function handle",
};
const OPAQUE = 17;

/** A data element: its type and its payload (a view into the buffer). */
interface Element {
  readonly type: number;
  readonly payload: Uint8Array;
  /** offset of the next element */
  readonly next: number;
}

type Fail = (reason: string) => DatasetError;

/** Reads the element at `at` in `buf` (little-endian); `what` names it in errors. */
const element = (buf: Uint8Array, at: number, what: string, fail: Fail): Element => {
  if (at + 8 > buf.length) {
    throw fail(`${what}: truncated: the data ends inside its 8-byte tag (at byte ${at} of ${buf.length})`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset + at, 8);
  const word = view.getUint32(0, true);
  if (word >>> 16 !== 0) {
    // small data element: byte count in the upper 16 bits, type in the lower, payload in the next 4 bytes
    const size = word >>> 16;
    if (size > 4) throw fail(`${what}: small data element at byte ${at} claims ${size} bytes (at most 4)`);
    return { type: word & 0xffff, payload: buf.subarray(at + 4, at + 4 + size), next: at + 8 };
  }
  const type = word, size = view.getUint32(4, true);
  if (at + 8 + size > buf.length) {
    throw fail(`${what}: truncated: element at byte ${at} needs ${size} bytes, only ${buf.length - at - 8} remain`);
  }
  // compressed elements are not padded; all others are padded to 8 bytes
  const next = type === MI_COMPRESSED ? at + 8 + size : Math.min(buf.length, at + 8 + Math.ceil(size / 8) * 8);
  return { type, payload: buf.subarray(at + 8, at + 8 + size), next };
};

/** Reads a payload of integer storage as numbers (array flags, dimensions). */
const int32s = (e: Element, type: number, what: string, fail: Fail): number[] => {
  if (e.type !== type || e.payload.length % 4 !== 0) {
    throw fail(`${what}: expected ${STORAGE[type]?.name} with a multiple of 4 bytes, found type ${e.type}`);
  }
  const view = new DataView(e.payload.buffer, e.payload.byteOffset, e.payload.byteLength);
  return Array.from(
    { length: e.payload.length / 4 },
    (_, i) => type === MI_INT32 ? view.getInt32(4 * i, true) : view.getUint32(4 * i, true),
  );
};

/** The stored values of a real-part element as a typed array of its storage type (copied, so aligned). */
const stored = (e: Element, what: string, fail: Fail): MatData => {
  const storage = STORAGE[e.type];
  if (storage === undefined) throw fail(`${what}: data type ${e.type} is not a numeric storage type`);
  if (e.payload.length % storage.size !== 0) {
    throw fail(`${what}: ${e.payload.length} bytes is not a whole number of ${storage.name} values`);
  }
  const copy = e.payload.slice().buffer;
  switch (e.type) {
    case 1:
      return new Int8Array(copy);
    case 2:
      return new Uint8Array(copy);
    case 3:
      return new Int16Array(copy);
    case 4:
      return new Uint16Array(copy);
    case 5:
      return new Int32Array(copy);
    case 6:
      return new Uint32Array(copy);
    case 7:
      return new Float32Array(copy);
    case 9:
      return new Float64Array(copy);
    case 12:
      return new BigInt64Array(copy);
    default:
      return new BigUint64Array(copy);
  }
};

const allocate = (cls: MatClass, n: number): MatData => {
  switch (cls) {
    case "double":
      return new Float64Array(n);
    case "single":
      return new Float32Array(n);
    case "int8":
      return new Int8Array(n);
    case "uint8":
    case "logical":
      return new Uint8Array(n);
    case "int16":
      return new Int16Array(n);
    case "uint16":
      return new Uint16Array(n);
    case "int32":
      return new Int32Array(n);
    case "uint32":
      return new Uint32Array(n);
    case "int64":
      return new BigInt64Array(n);
    case "uint64":
      return new BigUint64Array(n);
  }
};

const isBig = (a: MatData): a is BigInt64Array | BigUint64Array =>
  a instanceof BigInt64Array || a instanceof BigUint64Array;

/** Converts column-major `src` (storage type) to row-major `out` (class type) over `shape`. */
const toRowMajor = (src: MatData, out: MatData, shape: ReadonlyArray<number>): void => {
  const n = out.length;
  // row-major position → column-major position, walking the row-major index with an odometer
  const rank = shape.length, colStride: number[] = [];
  for (let d = 0, stride = 1; d < rank; d++) {
    colStride.push(stride);
    stride *= shape[d] as number;
  }
  const index = new Array<number>(rank).fill(0);
  const big = isBig(out);
  if (!big && !isBig(src) && rank === 2) {
    const rows = shape[0] as number, cols = shape[1] as number;
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = src[r + c * rows] as number;
    return;
  }
  for (let i = 0, j = 0; i < n; i++) {
    const v = src[j] as number | bigint;
    if (big) out[i] = typeof v === "bigint" ? v : BigInt(v);
    else out[i] = Number(v);
    for (let d = rank - 1; d >= 0; d--) {
      const idx = (index[d] as number) + 1;
      if (idx < (shape[d] as number)) {
        index[d] = idx;
        j += colStride[d] as number;
        break;
      }
      index[d] = 0;
      j -= (idx - 1) * (colStride[d] as number);
    }
  }
};

/**
 * Parses one miMATRIX payload; `undefined` name means an unnamed opaque object. The values of a
 * matrix not `wanted` are not converted (`value` is undefined).
 */
const matrix = (
  payload: Uint8Array,
  ordinal: number,
  wanted: (name: string) => boolean,
  fail: Fail,
): { name: string | undefined; value: MatMatrix | string | undefined } => {
  let what = `variable #${ordinal}`;
  const flagsElement = element(payload, 0, `${what} array flags`, fail);
  const [flags = 0] = int32s(flagsElement, MI_UINT32, `${what} array flags`, fail);
  const mxClass = flags & 0xff, complex = (flags & 0x800) !== 0, logical = (flags & 0x200) !== 0;
  if (mxClass === OPAQUE) return { name: undefined, value: "an opaque object" };
  const dimsElement = element(payload, flagsElement.next, `${what} dimensions`, fail);
  const shape = int32s(dimsElement, MI_INT32, `${what} dimensions`, fail);
  if (shape.length < 2 || shape.some((d) => d < 0)) {
    throw fail(`${what}: bad dimensions [${shape}]; expected at least 2, none negative`);
  }
  const nameElement = element(payload, dimsElement.next, `${what} name`, fail);
  if (nameElement.type !== MI_INT8) throw fail(`${what}: expected the name as miINT8, found type ${nameElement.type}`);
  const name = new TextDecoder("latin1").decode(nameElement.payload);
  what = `variable '${name}'`;
  if (!wanted(name)) return { name, value: undefined };
  const cls = logical ? "logical" : CLASSES[mxClass];
  if (cls === undefined) return { name, value: UNSUPPORTED[mxClass] ?? `of unknown class ${mxClass}` };
  if (complex) return { name, value: "complex" };
  const real = element(payload, nameElement.next, `${what} real part`, fail);
  const src = stored(real, what, fail);
  const n = shape.reduce((a, b) => a * b, 1);
  if (src.length !== n) {
    throw fail(`${what}: dimensions [${shape}] need ${n} values, the real part holds ${src.length}`);
  }
  const data = allocate(cls, n);
  toRowMajor(src, data, shape);
  return { name, value: { class: cls, shape, data } };
};

/** Reads the 128-byte header; returns nothing, throws on anything but a little-endian v5 file. */
const checkHeader = (bytes: Uint8Array, fail: Fail): void => {
  if (bytes.length < 128) throw fail(`truncated: a MAT-file header is 128 bytes, the file has ${bytes.length}`);
  const text = new TextDecoder("latin1").decode(bytes.subarray(0, 116)).trimEnd();
  const endian = String.fromCharCode(bytes[126] as number, bytes[127] as number);
  if (endian === "MI") {
    throw fail("big-endian MAT-file (endian indicator 'MI') is not supported; expected little-endian ('IM')");
  }
  if (endian !== "IM" || bytes.subarray(0, 4).every((b) => b === 0)) {
    throw fail(
      `not a MATLAB v5 MAT-file: expected a text header and the endian indicator 'IM' at bytes 126-127, found ${
        JSON.stringify(endian)
      }`,
    );
  }
  const version = (bytes[124] as number) | ((bytes[125] as number) << 8);
  if (version === 0x0200) throw fail(`MATLAB v7.3 (HDF5) files are not supported; save with -v7 ("${text}")`);
  if (version !== 0x0100) throw fail(`unknown MAT-file version 0x${version.toString(16)} (expected 0x0100)`);
};

const inflate = (payload: Uint8Array, what: string, fail: Fail): Uint8Array => {
  try {
    const out = inflateSync(payload);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    throw fail(`${what}: miCOMPRESSED data is not a valid zlib stream (${e instanceof Error ? e.message : e})`);
  }
};

/**
 * Parses a whole MAT-file held in memory. With `names`, returns just those variables and fails
 * when one is missing or cannot be represented; without, returns every numeric variable.
 */
export const decodeMat = (bytes: Uint8Array, file: string, names?: ReadonlyArray<string>): MatFile => {
  const fail: Fail = (reason) => new DatasetError({ file, reason });
  checkHeader(bytes, fail);
  const variables = new Map<string, MatMatrix>(), skipped: string[] = [], found: string[] = [];
  const wanted = names === undefined ? undefined : new Set(names);
  for (let at = 128, ordinal = 1; at < bytes.length; ordinal++) {
    let e = element(bytes, at, `variable #${ordinal}`, fail);
    at = e.next;
    if (e.type === MI_COMPRESSED) {
      const plain = inflate(e.payload, `variable #${ordinal}`, fail);
      e = element(plain, 0, `variable #${ordinal} (decompressed)`, fail);
    }
    if (e.type !== MI_MATRIX) continue; // e.g. MATLAB's subsystem data; not a variable
    const { name, value } = matrix(e.payload, ordinal, (name) => wanted?.has(name) ?? true, fail);
    if (name === undefined || name === "") continue; // opaque objects, MATLAB's subsystem data
    found.push(name);
    if (value === undefined) continue;
    if (typeof value === "string") {
      if (wanted !== undefined) throw fail(`variable '${name}' is ${value}; expected a numeric matrix`);
      skipped.push(name);
    } else {
      variables.set(name, value);
    }
  }
  for (const name of wanted ?? []) {
    if (!variables.has(name)) throw fail(`no variable '${name}' (found ${found.join(", ") || "none"})`);
  }
  return { variables, skipped };
};

/** Reads a MAT-file; see `decodeMat`. */
export const readMat = async (path: string, names?: ReadonlyArray<string>): Promise<MatFile> => {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new DatasetError({ file: path, reason: `cannot read (${e instanceof Error ? e.message : e})` });
  }
  return decodeMat(bytes, path, names);
};
