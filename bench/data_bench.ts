/**
 * Data benchmarks (run by `deno task bench`):
 *  - synthetic generator throughput (bench/synthetic_bench.ts): 1,000 tiles of 256²;
 *  - PanNuke-fold streaming: a synthetic fold of N tiles (default 2,656) written in PanNuke layout
 *    as float64 (as PanNuke ships), then read tile by tile in a child process whose peak resident
 *    memory (VmHWM) is reported — the target is ≤ 2.5 GB for 2,656 tiles.
 */
import { writePannukeFold } from "../stages/data/pannuke.ts";
import { syntheticSample } from "../stages/data/synthetic.ts";
import type { Row } from "./evaluation_bench.ts";
import { syntheticBench } from "./synthetic_bench.ts";

export const dataBench = async (dir: string, tiles: number): Promise<Row[]> => {
  const rows: Row[] = [...(await syntheticBench())];
  const started = performance.now();
  await writePannukeFold(dir, 1, tiles, (i) => syntheticSample(7, i), { dtype: "f8" });
  const writeSeconds = (performance.now() - started) / 1000;
  const size = (await Deno.stat(`${dir}/Fold 1/masks/fold1/masks.npy`)).size +
    (await Deno.stat(`${dir}/Fold 1/images/fold1/images.npy`)).size;
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./pannuke_memory_child.ts", import.meta.url).pathname, dir],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (child.code !== 0) throw new Error("bench: the PanNuke reading child failed");
  const r = JSON.parse(new TextDecoder().decode(child.stdout)) as {
    tiles: number;
    nuclei: number;
    seconds: number;
    peakRssMb: number;
  };
  rows.push({
    name: `PanNuke fold of ${tiles} synthetic tiles (float64, ${(size / 1e9).toFixed(1)} GB): streaming read`,
    value: `peak RSS ${(r.peakRssMb / 1024).toFixed(2)} GB`,
    note: `${r.tiles} tiles, ${r.nuclei} nuclei read in ${r.seconds.toFixed(1)} s (${
      (r.tiles / r.seconds).toFixed(0)
    } tiles/s); target ≤ 2.5 GB; fold written in ${writeSeconds.toFixed(0)} s`,
  });
  return rows;
};
