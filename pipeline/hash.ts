/**
 * SHA-256 helpers shared by keys, digests and source fingerprints.
 *
 * Digests are lowercase hex strings (64 characters). Hashing goes through `node:crypto`, which is
 * synchronous and streams large inputs without copying them into one buffer.
 */
import { createHash, type Hash } from "node:crypto";

/** A lowercase hex SHA-256 digest (64 characters). */
export type Digest = string;

/** SHA-256 of one byte array. */
export const sha256 = (bytes: Uint8Array): Digest => createHash("sha256").update(bytes).digest("hex");

/** SHA-256 of a UTF-8 string. */
export const sha256Text = (text: string): Digest => createHash("sha256").update(text, "utf8").digest("hex");

/** An incremental hasher, for inputs that arrive in pieces (files, framed fields). */
export const hasher = (): Hash => createHash("sha256");

/**
 * Digest of a set of named byte arrays (an encoded payload): the hash of the length-prefixed
 * (name, bytes) pairs in sorted name order, so it does not depend on the order they were produced.
 */
export const digestFiles = (files: Readonly<Record<string, Uint8Array>>): Digest => {
  const h = hasher();
  const names = Object.keys(files).sort();
  h.update(u64(names.length));
  for (const name of names) {
    const nameBytes = new TextEncoder().encode(name);
    const bytes = files[name] as Uint8Array;
    h.update(u64(nameBytes.length)).update(nameBytes).update(u64(bytes.length)).update(bytes);
  }
  return h.digest("hex");
};

/** An unsigned 64-bit little-endian integer, the length prefix used by every framed encoding here. */
export const u64 = (n: number): Uint8Array => {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`u64: ${n} is not a non-negative safe integer`);
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, n >>> 0, true); // low 32 bits
  view.setUint32(4, Math.floor(n / 2 ** 32), true); // high bits
  return out;
};
