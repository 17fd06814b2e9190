/**
 * Sources: the leaves of a pipeline. A source has a digest (what downstream keys use) and a value
 * (what downstream stages receive). Files and directories are keyed by content hash; a remembered
 * size+mtime lets a rerun skip re-hashing unchanged files. The value handed to stages is a
 * reference (path, size, digest), never the bytes, so a stage reads only what it was given.
 */
import { Effect, Option, Schema } from "effect";
import { type Codec } from "./codec/codec.ts";
import { json } from "./codec/json.ts";
import { type CodecError, SourceError, type StoreError } from "./errors.ts";
import { type Digest, digestFiles, hasher } from "./hash.ts";
import { Store } from "./store/store.ts";

/** A source of values of type A. */
export interface Source<A> {
  /** e.g. `file data/x.csv` */
  readonly describe: string;
  /** the content digest and the value; may consult the Store's fingerprint memory */
  readonly resolve: Effect.Effect<
    { readonly digest: Digest; readonly value: A },
    SourceError | StoreError | CodecError,
    Store
  >;
}

/** A file handed to a stage: absolute path, size and content digest. */
export interface FileRef {
  readonly path: string;
  readonly size: number;
  readonly digest: Digest;
}

/** A directory handed to a stage: its files (relative paths, sorted) with sizes and digests. */
export interface DirRef {
  readonly path: string;
  readonly files: ReadonlyArray<{ readonly name: string; readonly size: number; readonly digest: Digest }>;
}

/** The codec a stage declares for an input wired to a `file` source. */
export const fileRefCodec: Codec<FileRef> = json(
  Schema.Struct({ path: Schema.String, size: Schema.Number, digest: Schema.String }),
);

/** The codec a stage declares for an input wired to a `directory` source. */
export const dirRefCodec: Codec<DirRef> = json(Schema.Struct({
  path: Schema.String,
  files: Schema.Array(Schema.Struct({ name: Schema.String, size: Schema.Number, digest: Schema.String })),
}));

const describeError = (e: unknown) => (e instanceof Error ? e.message : String(e));

const absolute = (path: string): string => (path.startsWith("/") ? path : `${Deno.cwd()}/${path}`);

const hashFile = async (path: string): Promise<Digest> => {
  const h = hasher();
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) h.update(chunk);
  return h.digest("hex");
};

/** Content digest of one file, re-hashing only when its size or mtime changed. */
const fileDigest = (path: string): Effect.Effect<FileRef, SourceError | StoreError, Store> =>
  Effect.gen(function* () {
    const store = yield* Store;
    const stat = yield* Effect.tryPromise({
      try: () => Deno.stat(path),
      catch: (e) => new SourceError({ path, reason: describeError(e) }),
    });
    if (!stat.isFile) return yield* new SourceError({ path, reason: "expected a file" });
    const mtimeMs = stat.mtime?.getTime() ?? 0;
    const remembered = yield* store.fingerprint(path, stat.size, mtimeMs);
    if (Option.isSome(remembered)) return { path, size: stat.size, digest: remembered.value };
    const digest = yield* Effect.tryPromise({
      try: () => hashFile(path),
      catch: (e) => new SourceError({ path, reason: describeError(e) }),
    });
    yield* store.rememberFingerprint({ path, size: stat.size, mtimeMs, digest });
    return { path, size: stat.size, digest };
  });

/** A file, keyed by its content. Stages receive a FileRef. */
export const file = (path: string): Source<FileRef> => {
  return {
    describe: `file ${path}`,
    resolve: Effect.map(fileDigest(absolute(path)), (ref) => ({ digest: ref.digest, value: ref })),
  };
};

const listFiles = async (root: string, prefix = ""): Promise<string[]> => {
  const names: string[] = [];
  for await (const e of Deno.readDir(`${root}/${prefix}`)) {
    const rel = prefix === "" ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory) names.push(...(await listFiles(root, rel)));
    else if (e.isFile) names.push(rel);
  }
  return names.sort();
};

/** Every file under a directory, keyed by names and contents. Stages receive a DirRef. */
export const directory = (path: string): Source<DirRef> => {
  const abs = absolute(path);
  const listing: Effect.Effect<DirRef, SourceError | StoreError, Store> = Effect.gen(function* () {
    const names = yield* Effect.tryPromise({
      try: () => listFiles(abs),
      catch: (e) => new SourceError({ path: abs, reason: describeError(e) }),
    });
    const files = yield* Effect.forEach(
      names,
      (name) => Effect.map(fileDigest(`${abs}/${name}`), (r) => ({ name, size: r.size, digest: r.digest })),
      { concurrency: 4 },
    );
    return { path: abs, files };
  });
  const digestOf = (ref: DirRef) =>
    digestFiles(Object.fromEntries(ref.files.map((f) => [f.name, new TextEncoder().encode(`${f.size}:${f.digest}`)])));
  return {
    describe: `directory ${path}`,
    resolve: Effect.map(listing, (ref) => ({ digest: digestOf(ref), value: ref })),
  };
};

/** An in-line value (e.g. a parameter list), keyed by its encoded bytes. */
export const value = <A>(codec: Codec<A>, v: A, label = "value"): Source<A> => ({
  describe: label,
  resolve: Effect.map(codec.encode(v), (payload) => ({ digest: digestFiles(payload), value: v })),
});
