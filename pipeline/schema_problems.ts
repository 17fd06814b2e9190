/**
 * Schema decoding errors as user-facing lines: `field: expected …, found …` (the default Schema
 * message names the expected type and the path but not the value that was found).
 */
import { type Schema, SchemaIssue } from "effect";

/** A short JSON rendering of a value for an error line. */
export const describeValue = (v: unknown): string => {
  if (v === undefined) return "nothing";
  try {
    const s = JSON.stringify(v);
    return s.length > 60 ? `${s.slice(0, 57)}...` : s;
  } catch {
    return String(v);
  }
};

const valueAt = (root: unknown, path: ReadonlyArray<unknown>): unknown =>
  path.reduce<unknown>(
    (v, k) => (typeof v === "object" && v !== null ? (v as Record<PropertyKey, unknown>)[k as PropertyKey] : undefined),
    root,
  );

const standardIssues = SchemaIssue.makeFormatterStandardSchemaV1();

/** One line per problem of `error`, found while decoding `input`. */
export const schemaProblems = (error: Schema.SchemaError, input: unknown): string[] =>
  standardIssues(error.issue).issues.map((issue) => {
    const path = (issue.path ?? []).map((p) => (typeof p === "object" && p !== null && "key" in p ? p.key : p));
    const field = path.length === 0 ? "value" : path.map(String).join(".");
    const expected = issue.message.replace(/^Expected /, "expected ");
    return issue.message === "Missing key"
      ? `${field}: missing (required field)`
      : issue.message.startsWith("Expected no excess")
      ? `${field}: unknown field, found ${describeValue(valueAt(input, path))}`
      : `${field}: ${expected}, found ${describeValue(valueAt(input, path))}`;
  });
