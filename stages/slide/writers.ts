/**
 * Output files of a whole slide, written as they are produced, so that a slide's nuclei are never
 * all in memory: QuPath GeoJSON (`geoJsonStream`) and a per-nucleus CSV table (`csvStream`).
 *
 * Mental model: open → `add` a batch (one tile's nuclei) as often as needed → `close`. Everything
 * goes into `PATH.partial`; `close` writes the ending, fsyncs the file, renames it to `PATH` (atomic
 * on POSIX) and fsyncs the directory (best effort), so a crash at any point leaves no truncated file under the
 * final name — at worst a `.partial` one. `abort` (or leaving an `await using` block without
 * `close`) removes the partial file.
 *
 * The GeoJSON is byte for byte what the per-image writer produces for the same detections,
 * `JSON.stringify(qupathGeoJson(all)) + "\n"` (stages/predict/outputs.ts), each feature built by
 * the same `qupathFeature`.
 *
 * Gotchas:
 * - Feature ids must be unique across the whole slide (`geoJsonProblems` rejects duplicates); the
 *   writer does not check, since that would keep every id in memory.
 * - Calls are queued, so an `add` not awaited still lands in order; after a failed write the stream
 *   only accepts `abort` (what follows a failed write could not be trusted).
 * - Failures reject with `SlideOutputError`, naming the final path and the system's message.
 */
import { Data } from "effect";
import { dirname } from "node:path";
import { FEATURE_NAMES } from "../attributes/mask_features.ts";
import { type Detection, qupathFeature } from "../predict/geojson.ts";
import type { Nucleus } from "../predict/nuclei.ts";

/** An output file that cannot be written: the file and what went wrong. */
export class SlideOutputError extends Data.TaggedError("SlideOutputError")<{
  readonly file: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `${this.file}: ${this.reason}`;
  }
}

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** A text file written in pieces under `PATH.partial` and renamed into place by `close`. */
interface AtomicText {
  write(text: string): Promise<void>;
  /** writes `text`, fsyncs, renames to the final path and fsyncs its directory */
  close(text: string): Promise<void>;
  abort(): Promise<void>;
}

const atomicText = async (path: string, head: string): Promise<AtomicText> => {
  const partial = `${path}.partial`, encoder = new TextEncoder();
  const fail = (doing: string, e: unknown) => new SlideOutputError({ file: path, reason: `${doing}: ${describe(e)}` });
  let file: Deno.FsFile;
  try {
    file = await Deno.open(partial, { write: true, create: true, truncate: true });
  } catch (e) {
    throw fail(`cannot create ${partial}`, e);
  }
  let state: "open" | "failed" | "closed" | "aborted" = "open";
  let queue: Promise<unknown> = Promise.resolve();
  const serial = (op: () => Promise<void>): Promise<void> => {
    const next = queue.then(op);
    queue = next.catch(() => {});
    return next;
  };
  const writeAll = async (text: string) => {
    const bytes = encoder.encode(text);
    for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
  };
  const whenOpen = (what: string) => {
    if (state === "open") return;
    throw new SlideOutputError({
      file: path,
      reason: state === "failed"
        ? `cannot ${what}: an earlier write failed (abort the stream)`
        : `cannot ${what}: ${state}`,
    });
  };
  const guarded = async (doing: string, op: () => Promise<void>) => {
    try {
      await op();
    } catch (e) {
      state = "failed";
      throw e instanceof SlideOutputError ? e : fail(doing, e);
    }
  };
  const io: AtomicText = {
    write: (text) =>
      serial(async () => {
        whenOpen("write");
        await guarded(`cannot write ${partial}`, () => writeAll(text));
      }),
    close: (text) =>
      serial(async () => {
        whenOpen("close");
        await guarded(`cannot finish ${partial}`, async () => {
          await writeAll(text);
          await file.sync();
          file.close();
        });
        await guarded(`cannot rename ${partial} to ${path}`, () => Deno.rename(partial, path));
        state = "closed";
        // the rename is durable once the directory is; best effort, since the file is complete either
        // way and some file systems cannot open a directory for syncing
        try {
          using dir = await Deno.open(dirname(path), { read: true });
          await dir.sync();
        } catch { /* see above */ }
      }),
    abort: () =>
      serial(async () => {
        if (state === "closed" || state === "aborted") return;
        state = "aborted";
        try {
          file.close();
        } catch { /* already closed by a failed close */ }
        await Deno.remove(partial).catch((e) => {
          if (!(e instanceof Deno.errors.NotFound)) throw fail(`cannot remove ${partial}`, e);
        });
      }),
  };
  await io.write(head).catch(async (e) => {
    await io.abort().catch(() => {});
    throw e;
  });
  return io;
};

/** A file being written: batches in with `add`, then `close` (or `abort`). */
export interface OutputStream<Row> extends AsyncDisposable {
  /** the final path (the data goes to `path + ".partial"` until `close`) */
  readonly path: string;
  /** rows (features, nuclei) added so far */
  readonly count: number;
  add(rows: ReadonlyArray<Row>): Promise<void>;
  /** completes the file and renames it into place */
  close(): Promise<void>;
  /** removes the partial file; does nothing after `close` */
  abort(): Promise<void>;
}

const outputStream = async <Row>(
  path: string,
  head: string,
  tail: string,
  piece: (row: Row, index: number) => string,
): Promise<OutputStream<Row>> => {
  const io = await atomicText(path, head);
  let count = 0, closed = false;
  return {
    path,
    get count() {
      return count;
    },
    async add(rows) {
      let text = "";
      rows.forEach((row, i) => (text += piece(row, count + i))); // may throw (a bad id): nothing written
      count += rows.length;
      await io.write(text);
    },
    async close() {
      await io.close(tail);
      closed = true;
    },
    abort: () => io.abort(),
    async [Symbol.asyncDispose]() {
      if (!closed) await io.abort();
    },
  };
};

/**
 * A QuPath GeoJSON FeatureCollection written detection by detection (see the module comment).
 *
 * @example
 * ```ts ignore
 * await using out = await geoJsonStream("slide.geojson");
 * for (const tile of tiles) await out.add(detectionsOf(tile.nuclei, classes));
 * await out.close();
 * ```
 */
export const geoJsonStream = (path: string): Promise<OutputStream<Detection>> =>
  outputStream<Detection>(
    path,
    `{"type":"FeatureCollection","features":[`,
    "]}\n",
    (d, i) => (i === 0 ? "" : ",") + JSON.stringify(qupathFeature(d)),
  );

/** One column of a CSV table: its header and the text of its cell for a row. */
export interface CsvColumn<Row> {
  readonly name: string;
  /** the cell's text, unquoted (`csvField` quotes it when needed); "" for a missing value */
  readonly cell: (row: Row) => string;
}

/** A CSV field: quoted when it holds a comma, a quote or a line break, quotes doubled (RFC 4180). */
export const csvField = (text: string): string => /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;

/**
 * `v` rounded to `decimals` decimals, trailing zeros dropped (`fixed(2.5, 3)` → "2.5"); −0 is "0",
 * null and non-finite values the empty (missing) cell.
 */
export const fixed = (v: number | null, decimals: number): string => {
  if (v === null || !Number.isFinite(v)) return "";
  const scale = 10 ** decimals;
  return String(Math.round(v * scale) / scale + 0);
};

/** `v` to `digits` significant digits (`significant(0.000123456789, 6)` → "0.000123457"); missing as `fixed`. */
export const significant = (v: number | null, digits: number): string =>
  v === null || !Number.isFinite(v) ? "" : String(Number(v.toPrecision(digits)) + 0);

/**
 * The per-nucleus table: id, centroid_x, centroid_y (pixel-corner coordinates, 2 decimals as in
 * nuclei.ts), class, score (4 decimals, as nuclei.ts rounds it), area (pixels, 2 decimals should it
 * not be a count), the 11 mask features under their §A3 names (6 significant digits — the features
 * match their oracle to 1e-6 relative, more digits would be noise; empty when not measured, as
 * `Nucleus.features` holds only the binned ones) and the description.
 */
export const NUCLEUS_COLUMNS: ReadonlyArray<CsvColumn<Nucleus>> = [
  { name: "id", cell: (n) => String(n.id) },
  { name: "centroid_x", cell: (n) => fixed(n.centroid[0], 2) },
  { name: "centroid_y", cell: (n) => fixed(n.centroid[1], 2) },
  { name: "class", cell: (n) => n.class },
  { name: "score", cell: (n) => fixed(n.score, 4) },
  { name: "area", cell: (n) => fixed(n.area, 2) },
  ...FEATURE_NAMES.map((f): CsvColumn<Nucleus> => ({ name: f, cell: (n) => significant(n.features[f] ?? null, 6) })),
  { name: "description", cell: (n) => n.description },
];

/**
 * A CSV table written batch by batch (see the module comment): a header of the columns' names,
 * then one line per row, fields quoted per RFC 4180 (`csvField`), lines ending in LF.
 *
 * @example
 * ```ts ignore
 * await using out = await csvStream("slide.csv", NUCLEUS_COLUMNS);
 * for (const tile of tiles) await out.add(tile.nuclei);
 * await out.close();
 * ```
 */
export const csvStream = <Row>(path: string, columns: ReadonlyArray<CsvColumn<Row>>): Promise<OutputStream<Row>> => {
  const line = (fields: ReadonlyArray<string>) => fields.map(csvField).join(",") + "\n";
  return outputStream<Row>(path, line(columns.map((c) => c.name)), "", (row) => line(columns.map((c) => c.cell(row))));
};
