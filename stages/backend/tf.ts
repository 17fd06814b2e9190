/**
 * The TfBackend service: which tfjs backend computes, chosen once at the task boundary.
 *
 * Layers: `wasm` (default; SIMD, with our fast kernels registered over the slow or missing ones),
 * `cpu` (the numerical reference), `webgpu` (Deno's navigator.gpu; needs a GPU adapter) and `node`
 * (tfjs-node, used only when it is installed — its install script downloads libtensorflow, which
 * cannot work offline). A failed initialisation is a `BackendUnavailable` error, never a silent
 * fallback (tf.setBackend returns false instead of throwing: we check it).
 *
 * Reads: `webgpu` cannot read values synchronously under Deno (tfjs-webgpu's `dataSync` draws through a
 * 2D canvas, which Deno has not), so the model takes its value-dependent decisions (peaks, the
 * attention masks, the loss plan) either from values already read (`prefetch`: `data()` caches them
 * on the host, after which `dataSync` works) or as tensor ops; `readsSynchronously` says which.
 *
 * Gotchas: tfjs keeps one global engine, so only one backend is active per process; the WASM
 * binaries are loaded from the package's own dist/ folder (resolved through the module resolver).
 * Threads: under Deno tfjs-wasm detects Node and runs single-threaded; see BACKEND-NOTES.md. On
 * `wasm`, matrix products go to the system OpenBLAS through FFI when it can be opened (multi-threaded,
 * ≈ 4× XNNPACK's speed; `threads` sets its thread count); otherwise they stay on WASM and `matmul`
 * says why.
 */
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { Context, Data, Effect, Layer } from "effect";
import { registerCpuKernels, registerWasmKernels } from "./kernels/mod.ts";
import { registerWebGpuAddN } from "./kernels/webgpu_addn.ts";
import { useBlas } from "./kernels/batch_matmul.ts";
import { loadBlas } from "./kernels/blas.ts";

export const BACKENDS = ["wasm", "cpu", "webgpu", "node"] as const;
export type BackendName = (typeof BACKENDS)[number];

/** A backend that cannot start here, with the reason. */
export class BackendUnavailable
  extends Data.TaggedError("BackendUnavailable")<{ readonly backend: string; readonly reason: string }> {
  override get message(): string {
    return `backend '${this.backend}' is not available: ${this.reason}`;
  }
}

export interface TfBackendShape {
  readonly name: BackendName;
  /** e.g. `wasm+openblas/tfjs-4.22.0/numerics-3`, for cache keys of results that depend on the backend */
  readonly environment: string;
  /** how matrix products run, e.g. `OpenBLAS (libopenblas.so.0) via FFI` or `XNNPACK (…why no BLAS)` */
  readonly matmul: string;
}

/** The TfBackend service key and its layers. */
export class TfBackend extends Context.Service<TfBackend, TfBackendShape>()("ivaan/backend/TfBackend") {}

/**
 * A stage's `environment` when its results depend on the backend's arithmetic: the backend's name
 * and tfjs version become part of the cache key. `R` widens the requirement to what the stage's
 * `run` needs besides (the stage's requirements are read from its environment).
 */
export const backendEnvironment = <R = never>(): Effect.Effect<string, never, TfBackend | R> =>
  Effect.map(TfBackend, (b) => b.environment);

/**
 * The revision of our own kernels and loss arithmetic, part of every backend-dependent cache key:
 * raise it when a change alters results in the last bits, so that no cached result of the old
 * arithmetic is reused. 2: im2col and 1×1 convs on BLAS, the corrected cpu ResizeNearestNeighborGrad,
 * softplus as relu(x) − log σ(|x|). 3: the corrected wasm MaxPoolGrad, decoding's softmax in JS,
 * the gradient norm as one stacked sum.
 */
const NUMERICS = "numerics-3";

const wasmDist = (): string => new URL(".", import.meta.resolve("@tensorflow/tfjs-backend-wasm")).href;

/** Backend options: `threads` for the native BLAS (the WASM kernels are single-threaded under Deno). */
export interface BackendOptions {
  readonly threads?: number;
}

/** Starts `name` (or fails with BackendUnavailable). */
export const initBackend = (
  name: BackendName,
  options: BackendOptions = {},
): Effect.Effect<TfBackendShape, BackendUnavailable> =>
  Effect.gen(function* () {
    const fail = (reason: string) => new BackendUnavailable({ backend: name, reason });
    let matmul = "backend's own kernels";
    let tag: string = name;
    registerCpuKernels();
    if (name === "wasm") {
      setWasmPaths(wasmDist());
      registerWasmKernels();
      const native = loadBlas();
      useBlas("blas" in native ? native.blas : undefined);
      if ("blas" in native) {
        if (options.threads !== undefined && !native.blas.setThreads(options.threads)) {
          return yield* fail(`${native.blas.library} cannot set its thread count (not OpenBLAS?)`);
        }
        const threads = native.blas.threads();
        matmul = `OpenBLAS (${native.blas.library}) via FFI${threads === undefined ? "" : `, ${threads} threads`}`;
        tag = "wasm+openblas";
      } else matmul = `XNNPACK, 1 thread (${native.unavailable})`;
    } else if (name === "webgpu") {
      const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
      if (gpu === undefined) return yield* fail("navigator.gpu is missing in this Deno");
      const adapter = yield* Effect.promise(() => gpu.requestAdapter().catch(() => null));
      if (adapter === null || adapter === undefined) {
        return yield* fail("no WebGPU adapter (no GPU or no Vulkan driver)");
      }
      yield* Effect.tryPromise({
        try: () => import("@tensorflow/tfjs-backend-webgpu"),
        catch: (e) => fail(`@tensorflow/tfjs-backend-webgpu cannot be loaded (${e instanceof Error ? e.message : e})`),
      });
    } else if (name === "node") {
      // a computed specifier: tfjs-node is not a dependency, so it must not be resolved at check time
      const specifier = ["npm:@tensorflow", "tfjs-node@4.22.0"].join("/");
      yield* Effect.tryPromise({
        try: () => import(specifier),
        catch: () =>
          fail(
            "@tensorflow/tfjs-node is not installed (its install script downloads libtensorflow, impossible offline)",
          ),
      });
    }
    const ok = yield* Effect.tryPromise({
      try: () => tf.setBackend(name === "node" ? "tensorflow" : name),
      catch: (e) => fail(String(e)),
    });
    if (!ok || tf.getBackend() !== (name === "node" ? "tensorflow" : name)) {
      return yield* fail(`tf.setBackend('${name}') did not take effect`);
    }
    yield* Effect.promise(() => tf.ready());
    if (name === "webgpu") registerWebGpuAddN();
    return { name, environment: `${tag}/tfjs-${tf.version_core}/${NUMERICS}`, matmul };
  });

/** A layer that starts the backend `name`. */
export const layer = (name: BackendName, options: BackendOptions = {}): Layer.Layer<TfBackend, BackendUnavailable> =>
  Layer.effect(TfBackend, initBackend(name, options));

let syncReads: boolean | undefined;

/**
 * Whether the active backend reads values synchronously (`dataSync` on a computed tensor): every
 * backend but `webgpu`. Where it cannot, the model runs the tensor-op versions of its decisions and
 * training reads through `prefetch`. `forceAsyncReads` makes a test take those paths on `wasm` or `cpu`.
 */
export const readsSynchronously = (): boolean => syncReads ?? tf.getBackend() !== "webgpu";

/** Tests only: take the paths of a backend without synchronous reads (`true`), or detect again (`false`). */
export const forceAsyncReads = (on: boolean): void => {
  syncReads = on ? false : undefined;
};

/**
 * Reads the values of `tensors` asynchronously; every backend then keeps them on the host, so
 * `dataSync` on these tensors works even on `webgpu`. Returns the values in order.
 */
export const prefetch = (tensors: ReadonlyArray<tf.Tensor>): Promise<tf.TypedArray[]> =>
  Promise.all(tensors.map((t) => t.data() as Promise<tf.TypedArray>));
