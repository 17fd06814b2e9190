/**
 * Cache keys: a canonical, length-prefixed encoding of everything a stage result depends on,
 * hashed with SHA-256.
 *
 * key = sha256(frame("ivaan/key/v1"), frame(stage name), frame(stage version),
 *              canonical(config), u64(#inputs), [frame(input name), frame(input digest)]…
 *              (sorted by input name), frame(environment tag))
 *
 * `canonical` encodes a JSON-like value so that equal values give equal bytes whatever their
 * object key order: each value is a one-byte type tag followed by a length-prefixed body; object
 * entries are sorted by the UTF-8 bytes of their keys; numbers use the shortest round-trip decimal
 * (so 1 and 1.0 agree, and -0 is written as 0); a key holding `undefined` is the same as a missing
 * key, while `null` is a value of its own. NaN and ±Infinity have no JSON form and are rejected.
 */
import { type Digest, hasher, u64 } from "./hash.ts";

/** Values that can appear in a stage config after Schema encoding. */
export type CanonicalValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | ReadonlyArray<CanonicalValue>
  | { readonly [key: string]: CanonicalValue | undefined };

const utf8 = new TextEncoder();

const frame = (bytes: Uint8Array): Uint8Array[] => [u64(bytes.length), bytes];
const frameText = (text: string): Uint8Array[] => frame(utf8.encode(text));
const tag = (t: string): Uint8Array => utf8.encode(t);

const compareBytes = (a: Uint8Array, b: Uint8Array): number => {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
};

/** The canonical number text: shortest round-trip decimal, -0 as 0; non-finite numbers throw. */
export const canonicalNumber = (n: number): string => {
  if (!Number.isFinite(n)) throw new RangeError(`cannot key the non-finite number ${n}`);
  return Object.is(n, -0) ? "0" : String(n);
};

/**
 * Appends the canonical encoding of `value` to `out`. `path` names the position for errors.
 * Throws a RangeError (a bug, not user input: configs are Schema-validated first) on values
 * that have no canonical form.
 */
const encodeInto = (value: CanonicalValue, out: Uint8Array[], path: string): void => {
  if (value === null) out.push(tag("n"));
  else if (value === true) out.push(tag("t"));
  else if (value === false) out.push(tag("f"));
  else if (typeof value === "number") out.push(tag("d"), ...frameText(canonicalNumberAt(value, path)));
  else if (typeof value === "bigint") out.push(tag("i"), ...frameText(value.toString()));
  else if (typeof value === "string") out.push(tag("s"), ...frameText(value));
  else if (Array.isArray(value)) {
    out.push(tag("a"), u64(value.length));
    value.forEach((item: CanonicalValue, i: number) => encodeInto(item, out, `${path}[${i}]`));
  } else if (typeof value === "object" && isPlainObject(value)) {
    const record = value as { readonly [key: string]: CanonicalValue | undefined };
    const entries = Object.keys(record)
      .filter((k) => record[k] !== undefined)
      .map((k) => [utf8.encode(k), k] as const)
      .sort((a, b) => compareBytes(a[0], b[0]));
    out.push(tag("o"), u64(entries.length));
    for (const [bytes, k] of entries) {
      out.push(...frame(bytes));
      encodeInto(record[k] as CanonicalValue, out, `${path}.${k}`);
    }
  } else {
    throw new RangeError(`cannot key ${path}: ${Object.prototype.toString.call(value)} is not a plain JSON value`);
  }
};

const isPlainObject = (value: object): boolean => {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

const canonicalNumberAt = (n: number, path: string): string => {
  if (!Number.isFinite(n)) throw new RangeError(`cannot key ${path}: the number ${n} has no JSON form`);
  return canonicalNumber(n);
};

/** The canonical bytes of a JSON-like value (see the module header). */
export const canonicalBytes = (value: CanonicalValue): Uint8Array => {
  const parts: Uint8Array[] = [];
  encodeInto(value, parts, "config");
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
};

/** Everything a node's cache key is made of. */
export interface KeyParts {
  readonly stage: string;
  readonly version: string;
  readonly config: CanonicalValue;
  /** input name → digest of the upstream output bound to it */
  readonly inputs: Readonly<Record<string, Digest>>;
  /** backend/library versions for stages whose results depend on them; "" when none */
  readonly environment: string;
}

/** The cache key of a node: SHA-256 over the framed parts (module header). */
export const nodeKey = (parts: KeyParts): Digest => {
  const h = hasher();
  const add = (chunks: Uint8Array[]) => chunks.forEach((c) => h.update(c));
  add(frameText("ivaan/key/v1"));
  add(frameText(parts.stage));
  add(frameText(parts.version));
  add(frame(canonicalBytes(parts.config)));
  const names = Object.keys(parts.inputs).map((k) => [utf8.encode(k), k] as const).sort((a, b) =>
    compareBytes(a[0], b[0])
  );
  h.update(u64(names.length));
  for (const [bytes, name] of names) {
    add(frame(bytes));
    add(frameText(parts.inputs[name] as string));
  }
  add(frameText(parts.environment));
  return h.digest("hex");
};
