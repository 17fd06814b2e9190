import assert from "node:assert/strict";
import { CsvError, parseCsv, parseRowsCsv } from "./csv.ts";

const errorOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof CsvError, String(e));
    return e.message;
  }
  assert.fail("expected a CsvError");
};

Deno.test("RFC 4180: quoted commas, doubled quotes, line breaks in quotes, CRLF, BOM, no final newline", () => {
  const text = '\uFEFFa,b,c\r\n"x, y","say ""hi""",3\r\n"two\nlines",,"last"';
  assert.deepEqual(parseCsv(text, "t.csv").map((r) => r.fields), [
    ["a", "b", "c"],
    ["x, y", 'say "hi"', "3"],
    ["two\nlines", "", "last"],
  ]);
  assert.deepEqual(parseCsv(text, "t.csv").map((r) => r.lines), [[1, 1, 1], [2, 2, 2], [3, 4, 4]]);
  assert.deepEqual(parseCsv("a\n\nb\n", "t.csv").map((r) => r.fields), [["a"], ["b"]], "blank lines skipped");
  assert.deepEqual(parseCsv("", "t.csv"), []);
});

Deno.test("rows: label text kept, §A3 columns read in canonical order, other columns ignored, missing cells", () => {
  const text = [
    "id,solidity,label,notes,area,extra",
    '1,0.9,tumour,"a, b",120,zz',
    "2,,2.0,,1e2,",
    "3,NaN,lymph,,  85 ,",
    "4,inf,lymph,,NA,",
  ].join("\n");
  const { rows, features } = parseRowsCsv(text, "rows.csv");
  assert.deepEqual(features, ["area", "solidity"]);
  assert.deepEqual(rows, [
    { label: "tumour", values: { area: 120, solidity: 0.9 } },
    { label: "2.0", values: { area: 100, solidity: null } },
    { label: "lymph", values: { area: 85, solidity: null } },
    { label: "lymph", values: { area: null, solidity: null } },
  ]);
  const chosen = parseRowsCsv(text, "rows.csv", { features: ["id", "area"] });
  assert.deepEqual(chosen.features, ["id", "area"]);
  assert.deepEqual(chosen.rows[0]?.values, { id: 1, area: 120 });
});

Deno.test("errors name the file, the line and the column", () => {
  assert.equal(
    errorOf(() => parseRowsCsv("area,class\n1,a\n", "r.csv")),
    'r.csv line 1: no "label" column (columns: area, class)',
  );
  assert.equal(
    errorOf(() => parseRowsCsv('label,area\na,1\n"b\nc",1\nd,1,5\n', "r.csv")),
    "r.csv line 5: 3 fields, the header has 2",
  );
  assert.equal(
    errorOf(() => parseRowsCsv('label,extent,area\na,0.5,1\nb,0.5,"1,5"\n', "r.csv")),
    'r.csv line 3, column 3 ("area"): cannot read "1,5" as a number',
  );
  assert.match(errorOf(() => parseRowsCsv("label,area\na,0x10\n", "r.csv")), /line 2, column 2 \("area"\)/);
  assert.equal(
    errorOf(() => parseRowsCsv("label,area\na,1\n", "r.csv", { features: ["size"] })),
    'r.csv line 1: no column "size" (columns: label, area)',
  );
  assert.match(errorOf(() => parseRowsCsv("label,foo\na,1\n", "r.csv")), /^r.csv line 1: no feature column/);
  assert.match(errorOf(() => parseRowsCsv("", "r.csv")), /^r.csv: empty file/);
  assert.equal(
    errorOf(() => parseRowsCsv('label,area\n"a,1\n', "r.csv")),
    "r.csv line 2: a quoted field is not closed",
  );
  assert.match(errorOf(() => parseRowsCsv('label,area\na"b,1\n', "r.csv")), /^r.csv line 2: a quote inside/);
  assert.match(errorOf(() => parseRowsCsv('label,area\n"a"b,1\n', "r.csv")), /^r.csv line 2: unexpected "b"/);
  assert.equal(
    errorOf(() => parseRowsCsv("label,area,label\n", "r.csv")),
    'r.csv line 1: column "label" appears twice',
  );
});
