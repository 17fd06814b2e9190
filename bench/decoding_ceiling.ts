/**
 * The ceiling of the centre decoding (`--instances centers`): decodes each truth image's own training
 * targets — the dense maps at stride 2 (denseTargets) and the centre heat map at stride 4
 * (centerTargets), as a model that learned them exactly would predict — and writes the instances
 * where `deno task evaluate folder` scores them. What it scores is what decoding alone loses.
 *
 *   deno run --allow-read --allow-write=. --allow-env --allow-ffi bench/decoding_ceiling.ts TRUTH_DIR OUT_DIR
 *   deno task evaluate folder --true TRUTH_DIR --pred OUT_DIR
 *
 * TRUTH_DIR is a folder data set (images/, instances/), e.g. `deno task data export … --out DIR`.
 */
import { openFolder } from "../stages/data/folder.ts";
import { denseTargets } from "../stages/model/dense.ts";
import { centerTargets } from "../stages/model/centers.ts";
import { centreInstances } from "../stages/model/dense_decoding.ts";
import { encodeNpy } from "../pipeline/codec/npy.ts";

const MASK_STRIDE = 2, CENTER_STRIDE = 4;

/** A probability as a logit, clamped so that 0 and 1 stay finite. */
const logit = (p: number) => {
  const q = Math.min(1 - 1e-4, Math.max(1e-4, p));
  return Math.log(q / (1 - q));
};

/**
 * The centre decoding of an H×W instance map's own training targets: what a model that fitted them exactly would
 * be decoded into.
 */
export const ceilingInstances = (instances: Int32Array, height: number, width: number): Int32Array => {
  const dense = denseTargets(instances, height, width, MASK_STRIDE); // [h·w·3]: foreground fraction, h, v
  const h = Math.floor(height / MASK_STRIDE), w = Math.floor(width / MASK_STRIDE);
  for (let p = 0; p < h * w; p++) dense[p * 3] = logit(dense[p * 3] as number); // the model's channel 0 is a logit
  const heat = centerTargets(instances, height, width, CENTER_STRIDE).map(logit); // [ch·cw]
  const ch = Math.ceil(height / CENTER_STRIDE), cw = Math.ceil(width / CENTER_STRIDE);
  return centreInstances(dense, h, w, { logits: heat, ch, cw }, height, width);
};

if (import.meta.main) {
  const [truthDir, outDir] = Deno.args;
  if (truthDir === undefined || outDir === undefined) {
    console.error(
      "usage: deno run --allow-read --allow-write=. --allow-env --allow-ffi bench/decoding_ceiling.ts TRUTH_DIR OUT_DIR",
    );
    Deno.exit(2);
  }
  const ds = await openFolder(truthDir);
  await Deno.mkdir(`${outDir}/instances`, { recursive: true });
  for (let i = 0; i < ds.size; i++) {
    const { id, height, width, instances } = await ds.sample(i);
    await Deno.writeFile(
      `${outDir}/instances/${id}.npy`,
      encodeNpy(ceilingInstances(instances, height, width), [height, width]),
    );
  }
  ds.close();
  console.log(`wrote ${ds.size} instance maps to ${outDir}/instances`);
}
