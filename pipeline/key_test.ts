import assert from "node:assert/strict";
import { canonicalBytes, type CanonicalValue, nodeKey } from "./key.ts";

interface GoldenCase {
  readonly stage: string;
  readonly version: string;
  readonly config: CanonicalValue;
  readonly inputs: Record<string, string>;
  readonly environment: string;
  readonly key: string;
}

const golden: GoldenCase[] = JSON.parse(
  await Deno.readTextFile(new URL("../tests/fixtures/key_golden.json", import.meta.url)),
);

/** Rebuilds objects with their keys in reverse order, recursively. */
const reversed = (v: CanonicalValue): CanonicalValue =>
  Array.isArray(v)
    ? v.map(reversed)
    : typeof v === "object" && v !== null
    ? Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reversed(x as CanonicalValue)]))
    : v;

Deno.test("nodeKey matches the independently computed golden keys (tests/fixtures/make_key_golden.py)", () => {
  assert.equal(golden.length, 3);
  for (const c of golden) assert.equal(nodeKey(c), c.key, `case ${c.stage}`);
});

Deno.test("nodeKey does not depend on object key order (config and inputs)", () => {
  for (const c of golden) {
    const inputs = Object.fromEntries(Object.entries(c.inputs).reverse());
    assert.equal(nodeKey({ ...c, config: reversed(c.config), inputs }), c.key);
  }
});

Deno.test("nodeKey is the same in another process", async () => {
  const c = golden[1] as GoldenCase;
  const code = `import { nodeKey } from ${JSON.stringify(new URL("./key.ts", import.meta.url).href)};
    const c = JSON.parse(Deno.args[0]); console.log(nodeKey(c));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code, JSON.stringify({ ...c, config: reversed(c.config) })],
    stdout: "piped",
  }).output();
  assert.equal(new TextDecoder().decode(out.stdout).trim(), c.key);
});

Deno.test("canonical numbers: 1 and 1.0 agree, -0 is 0, non-finite numbers are rejected", () => {
  assert.deepEqual(canonicalBytes({ a: 1 }), canonicalBytes({ a: 1.0 }));
  assert.deepEqual(canonicalBytes(-0), canonicalBytes(0));
  assert.notDeepEqual(canonicalBytes(1), canonicalBytes("1"));
  assert.throws(() => canonicalBytes({ a: NaN }), /config\.a.*NaN/);
  assert.throws(() => canonicalBytes([Infinity]), /config\[0\]/);
});

Deno.test("explicit null differs from a missing key; an undefined value equals a missing key", () => {
  assert.notDeepEqual(canonicalBytes({ a: null }), canonicalBytes({}));
  assert.deepEqual(canonicalBytes({ a: undefined }), canonicalBytes({}));
});

Deno.test("every key part changes the key", () => {
  const base = { stage: "s", version: "1", config: { x: 1 }, inputs: { a: "0".repeat(64) }, environment: "" };
  const k = nodeKey(base);
  const variants = [
    { ...base, stage: "t" },
    { ...base, version: "2" },
    { ...base, config: { x: 2 } },
    { ...base, inputs: { a: "1".repeat(64) } },
    { ...base, inputs: { b: "0".repeat(64) } },
    { ...base, environment: "wasm" },
  ];
  for (const v of variants) assert.notEqual(nodeKey(v), k);
  // framing: moving characters between adjacent fields must not collide
  assert.notEqual(nodeKey({ ...base, stage: "s1", version: "" }), nodeKey({ ...base, stage: "s", version: "1" }));
});

Deno.test("class instances and other non-JSON values cannot be keyed", () => {
  assert.throws(() => canonicalBytes({ when: new Date(0) } as unknown as CanonicalValue), /not a plain JSON value/);
});
