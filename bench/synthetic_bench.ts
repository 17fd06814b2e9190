/**
 * Synthetic H&E generator benchmark (called by `deno task bench`): wall time to generate 1,000
 * tiles of 256² (seed 0, indices 0..999) on one thread, as tiles/s and seconds. Target (issue #4):
 * ≤ 30 s for 1,000 tiles on 2 cores. A 20-tile warm-up runs first so the JIT has compiled the
 * rasteriser; the checksum of instance counts keeps the work from being optimised away and shows
 * the tiles are the same from run to run.
 */
import { syntheticSample } from "../stages/data/synthetic.ts";
import type { Row } from "./evaluation_bench.ts";

const TILES = 1000;
const SIZE = 256;

/** The generator rows. */
export const syntheticBench = (): Promise<Row[]> => {
  for (let i = 0; i < 20; i++) syntheticSample(1, i, { size: SIZE }); // warm-up, other seed
  let nuclei = 0;
  const t0 = performance.now();
  for (let i = 0; i < TILES; i++) nuclei += syntheticSample(0, i, { size: SIZE }).classOf.length - 1;
  const seconds = (performance.now() - t0) / 1000;
  return Promise.resolve([
    {
      name: `synthetic H&E: ${TILES.toLocaleString("en")} tiles of ${SIZE}²`,
      value: `${(TILES / seconds).toFixed(0)} tiles/s (${seconds.toFixed(1)} s)`,
      note: `one thread, ${(nuclei / TILES).toFixed(1)} nuclei/tile; target ≤ 30 s on 2 cores`,
    },
  ]);
};
