/**
 * safetensors: the tensor format of Hugging Face (readable from Python with
 * `safetensors.numpy.load_file`). Layout: an 8-byte little-endian header length N, N bytes of JSON
 * header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`,
 * then the raw little-endian tensor bytes, offsets relative to the end of the header.
 *
 * Writing follows the reference writer: tensors ordered by dtype size (largest first), then name,
 * contiguous with no gaps; header padded with spaces to a multiple of 8 bytes. Reading validates
 * every rule the reference reader checks and names the tensor and field that break one.
 * Gotcha: typed arrays are host-endian; every platform we run on is little-endian.
 */
import { Effect } from "effect";
import { causeText } from "../cause_text.ts";
import { CodecError } from "../errors.ts";
import { type Codec, payloadFile } from "./codec.ts";

/** The element types we read and write. */
export type DType = "F32" | "F64" | "I32" | "I64" | "U8" | "U16";

interface ArrayOf {
  F32: Float32Array;
  F64: Float64Array;
  I32: Int32Array;
  I64: BigInt64Array;
  U8: Uint8Array;
  U16: Uint16Array;
}

/** A host tensor: dtype, shape and row-major (C order) data. */
export type HostTensor = {
  [D in DType]: { readonly dtype: D; readonly shape: ReadonlyArray<number>; readonly data: ArrayOf[D] };
}[DType];

/** The content of one safetensors file. */
export interface TensorFile {
  readonly tensors: Readonly<Record<string, HostTensor>>;
  readonly metadata?: Readonly<Record<string, string>>;
}

const ctor = {
  F32: Float32Array,
  F64: Float64Array,
  I32: Int32Array,
  I64: BigInt64Array,
  U8: Uint8Array,
  U16: Uint16Array,
} as const;

const isDType = (s: unknown): s is DType => typeof s === "string" && Object.hasOwn(ctor, s);

const elementCount = (shape: ReadonlyArray<number>): number => shape.reduce((a, b) => a * b, 1);

/** Builds a HostTensor, checking that the data length matches the shape. */
export const tensor = <D extends DType>(dtype: D, shape: ReadonlyArray<number>, data: ArrayOf[D]): HostTensor => {
  if (data.length !== elementCount(shape)) {
    throw new RangeError(`tensor: shape [${shape}] needs ${elementCount(shape)} elements, data has ${data.length}`);
  }
  return { dtype, shape, data } as HostTensor;
};

const fail = (reason: string) => new CodecError({ codec: "safetensors", reason });

/** Serialises tensors (and optional string metadata) to safetensors bytes. */
export const encodeSafetensors = (file: TensorFile): Uint8Array => {
  const names = Object.keys(file.tensors).sort((a, b) => {
    const ta = file.tensors[a] as HostTensor, tb = file.tensors[b] as HostTensor;
    const bySize = ctor[tb.dtype].BYTES_PER_ELEMENT - ctor[ta.dtype].BYTES_PER_ELEMENT;
    return bySize !== 0 ? bySize : a < b ? -1 : a > b ? 1 : 0;
  });
  const header: Record<string, unknown> = {};
  if (file.metadata !== undefined) header.__metadata__ = file.metadata;
  let offset = 0;
  for (const name of names) {
    const t = file.tensors[name] as HostTensor;
    if (t.data.length !== elementCount(t.shape)) {
      throw new RangeError(`safetensors: tensor '${name}' shape [${t.shape}] does not match ${t.data.length} elements`);
    }
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let headerText = JSON.stringify(header);
  headerText += " ".repeat((8 - (new TextEncoder().encode(headerText).length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const t = file.tensors[name] as HostTensor;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
};

/**
 * The `__metadata__` of a safetensors file, reading only its header (checkpoints are large);
 * throws an Error saying what is wrong with the file (undefined metadata: `{}`).
 */
export const readSafetensorsMetadata = async (path: string): Promise<Record<string, string>> => {
  const file = await Deno.open(path, { read: true });
  try {
    const readFull = async (into: Uint8Array) => {
      for (let at = 0; at < into.length;) {
        const n = await file.read(into.subarray(at));
        if (n === null) throw new Error(`file ended after ${at} of ${into.length} header bytes`);
        at += n;
      }
    };
    const size = (await file.stat()).size, length = new Uint8Array(8);
    await readFull(length);
    const n = Number(new DataView(length.buffer).getBigUint64(0, true));
    if (n < 2 || n > size - 8 || n > 100_000_000) {
      throw new Error(`header length ${n} does not fit a ${size}-byte file`);
    }
    const bytes = new Uint8Array(n);
    await readFull(bytes);
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch {
      throw new Error("its header is not UTF-8 JSON");
    }
    if (header === null || typeof header !== "object") throw new Error("its header is not a JSON object");
    const metadata = (header as { __metadata__?: unknown }).__metadata__ ?? {};
    if (typeof metadata !== "object" || metadata === null) throw new Error("its __metadata__ is not an object");
    return metadata as Record<string, string>;
  } finally {
    file.close();
  }
};

/** Parses safetensors bytes; every violation of the format is a CodecError naming what broke. */
export const decodeSafetensors = (bytes: Uint8Array): Effect.Effect<TensorFile, CodecError> =>
  Effect.suspend(() => {
    if (bytes.length < 8) {
      return Effect.fail(fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length`));
    }
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
    if (n > 100_000_000 || 8 + n > bytes.length) {
      return Effect.fail(fail(`header length ${n} does not fit in a file of ${bytes.length} bytes`));
    }
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
    } catch (e) {
      return Effect.fail(fail(`header is not valid UTF-8 JSON (${causeText(e)})`));
    }
    if (typeof header !== "object" || header === null || Array.isArray(header)) {
      return Effect.fail(fail("header is not a JSON object"));
    }
    const data = bytes.subarray(8 + n);
    const tensors: Record<string, HostTensor> = {};
    let metadata: Record<string, string> | undefined;
    const spans: Array<readonly [number, number, string]> = [];
    for (const [name, entry] of Object.entries(header)) {
      if (name === "__metadata__") {
        if (typeof entry !== "object" || entry === null || Object.values(entry).some((v) => typeof v !== "string")) {
          return Effect.fail(fail("__metadata__ must map strings to strings"));
        }
        metadata = entry as Record<string, string>;
        continue;
      }
      const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as Record<string, unknown>;
      if (!isDType(dtype)) {
        return Effect.fail(
          fail(`tensor '${name}': dtype ${JSON.stringify(dtype)} is not one of ${Object.keys(ctor).join(", ")}`),
        );
      }
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        return Effect.fail(
          fail(`tensor '${name}': shape must be a list of non-negative integers, found ${JSON.stringify(shape)}`),
        );
      }
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
        return Effect.fail(
          fail(`tensor '${name}': data_offsets must be [begin, end], found ${JSON.stringify(offsets)}`),
        );
      }
      const [begin, end] = offsets as [number, number];
      const size = ctor[dtype].BYTES_PER_ELEMENT;
      if (end < begin || end > data.length || end - begin !== elementCount(shape) * size) {
        return Effect.fail(
          fail(
            `tensor '${name}': data_offsets [${begin}, ${end}] do not hold shape [${shape}] of ${dtype} within ${data.length} data bytes`,
          ),
        );
      }
      // copy: the slice may be unaligned for the element type
      const copy = data.slice(begin, end);
      tensors[name] = { dtype, shape, data: new ctor[dtype](copy.buffer, 0, elementCount(shape)) } as HostTensor;
      spans.push([begin, end, name]);
    }
    spans.sort((a, b) => a[0] - b[0]);
    let expected = 0;
    for (const [begin, end, name] of spans) {
      if (begin !== expected) {
        return Effect.fail(fail(`tensor '${name}' starts at ${begin}, expected ${expected} (gap or overlap)`));
      }
      expected = end;
    }
    if (expected !== data.length) {
      return Effect.fail(fail(`${data.length - expected} trailing data bytes after the last tensor`));
    }
    return Effect.succeed(metadata === undefined ? { tensors } : { tensors, metadata });
  });

const FILE = "tensors.safetensors";

/** Stores a TensorFile as one `tensors.safetensors` payload file. */
export const safetensors: Codec<TensorFile> = {
  id: "safetensors",
  encode: (value) =>
    Effect.try({
      try: () => ({ [FILE]: encodeSafetensors(value) }),
      catch: (e) => fail(String(e instanceof Error ? e.message : e)),
    }),
  decode: (payload) => payloadFile("safetensors", payload, FILE).pipe(Effect.flatMap(decodeSafetensors)),
};
