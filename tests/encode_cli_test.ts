import assert from "node:assert/strict";
import { readNpy } from "../pipeline/codec/npy.ts";
import { deno, withTempDir } from "./_helpers.ts";

const fixtures = new URL("./fixtures/vit/", import.meta.url).pathname;
const encode = (...args: string[]) => deno(["run", "-A", "tasks/encode.ts", "image", ...args]);

Deno.test("encode image reproduces the PyTorch reference output (≤ 1e-4) on cpu and on wasm", () =>
  withTempDir(async (dir) => {
    for (const [variant, backend] of [["native", "cpu"], ["resized", "wasm"]]) {
      const out = `${dir}/${variant}.npy`;
      const r = await encode(
        "--weights",
        `${fixtures}weights.safetensors`,
        "--config",
        `${fixtures}config.json`,
        "--image",
        `${fixtures}input_${variant}.npy`,
        "--out",
        out,
        "--backend",
        backend as string,
      );
      assert.equal(r.code, 0, r.stderr);
      const got = await readNpy(out), want = await readNpy(`${fixtures}output_${variant}.npy`);
      assert.deepEqual([...got.shape], [...want.shape]);
      const a = got.data as Float32Array, b = want.data as Float32Array;
      const worst = a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);
      assert.ok(worst <= 1e-4, `${variant} on ${backend}: max abs difference ${worst}`);
    }
  }));

Deno.test("encode image: a config or weights that do not fit is one clear error", () =>
  withTempDir(async (dir) => {
    const config = JSON.parse(await Deno.readTextFile(`${fixtures}config.json`));
    await Deno.writeTextFile(`${dir}/deeper.json`, JSON.stringify({ ...config, depth: 3 }));
    const r = await encode(
      "--weights",
      `${fixtures}weights.safetensors`,
      "--config",
      `${dir}/deeper.json`,
      "--image",
      `${fixtures}input_native.npy`,
      "--out",
      `${dir}/x.npy`,
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: --weights .*weights\.safetensors: .*blocks\.2/m);
    await Deno.writeTextFile(`${dir}/bad.json`, JSON.stringify({ ...config, depth: "two" }));
    const bad = await encode(
      "--weights",
      `${fixtures}weights.safetensors`,
      "--config",
      `${dir}/bad.json`,
      "--image",
      `${fixtures}input_native.npy`,
      "--out",
      `${dir}/x.npy`,
    );
    assert.match(bad.stderr, /^error: --config .*bad\.json: depth: expected number, found "two"$/m);
  }));
