/**
 * NumPy `.npy` files: read whole (`decodeNpy`) or slab by slab along the first axis (`openNpy`),
 * so that an 8 GB PanNuke mask file is never materialised. Writing (`encodeNpy`) is for fixtures
 * and outputs.
 *
 * Supported: format versions 1.0, 2.0 and 3.0; C order; little-endian (or byte-order-free)
 * bool, int8/16/32/64, uint8/16/32/64, float16/32/64 and fixed-width unicode (`<U…`, e.g. PanNuke's
 * tissue names). Fortran order, big-endian data, object and structured dtypes are rejected with an
 * error naming the file and the field. npyjs (the npm option) parses whole in-memory buffers only
 * and has no slab access, which the PanNuke sizes need; this reader is ~150 lines.
 */
import { Data } from "effect";

/** A malformed or unsupported .npy file. */
export class NpyError extends Data.TaggedError("NpyError")<{ readonly file: string; readonly reason: string }> {
  override get message(): string {
    return `${this.file}: ${this.reason}`;
  }
}

/** Element kinds we read; `U` is fixed-width UTF-32 text. */
export type NpyDType = "b1" | "i1" | "i2" | "i4" | "i8" | "u1" | "u2" | "u4" | "u8" | "f2" | "f4" | "f8" | `U${number}`;

/** The parsed header. */
export interface NpyHeader {
  readonly dtype: NpyDType;
  readonly shape: ReadonlyArray<number>;
  /** bytes per element */
  readonly itemSize: number;
  /** byte offset of the data */
  readonly dataOffset: number;
}

/** A numeric array (numbers; int64/uint64 beyond 2^53 are rejected) or an array of strings. */
export type NpyData =
  | Float64Array
  | Float32Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;
export interface NpyArray {
  readonly dtype: NpyDType;
  readonly shape: ReadonlyArray<number>;
  readonly data: NpyData | ReadonlyArray<string>;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const SIZES: Readonly<Record<string, number>> = {
  b1: 1,
  i1: 1,
  i2: 2,
  i4: 4,
  i8: 8,
  u1: 1,
  u2: 2,
  u4: 4,
  u8: 8,
  f2: 2,
  f4: 4,
  f8: 8,
};

/** Parses the header at the start of `bytes` (at least the first 16 bytes + header length). */
export const parseNpyHeader = (bytes: Uint8Array, file: string): NpyHeader => {
  const fail = (reason: string) => new NpyError({ file, reason });
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw fail("not a .npy file (missing the \\x93NUMPY magic)");
  }
  const major = bytes[6] as number;
  if (major < 1 || major > 3) {
    throw fail(`unsupported .npy format version ${major}.${bytes[7]} (expected 1.0, 2.0 or 3.0)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthBytes) throw fail("file ends inside the header");
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lengthBytes, dataOffset = start + headerLength;
  if (bytes.length < dataOffset) {
    throw fail(`header of ${headerLength} bytes is cut off (file has ${bytes.length} bytes)`);
  }
  const text = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(start, dataOffset));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw fail(`header must hold 'descr', 'fortran_order' and 'shape', found ${JSON.stringify(text.trim())}`);
  }
  if (fortran === "True") {
    throw fail("field fortran_order: Fortran (column-major) order is not supported; save with C order");
  }
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw fail(`field shape: expected non-negative integers, found (${shapeText})`);
  }
  const order = descr[0] as string, kind = descr.slice(1);
  if (order === ">" && kind !== "u1" && kind !== "i1" && kind !== "b1") {
    throw fail(`field descr: big-endian data ('${descr}') is not supported; expected little-endian ('<')`);
  }
  if (!["<", "|", "="].includes(order) && order !== ">") throw fail(`field descr: unknown byte order in '${descr}'`);
  let dtype: NpyDType, itemSize: number;
  if (/^U\d+$/.test(kind)) {
    dtype = kind as NpyDType;
    itemSize = 4 * Number(kind.slice(1));
  } else if (SIZES[kind] !== undefined) {
    dtype = kind as NpyDType;
    itemSize = SIZES[kind] as number;
  } else {
    throw fail(`field descr: dtype '${descr}' is not supported (expected bool, int, uint, float or unicode)`);
  }
  return { dtype, shape, itemSize, dataOffset };
};

const float16 = (h: number): number => {
  const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
};

/** Converts raw little-endian element bytes to a typed array (copying, so alignment never matters). */
export const decodeElements = (raw: Uint8Array, header: NpyHeader, file: string): NpyData | ReadonlyArray<string> => {
  const n = raw.length / header.itemSize;
  const copy = raw.slice().buffer;
  switch (header.dtype) {
    case "b1":
    case "u1":
      return new Uint8Array(copy);
    case "i1":
      return new Int8Array(copy);
    case "i2":
      return new Int16Array(copy);
    case "u2":
      return new Uint16Array(copy);
    case "i4":
      return new Int32Array(copy);
    case "u4":
      return new Uint32Array(copy);
    case "f4":
      return new Float32Array(copy);
    case "f8":
      return new Float64Array(copy);
    case "f2":
      return Float32Array.from(new Uint16Array(copy), float16);
    case "i8":
    case "u8": {
      const big = header.dtype === "i8" ? new BigInt64Array(copy) : new BigUint64Array(copy);
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const v = Number(big[i] as bigint);
        if (!Number.isSafeInteger(v)) {
          throw new NpyError({ file, reason: `element ${i} (${big[i]}) does not fit a double exactly` });
        }
        out[i] = v;
      }
      return out;
    }
    default: {
      const width = header.itemSize / 4, codes = new Uint32Array(copy), out: string[] = [];
      for (let i = 0; i < n; i++) {
        let s = "";
        for (let k = 0; k < width; k++) {
          const code = codes[i * width + k] as number;
          if (code === 0) break;
          s += String.fromCodePoint(code);
        }
        out.push(s);
      }
      return out;
    }
  }
};

const elementCount = (shape: ReadonlyArray<number>) => shape.reduce((a, b) => a * b, 1);

/** Parses a whole .npy file held in memory. */
export const decodeNpy = (bytes: Uint8Array, file = "<memory>"): NpyArray => {
  const header = parseNpyHeader(bytes, file);
  const size = elementCount(header.shape) * header.itemSize;
  if (bytes.length - header.dataOffset < size) {
    throw new NpyError({
      file,
      reason: `data is truncated: shape (${header.shape}) needs ${size} bytes, found ${
        bytes.length - header.dataOffset
      }`,
    });
  }
  return {
    dtype: header.dtype,
    shape: header.shape,
    data: decodeElements(bytes.subarray(header.dataOffset, header.dataOffset + size), header, file),
  };
};

/** Reads a whole .npy file. */
export const readNpy = async (path: string): Promise<NpyArray> => decodeNpy(await Deno.readFile(path), path);

/** An open .npy file read slab by slab along its first axis. */
export interface NpyReader {
  readonly path: string;
  readonly header: NpyHeader;
  /** elements per slab (product of all but the first dimension) */
  readonly slabElements: number;
  /** reads slabs [start, start + count) */
  readonly read: (start: number, count?: number) => Promise<NpyArray>;
  readonly close: () => void;
}

/** Opens a .npy file for slab reads; checks the header and that the file holds all its data. */
export const openNpy = async (path: string): Promise<NpyReader> => {
  const file = await Deno.open(path, { read: true });
  try {
    const head = new Uint8Array(65536 + 12);
    let got = 0;
    for (;;) {
      const n = await file.read(head.subarray(got));
      if (n === null) break;
      got += n;
      if (got === head.length) break;
    }
    const header = parseNpyHeader(head.subarray(0, got), path);
    if (header.shape.length === 0) throw new NpyError({ file: path, reason: "a 0-d array has no slabs; use readNpy" });
    const slabElements = elementCount(header.shape.slice(1));
    const slabBytes = slabElements * header.itemSize;
    const { size } = await file.stat();
    const needed = header.dataOffset + (header.shape[0] as number) * slabBytes;
    if (size < needed) {
      throw new NpyError({
        file: path,
        reason: `data is truncated: shape (${header.shape}) needs ${needed} bytes, file has ${size}`,
      });
    }
    return {
      path,
      header,
      slabElements,
      read: async (start, count = 1) => {
        const n0 = header.shape[0] as number;
        if (start < 0 || count < 0 || start + count > n0) {
          throw new RangeError(`${path}: slabs [${start}, ${start + count}) outside [0, ${n0})`);
        }
        const buffer = new Uint8Array(count * slabBytes);
        await file.seek(header.dataOffset + start * slabBytes, Deno.SeekMode.Start);
        for (let at = 0; at < buffer.length;) {
          const n = await file.read(buffer.subarray(at));
          if (n === null) throw new NpyError({ file: path, reason: "file ended early" });
          at += n;
        }
        return {
          dtype: header.dtype,
          shape: [count, ...header.shape.slice(1)],
          data: decodeElements(buffer, header, path),
        };
      },
      close: () => file.close(),
    };
  } catch (e) {
    file.close();
    throw e;
  }
};

const DESCR: Readonly<Record<string, string>> = {
  Uint8Array: "|u1",
  Int8Array: "|i1",
  Uint16Array: "<u2",
  Int16Array: "<i2",
  Uint32Array: "<u4",
  Int32Array: "<i4",
  Float32Array: "<f4",
  Float64Array: "<f8",
};

/** The version 1.0 header of a C-order little-endian array (`descr` e.g. `<f8`), padded to 64 bytes. */
export const npyHeader = (descr: string, shape: ReadonlyArray<number>): Uint8Array => {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let text = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  text += " ".repeat((64 - ((10 + text.length + 1) % 64)) % 64) + "\n";
  const out = new Uint8Array(10 + text.length);
  out.set(MAGIC);
  out[6] = 1;
  new DataView(out.buffer).setUint16(8, text.length, true);
  out.set(new TextEncoder().encode(text), 10);
  return out;
};

const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

/** Writes a numeric array as a version 1.0 .npy (C order, little-endian). */
export const encodeNpy = (data: NpyData, shape: ReadonlyArray<number>): Uint8Array => {
  if (data.length !== elementCount(shape)) {
    throw new RangeError(`encodeNpy: shape (${shape}) needs ${elementCount(shape)} elements, got ${data.length}`);
  }
  return concat(
    npyHeader(DESCR[data.constructor.name] as string, shape),
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  );
};

/** Writes strings as a 1-D fixed-width unicode .npy (`<U…`, the form of PanNuke's types.npy). */
export const encodeStringsNpy = (values: ReadonlyArray<string>): Uint8Array => {
  const width = Math.max(1, ...values.map((v) => [...v].length));
  const codes = new Uint32Array(values.length * width);
  values.forEach((v, i) => [...v].forEach((ch, k) => (codes[i * width + k] = ch.codePointAt(0) as number)));
  return concat(npyHeader(`<U${width}`, [values.length]), new Uint8Array(codes.buffer));
};
