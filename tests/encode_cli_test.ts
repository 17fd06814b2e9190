import assert from "node:assert/strict";
import { encodeNpy, readNpy } from "../pipeline/codec/npy.ts";
import { deno, withTempDir } from "./_helpers.ts";
import { taskArgs } from "./_tasks.ts";

const fixtures = new URL("./fixtures/vit/", import.meta.url).pathname;
const encode = (...args: string[]) => deno([...taskArgs("encode"), "image", ...args]);

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

const textFixtures = new URL("./fixtures/clip_text/", import.meta.url).pathname;
const encodeText = (...args: string[]) => deno([...taskArgs("encode"), "text", ...args]);

Deno.test("encode text reproduces the PyTorch reference output (≤ 1e-4): int64 ids on cpu, int32 ids on wasm", () =>
  withTempDir(async (dir) => {
    for (const [ids, backend] of [["ids_int64.npy", "cpu"], ["ids.npy", "wasm"]] as const) {
      const out = `${dir}/text_${backend}.npy`;
      const r = await encodeText(
        "--weights",
        `${textFixtures}weights.safetensors`,
        "--config",
        `${textFixtures}config.json`,
        "--ids",
        `${textFixtures}${ids}`,
        "--out",
        out,
        "--backend",
        backend,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`wrote .*text_${backend}\\.npy: float32 \\[4, 24\\] \\(${backend}\\)`));
      const got = await readNpy(out), want = await readNpy(`${textFixtures}output.npy`);
      assert.equal(got.dtype, "f4");
      assert.deepEqual([...got.shape], [4, 24]);
      const a = got.data as Float32Array, b = want.data as Float32Array;
      const worst = a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);
      assert.ok(worst <= 1e-4, `${ids} on ${backend}: max abs difference ${worst}`);
    }
  }));

Deno.test("encode text: ids without the eos, or weights that do not fit the config, are one clear error", () =>
  withTempDir(async (dir) => {
    // row 1 ends before its eos (9): the encoder would have no token to pool
    const ids = await readNpy(`${textFixtures}ids.npy`);
    const cut = Int32Array.from(ids.data as Int32Array).map((v, i) => (i >= 16 && i < 32 && v === 9 ? 8 : v));
    await Deno.writeFile(`${dir}/ids.npy`, encodeNpy(cut, [4, 16]));
    const noEos = await encodeText(
      "--weights",
      `${textFixtures}weights.safetensors`,
      "--config",
      `${textFixtures}config.json`,
      "--ids",
      `${dir}/ids.npy`,
      "--out",
      `${dir}/x.npy`,
    );
    assert.equal(noEos.code, 1);
    assert.match(noEos.stderr, /^error: --ids .*ids\.npy: row 1 holds no eos_token_id 9, where the encoder pools$/m);
    const config = JSON.parse(await Deno.readTextFile(`${textFixtures}config.json`));
    await Deno.writeTextFile(`${dir}/deeper.json`, JSON.stringify({ ...config, num_hidden_layers: 3 }));
    const deeper = await encodeText(
      "--weights",
      `${textFixtures}weights.safetensors`,
      "--config",
      `${dir}/deeper.json`,
      "--ids",
      `${textFixtures}ids.npy`,
      "--out",
      `${dir}/x.npy`,
    );
    assert.equal(deeper.code, 1);
    assert.match(
      deeper.stderr,
      /^error: --weights .*weights\.safetensors: loadClipTextWeights: text_model\.encoder\.layers\.2\.layer_norm1\.weight: missing \(expected shape \[32\] for this config\)$/m,
    );
    assert.equal(await Deno.stat(`${dir}/x.npy`).then(() => true, () => false), false);
  }));
