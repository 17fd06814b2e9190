/**
 * A small CSV reader for `deno task attributes`: one row per nucleus, a `label` column and feature columns.
 *
 * Input: RFC 4180 text (comma separated, `"` quoting with `""` escapes, fields may span lines; LF or CRLF; a
 * UTF-8 BOM is skipped). Output: `AttributeRow`s and the feature columns read. Feature columns are the §A3 names
 * present in the header (canonical order) unless a list is given; other columns are ignored.
 *
 * Gotchas: an empty cell is missing, and so are `NA`, `NaN`, `null`, `none` and infinities (any case), since Part B
 * treats non-finite values as missing. Anything else must be a plain decimal number (`1e-3` yes, `0x10` and `1,5`
 * no). Labels are kept as text; `fitAttributes` normalises them. Every error names the file, the line and, for a
 * cell, the column — lines count physical lines, so they match an editor even with quoted line breaks.
 */
import { Data, Effect } from "effect";
import { ATTRIBUTE_FEATURES, type AttributeRow } from "./fit.ts";
import { normaliseLabel, parseDecimal } from "./selection.ts";

/** A CSV file that cannot be read as attribute rows; the message names file, line and column. */
export class CsvError extends Data.TaggedError("CsvError")<{ readonly message: string }> {}

/** One record: its fields and the 1-based line each field starts on. */
interface CsvRecord {
  readonly fields: string[];
  readonly lines: number[];
}

/** Splits RFC 4180 text into records. Throws CsvError on a stray or unterminated quote. */
export const parseCsv = (text: string, file: string): CsvRecord[] => {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const records: CsvRecord[] = [];
  let fields: string[] = [], lines: number[] = [];
  let line = 1, pos = 0;
  const bad = (message: string, at = line) => new CsvError({ message: `${file} line ${at}: ${message}` });
  const endRecord = () => {
    // a blank line is one empty field: skip it rather than call it a ragged row
    if (!(fields.length === 1 && fields[0] === "" && lines.length === 1)) records.push({ fields, lines });
    fields = [];
    lines = [];
  };
  while (pos <= src.length) {
    const start = line;
    let value = "";
    if (src[pos] === '"') {
      pos++;
      for (;;) {
        if (pos >= src.length) throw bad("a quoted field is not closed", start);
        const ch = src[pos] as string;
        if (ch === '"') {
          if (src[pos + 1] === '"') {
            value += '"';
            pos += 2;
            continue;
          }
          pos++;
          break;
        }
        if (ch === "\n") line++;
        value += ch;
        pos++;
      }
      const next = src[pos];
      if (next !== undefined && next !== "," && next !== "\n" && next !== "\r") {
        throw bad(`unexpected ${JSON.stringify(next)} after a closing quote (quote the whole field)`);
      }
    } else {
      let end = pos;
      while (end < src.length && src[end] !== "," && src[end] !== "\n" && src[end] !== "\r") {
        if (src[end] === '"') {
          throw bad(`a quote inside an unquoted field (quote the whole field and double the quote)`);
        }
        end++;
      }
      value = src.slice(pos, end);
      pos = end;
    }
    fields.push(value);
    lines.push(start);
    const sep = src[pos];
    if (sep === ",") {
      pos++;
      continue;
    }
    if (sep === undefined) {
      // end of text: a final line break leaves one empty field, which endRecord drops
      endRecord();
      break;
    }
    pos += sep === "\r" && src[pos + 1] === "\n" ? 2 : 1;
    line++;
    endRecord();
  }
  return records;
};

const MISSING = new Set(["", "na", "nan", "null", "none", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"]);

/** The rows of a parsed file and the feature columns they hold. */
export interface CsvRows {
  readonly rows: AttributeRow[];
  readonly features: string[];
}

/**
 * Attribute rows from CSV text. `features`: the columns to read (all must exist); default the §A3 names present.
 * Throws CsvError, also when no row has a label (nothing to fit).
 */
export const parseRowsCsv = (
  text: string,
  file: string,
  options: { readonly features?: readonly string[] } = {},
): CsvRows => {
  const records = parseCsv(text, file);
  const header = records[0];
  if (header === undefined) throw new CsvError({ message: `${file}: empty file (expected a header row)` });
  const names = header.fields.map((h) => h.trim());
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new CsvError({ message: `${file} line 1: column "${twice}" appears twice` });
  const labelAt = names.indexOf("label");
  if (labelAt < 0) {
    throw new CsvError({ message: `${file} line 1: no "label" column (columns: ${names.join(", ")})` });
  }
  const features = options.features === undefined
    ? ATTRIBUTE_FEATURES.filter((f) => names.includes(f))
    : [...options.features];
  const missing = features.find((f) => !names.includes(f));
  if (missing !== undefined) {
    throw new CsvError({ message: `${file} line 1: no column "${missing}" (columns: ${names.join(", ")})` });
  }
  if (features.length === 0) {
    throw new CsvError({
      message: `${file} line 1: no feature column (expected some of: ${ATTRIBUTE_FEATURES.join(", ")})`,
    });
  }
  const at = features.map((f) => names.indexOf(f));
  const rows = records.slice(1).map((r): AttributeRow => {
    if (r.fields.length !== names.length) {
      throw new CsvError({
        message: `${file} line ${r.lines[0]}: ${r.fields.length} fields, the header has ${names.length}`,
      });
    }
    const values: Record<string, number | null> = {};
    for (const [k, f] of features.entries()) {
      const j = at[k] as number;
      const cell = (r.fields[j] as string).trim();
      const x = MISSING.has(cell.toLowerCase()) ? NaN : parseDecimal(cell);
      if (x === null) {
        throw new CsvError({
          message: `${file} line ${r.lines[j]}, column ${j + 1} ("${f}"): cannot read ${
            JSON.stringify(r.fields[j])
          } as a number`,
        });
      }
      // 1e999 overflows to ∞: non-finite = missing. defineProperty: a column "__proto__" stays a plain key
      const v = Number.isFinite(x) ? x : null;
      Object.defineProperty(values, f, { value: v, enumerable: true, writable: true, configurable: true });
    }
    return { label: r.fields[labelAt] as string, values };
  });
  if (!rows.some((r) => normaliseLabel(r.label) !== null)) {
    throw new CsvError({
      message: `${file}: ${
        rows.length === 0 ? "no rows after the header" : `every "label" cell of the ${rows.length} rows is empty`
      }; expected at least one labelled row (one row per nucleus)`,
    });
  }
  return { rows, features };
};

/** Reads and parses a rows CSV file (see `parseRowsCsv`). */
export const readRowsCsv = (
  path: string,
  options: { readonly features?: readonly string[] } = {},
): Effect.Effect<CsvRows, CsvError> =>
  Effect.tryPromise({
    try: () => Deno.readTextFile(path),
    catch: (e) => new CsvError({ message: `cannot read ${path}: ${e instanceof Error ? e.message : String(e)}` }),
  }).pipe(
    Effect.flatMap((text) =>
      Effect.try({
        try: () => parseRowsCsv(text, path, options),
        catch: (e) => (e instanceof CsvError ? e : new CsvError({ message: `${path}: ${String(e)}` })),
      })
    ),
  );
