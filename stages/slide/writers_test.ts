import assert from "node:assert/strict";
import { parseCsv } from "../attributes/csv.ts";
import { FEATURE_NAMES } from "../attributes/mask_features.ts";
import { type Detection, geoJsonProblems, qupathGeoJson } from "../predict/geojson.ts";
import type { Nucleus } from "../predict/nuclei.ts";
import {
  csvField,
  csvStream,
  fixed,
  geoJsonStream,
  NUCLEUS_COLUMNS,
  significant,
  SlideOutputError,
} from "./writers.ts";

// n squares of side 2 on a row, ids 1..n, every third with a non-finite measurement (dropped on export)
const squares = (n: number): Detection[] =>
  Array.from({ length: n }, (_, i): Detection => {
    const x = 3 * i + 0.5, y = 1.25;
    return {
      id: i + 1,
      className: i % 2 === 0 ? "Neoplastic" : 'Odd "class", é',
      colour: [i % 256, 100, 200],
      ring: [[x, y], [x + 2, y], [x + 2, y + 2], [x, y + 2], [x, y]],
      measurements: { "Area px^2": 4, "Score": 0.5 + i / 100, ...(i % 3 === 0 ? { bad: NaN } : {}) },
    };
  });

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

Deno.test("geoJsonStream: 3 batches give the bytes of the one-shot writer, valid QuPath GeoJSON", async () => {
  const dir = await Deno.makeTempDir(), path = `${dir}/slide.geojson`, all = squares(7);
  const out = await geoJsonStream(path);
  await out.add(all.slice(0, 3));
  await out.add([]);
  await out.add(all.slice(3, 4));
  assert.equal(await exists(path), false, "nothing under the final name before close");
  assert.equal(await exists(`${path}.partial`), true);
  await out.add(all.slice(4));
  assert.equal(out.count, 7);
  await out.close();
  const text = await Deno.readTextFile(path);
  assert.equal(text, JSON.stringify(qupathGeoJson(all)) + "\n");
  assert.deepEqual(geoJsonProblems(JSON.parse(text)), []);
  assert.equal(await exists(`${path}.partial`), false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("geoJsonStream: no detections is an empty FeatureCollection; unawaited adds land in order", async () => {
  const dir = await Deno.makeTempDir();
  const empty = await geoJsonStream(`${dir}/empty.geojson`);
  await empty.close();
  assert.equal(await Deno.readTextFile(`${dir}/empty.geojson`), JSON.stringify(qupathGeoJson([])) + "\n");
  const all = squares(5), out = await geoJsonStream(`${dir}/queued.geojson`);
  const pending = [out.add(all.slice(0, 2)), out.add(all.slice(2)), out.close()];
  await Promise.all(pending);
  assert.equal(await Deno.readTextFile(`${dir}/queued.geojson`), JSON.stringify(qupathGeoJson(all)) + "\n");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("abort removes the partial file and leaves nothing; abort after close keeps the file", async () => {
  const dir = await Deno.makeTempDir(), path = `${dir}/a.geojson`;
  const out = await geoJsonStream(path);
  await out.add(squares(2));
  await out.abort();
  assert.deepEqual([...Deno.readDirSync(dir)], []);
  await assert.rejects(out.add(squares(1)), SlideOutputError);
  await assert.rejects(out.close(), SlideOutputError);
  const done = await geoJsonStream(path);
  await done.close();
  await done.abort();
  assert.equal(await exists(path), true);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("await using without close aborts: no file under either name", async () => {
  const dir = await Deno.makeTempDir(), path = `${dir}/u.csv`;
  await assert.rejects(async () => {
    await using out = await csvStream(path, NUCLEUS_COLUMNS);
    await out.add([nucleus(1, "x")]);
    throw new Error("tile failed");
  }, /tile failed/);
  assert.deepEqual([...Deno.readDirSync(dir)], []);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a stream into a missing directory is a SlideOutputError naming the path", async () => {
  const dir = await Deno.makeTempDir(), path = `${dir}/missing/slide.geojson`;
  const error = await geoJsonStream(path).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof SlideOutputError, String(error));
  assert.equal(error.file, path);
  assert.ok(error.message.includes(path), error.message);
  await assert.rejects(csvStream(`${dir}/missing/t.csv`, NUCLEUS_COLUMNS), (e) => e instanceof SlideOutputError);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a detection that cannot be exported (bad id) rejects add and writes nothing of its batch", async () => {
  const dir = await Deno.makeTempDir(), path = `${dir}/b.geojson`, all = squares(3);
  const out = await geoJsonStream(path);
  await out.add(all.slice(0, 1));
  await assert.rejects(out.add([{ ...(all[1] as Detection), id: -1 }]), RangeError);
  await out.add(all.slice(1));
  await out.close();
  assert.equal(await Deno.readTextFile(path), JSON.stringify(qupathGeoJson(all)) + "\n");
  await Deno.remove(dir, { recursive: true });
});

const nucleus = (id: number, description: string, features: Record<string, number | null> = {}): Nucleus => ({
  id,
  class: id % 2 === 0 ? "Inflammatory" : "Neoplastic",
  score: 0.9123,
  centroid: [10.25 + id, 20.5],
  bbox: [0, 0, 1, 1],
  contour: [],
  area: 37,
  attributes: {},
  features,
  description,
});

Deno.test("csvField quotes commas, quotes and line breaks (RFC 4180) and nothing else", () => {
  assert.equal(csvField("a large nucleus"), "a large nucleus");
  assert.equal(csvField("a large, dark nucleus"), '"a large, dark nucleus"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField("two\nlines"), '"two\nlines"');
  assert.equal(csvField("cr\rlf"), '"cr\rlf"');
  assert.equal(csvField(""), "");
});

Deno.test("number cells: fixed decimals and significant digits, trailing zeros dropped, missing empty", () => {
  assert.equal(fixed(12.3456, 2), "12.35");
  assert.equal(fixed(37, 2), "37");
  assert.equal(fixed(-0.001, 2), "0");
  assert.equal(fixed(0.1 + 0.2, 4), "0.3");
  assert.equal(fixed(NaN, 2), "");
  assert.equal(fixed(null, 2), "");
  assert.equal(significant(0.000123456789, 6), "0.000123457");
  assert.equal(significant(1234567.89, 6), "1234570");
  assert.equal(significant(0.5, 6), "0.5");
  assert.equal(significant(Infinity, 6), "");
});

Deno.test("csvStream: header of 18 columns, 3 batches parse back cell for cell, quoting round-trips", async () => {
  const dir = await Deno.makeTempDir(), path = `${dir}/nuclei.csv`;
  const features = Object.fromEntries(FEATURE_NAMES.map((f, k) => [f, k === 3 ? null : (k + 1) / 7]));
  const rows = [
    nucleus(1, "a large, very dark neoplastic nucleus", features),
    nucleus(2, 'a "quoted" nucleus'),
    nucleus(3, "a nucleus\nover two lines"),
    nucleus(4, "an ordinary nucleus", { area: 37 }),
  ];
  const out = await csvStream(path, NUCLEUS_COLUMNS);
  await out.add(rows.slice(0, 1));
  await out.add(rows.slice(1, 3));
  await out.add(rows.slice(3));
  await out.close();
  const records = parseCsv(await Deno.readTextFile(path), path).map((r) => r.fields);
  assert.deepEqual(records[0], [
    "id",
    "centroid_x",
    "centroid_y",
    "class",
    "score",
    "area",
    ...FEATURE_NAMES,
    "description",
  ]);
  assert.equal(records.length, 5);
  assert.deepEqual(records.slice(1).map((r) => r[r.length - 1]), rows.map((n) => n.description));
  assert.deepEqual(records[1]?.slice(0, 6), ["1", "11.25", "20.5", "Neoplastic", "0.9123", "37"]);
  assert.deepEqual(
    records[1]?.slice(6, 17),
    FEATURE_NAMES.map((_, k) => k === 3 ? "" : String(Number(((k + 1) / 7).toPrecision(6)))),
  );
  assert.deepEqual(records[2]?.slice(6, 17), FEATURE_NAMES.map(() => ""), "unmeasured features are empty cells");
  assert.equal(records[4]?.[6], "37");
  for (const r of records) assert.equal(r.length, 18);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("csvStream: custom columns; an empty table is its header line", async () => {
  const dir = await Deno.makeTempDir(), path = `${dir}/t.csv`;
  const out = await csvStream<{ name: string }>(path, [{ name: "name, quoted", cell: (r) => r.name }]);
  await out.close();
  assert.equal(await Deno.readTextFile(path), '"name, quoted"\n');
  await Deno.remove(dir, { recursive: true });
});
