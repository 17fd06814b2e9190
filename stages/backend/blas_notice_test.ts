import assert from "node:assert/strict";
import type { Blas, BlasLoad } from "./kernels/blas.ts";
import { blasInstallCommand, blasNotice } from "./blas_notice.ts";

const found: BlasLoad = { blas: { library: "libopenblas.so.0" } as Blas };
const notFound: BlasLoad = { unavailable: "no OpenBLAS found (…); tried …", missing: "not-found" };

Deno.test("blasNotice: one line on wasm without BLAS — why, the cost, the exact install command", () => {
  assert.equal(
    blasNotice("wasm", "training", () => notFound, "linux"),
    "note: native BLAS not found (no libopenblas.so.0): training runs pure WASM on one thread, ≈ 3.5× slower on 2 cores; " +
      "install it with: sudo apt-get install libopenblas0 (or deno task setup)",
  );
  assert.match(
    blasNotice("wasm", "prediction", () => notFound, "darwin") ?? "",
    /^note: native BLAS not found \(no libopenblas\.dylib\): prediction runs pure WASM .*install it with: brew install openblas \(or deno task setup\)$/,
  );
  assert.match(blasNotice("wasm", "training", () => notFound, "windows") ?? "", /set IVAAN_BLAS to its library/);
  const chosen: BlasLoad = { ...notFound, chosen: "/opt/x/libblas.so" };
  assert.match(
    blasNotice("wasm", "training", () => chosen, "linux") ?? "",
    /^note: native BLAS not found \(IVAAN_BLAS=\/opt\/x\/libblas\.so cannot be opened\): .*; point IVAAN_BLAS at an OpenBLAS library, or unset it and install it with: sudo apt-get install libopenblas0/,
  );
  const noFfi: BlasLoad = { unavailable: "no --allow-ffi permission", missing: "no-ffi" };
  assert.match(
    blasNotice("wasm", "training", () => noFfi) ?? "",
    /not used \(no --allow-ffi permission\).*--allow-ffi/,
  );
  for (const line of [blasNotice("wasm", "training", () => notFound), blasNotice("wasm", "training", () => noFfi)]) {
    assert.ok(line !== undefined && !line.includes("\n"), "one line");
  }
  assert.equal(blasInstallCommand("linux"), "sudo apt-get install libopenblas0");
});

Deno.test("blasNotice: nothing when BLAS is in use, when IVAAN_BLAS=off turned it off, or off wasm", () => {
  assert.equal(blasNotice("wasm", "training", () => found), undefined);
  const off: BlasLoad = { unavailable: "IVAAN_BLAS=off", missing: "disabled" };
  assert.equal(blasNotice("wasm", "training", () => off), undefined);
  const probe = () => {
    throw new Error("the other backends never probe BLAS");
  };
  for (const backend of ["cpu", "webgpu", "node"] as const) {
    assert.equal(blasNotice(backend, "training", probe), undefined);
  }
});
