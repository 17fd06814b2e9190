/**
 * Optional native sgemm: the system OpenBLAS through Deno FFI, called zero-copy on the WASM heap.
 *
 * Why: tfjs-wasm's XNNPACK matmul runs ≈ 24 GFLOP/s a thread; OpenBLAS ≈ 90 and uses every core
 * (BACKEND-NOTES.md). It is an accelerator, never a requirement: without `--allow-ffi`, without the
 * library (`apt-get install libopenblas0`; `deno task setup`), or with `IVAAN_BLAS=off`, `loadBlas` returns the reason
 * and the kernels stay on the pure-WASM path. `IVAAN_BLAS=/path/to/lib.so` picks another library
 * that exports `cblas_sgemm`; `OPENBLAS_NUM_THREADS` caps its threads as usual, and `setThreads`
 * changes them at run time where the library exports `openblas_set_num_threads`.
 */

const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

const CANDIDATES = [
  "libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
  "libopenblas.so",
  "libopenblas.dylib",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
  "/usr/local/opt/openblas/lib/libopenblas.dylib",
];

const SYMBOLS = {
  cblas_sgemm: {
    // order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
} as const;

/**
 * Row-major C[m, n] = op(A)[m, k] · op(B)[k, n] (+ C when `accumulate`); each view starts at its
 * matrix's first element and is dense (leading dimensions are the natural ones).
 */
export interface Blas {
  /** the library that was opened, for logs and cache keys */
  readonly library: string;
  /** the library's thread count, when it says (OpenBLAS does) */
  threads(): number | undefined;
  /** sets the thread count; false when the library cannot (not OpenBLAS) */
  setThreads(n: number): boolean;
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    accumulate?: boolean,
  ): void;
}

/**
 * Why there is no native BLAS: `disabled` (IVAAN_BLAS=off), `no-ffi` (no --allow-ffi), `not-found` (no library
 * opened; `chosen` is IVAAN_BLAS when it named the one library to try).
 */
export type BlasMissing = "disabled" | "no-ffi" | "not-found";

export type BlasLoad =
  | { readonly blas: Blas }
  | { readonly unavailable: string; readonly missing: BlasMissing; readonly chosen?: string };

const readEnv = (name: string): string | undefined => {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: the defaults apply
  }
};

const open = (library: string): Blas => {
  const lib = Deno.dlopen(library, SYMBOLS);
  const sgemm = lib.symbols.cblas_sgemm;
  const { openblas_set_num_threads: setThreads, openblas_get_num_threads: getThreads } = lib.symbols;
  return {
    library,
    threads: () => getThreads === null ? undefined : getThreads(),
    setThreads: (n) => {
      if (setThreads === null) return false;
      setThreads(n);
      return true;
    },
    sgemm: (transA, transB, m, n, k, a, b, c, accumulate = false) =>
      // stored shapes: A is [m, k] or, transposed, [k, m]; B is [k, n] or [n, k]; C is [m, n]
      sgemm(
        ROW_MAJOR,
        transA ? TRANS : NO_TRANS,
        transB ? TRANS : NO_TRANS,
        m,
        n,
        k,
        1,
        a,
        transA ? m : k,
        b,
        transB ? k : n,
        accumulate ? 1 : 0,
        c,
        n,
      ),
  };
};

let loaded: BlasLoad | undefined;

/** Opens the native BLAS once per process, or says why it is not used. */
export const loadBlas = (): BlasLoad => {
  if (loaded !== undefined) return loaded;
  const choice = readEnv("IVAAN_BLAS");
  if (choice === "off" || choice === "0") return loaded = { unavailable: "IVAAN_BLAS=off", missing: "disabled" };
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    return loaded = { unavailable: "no --allow-ffi permission", missing: "no-ffi" };
  }
  const tried: string[] = [];
  const chosen = choice !== undefined && choice !== "" && choice !== "on" ? choice : undefined;
  for (const library of chosen !== undefined ? [chosen] : CANDIDATES) {
    try {
      return loaded = { blas: open(library) };
    } catch (e) {
      tried.push(`${library}: ${e instanceof Error ? e.message.split("\n")[0] : e}`);
    }
  }
  const unavailable = `no OpenBLAS found (apt-get install libopenblas0); tried ${tried.join("; ")}`;
  return loaded = { unavailable, missing: "not-found", ...(chosen === undefined ? {} : { chosen }) };
};
