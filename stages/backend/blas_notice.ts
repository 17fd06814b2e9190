/**
 * The one line `train`, `ablate` and `predict` print at start when `wasm` runs without the native BLAS:
 * why it is missing, what it costs, and the command that installs it (`deno task setup` does it where it can).
 *
 * Measured (issue #17, 2 cores, `tiny` on CoNSeP): 0.24 steps/s on pure WASM against 0.87 with OpenBLAS.
 * Nothing is said when BLAS is in use, when it was turned off on purpose (`IVAAN_BLAS=off`), or on the
 * other backends (their matrix products never go to BLAS).
 */
import { type BlasLoad, loadBlas } from "./kernels/blas.ts";
import type { BackendName } from "./tf.ts";

/** The command that installs OpenBLAS where `loadBlas` looks for it; undefined where there is no single one. */
export const blasInstallCommand = (os: typeof Deno.build.os = Deno.build.os): string | undefined =>
  os === "linux" ? "sudo apt-get install libopenblas0" : os === "darwin" ? "brew install openblas" : undefined;

/** How to get it: the command (and `deno task setup`, which runs it where it can), or what to do elsewhere. */
const howToInstall = (os: typeof Deno.build.os): string => {
  const command = blasInstallCommand(os);
  return command === undefined
    ? "install OpenBLAS and set IVAAN_BLAS to its library (libopenblas.dll)"
    : `install it with: ${command} (or deno task setup)`;
};

/**
 * The notice for `work` (e.g. "training") on `backend`, or undefined when there is nothing to say.
 * `load` and `os` are for tests; by default the process's own BLAS probe and platform.
 */
export const blasNotice = (
  backend: BackendName,
  work: string,
  load: () => BlasLoad = loadBlas,
  os: typeof Deno.build.os = Deno.build.os,
): string | undefined => {
  if (backend !== "wasm") return undefined;
  const native = load();
  if ("blas" in native || native.missing === "disabled") return undefined;
  const cost = `${work} runs pure WASM on one thread, ≈ 3.5× slower on 2 cores`;
  if (native.missing === "no-ffi") {
    return `note: native BLAS not used (no --allow-ffi permission): ${cost}; run with --allow-ffi (deno task grants it)`;
  }
  if (native.chosen !== undefined) {
    return `note: native BLAS not found (IVAAN_BLAS=${native.chosen} cannot be opened): ${cost}; ` +
      `point IVAAN_BLAS at an OpenBLAS library, or unset it and ${howToInstall(os)}`;
  }
  const library = os === "darwin" ? "libopenblas.dylib" : os === "linux" ? "libopenblas.so.0" : "OpenBLAS library";
  return `note: native BLAS not found (no ${library}): ${cost}; ${howToInstall(os)}`;
};
