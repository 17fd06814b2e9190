import assert from "node:assert/strict";
import { ceilingInstances } from "./decoding_ceiling.ts";
import { syntheticSample } from "../stages/data/synthetic.ts";
import { overlap } from "../stages/evaluation/overlap.ts";
import { panopticQuality } from "../stages/evaluation/pq.ts";

Deno.test("the centre decoding of the truth's own training targets (stride-2 maps, stride-4 centres) recovers a crowded tile", () => {
  // the decoding's ceiling: a model that learned its targets exactly (docs/results.md, round 5: PQ 0.83 on CoNSeP)
  const { height: H, width: W, instances } = syntheticSample(3, 0, { nuclei: [90, 110] });
  const pq = panopticQuality(overlap(instances, ceilingInstances(instances, H, W), W));
  // synthetic nuclei are smaller than CoNSeP's, so the stride-2 foreground costs more SQ here (measured 0.77)
  assert.ok(pq.dq >= 0.9 && pq.sq >= 0.72, `PQ ${pq.pq.toFixed(3)}, DQ ${pq.dq.toFixed(3)}, SQ ${pq.sq.toFixed(3)}`);
});
