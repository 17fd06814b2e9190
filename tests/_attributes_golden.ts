/**
 * Shared by the Part B golden and CLI tests: the fixture manifest written by
 * tests/fixtures/attributes/make_attributes_golden.py, and the comparison rule (floats to 1e-9 relative,
 * everything else — keys, lengths, strings, booleans, nulls — exactly).
 */
import assert from "node:assert/strict";
import type { AttributeParams, FitOptions } from "../stages/attributes/fit.ts";

/** The fixture folder. */
export const goldenDir = new URL("./fixtures/attributes/", import.meta.url);

/** One fixture: input CSV, expected §B6 JSON, the parameters and options, and the same as CLI flags. */
export interface GoldenCase {
  readonly name: string;
  readonly csv: string;
  readonly expected: string;
  readonly params: Partial<AttributeParams>;
  readonly options: FitOptions;
  readonly cli: string[];
}

export const goldenCases: GoldenCase[] = JSON.parse(await Deno.readTextFile(new URL("cases.json", goldenDir)));

/** Deep equality with floats to 1e-9 relative; reports the JSON path of the first difference. */
export const assertGolden = (actual: unknown, expected: unknown, path = "$"): void => {
  if (typeof expected === "number") {
    assert.equal(typeof actual, "number", `${path}: ${JSON.stringify(actual)} vs ${expected}`);
    const a = actual as number;
    if (Number.isInteger(expected) && Number.isInteger(a)) assert.equal(a, expected, path);
    else {
      assert.ok(
        Math.abs(a - expected) <= 1e-9 * Math.max(Math.abs(a), Math.abs(expected)),
        `${path}: ${a} vs ${expected}`,
      );
    }
  } else if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: not an array`);
    assert.equal(actual.length, expected.length, `${path}: length`);
    expected.forEach((e, i) => assertGolden(actual[i], e, `${path}[${i}]`));
  } else if (expected !== null && typeof expected === "object") {
    assert.ok(actual !== null && typeof actual === "object" && !Array.isArray(actual), `${path}: not an object`);
    const a = actual as Record<string, unknown>, e = expected as Record<string, unknown>;
    assert.deepEqual(Object.keys(a).sort(), Object.keys(e).sort(), `${path}: keys`);
    for (const k of Object.keys(e)) assertGolden(a[k], e[k], `${path}.${k}`);
  } else {
    assert.equal(actual, expected, path);
  }
};
