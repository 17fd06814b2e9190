/**
 * Child process of the slide bench: `measureSlide` on one preset, its SlideMeasurement printed as one JSON line.
 * Usage: deno run --allow-read --allow-write --allow-env --allow-ffi bench/slide_child.ts SLIDE PRESET DIR
 */
import { measureSlide, SLIDE_PRESETS } from "./slide_bench.ts";

const [slide, preset, dir] = Deno.args;
const known = SLIDE_PRESETS.find((p) => p === preset);
if (slide === undefined || known === undefined || dir === undefined) {
  console.error(`usage: slide_child.ts SLIDE (${SLIDE_PRESETS.join("|")}) DIR`);
  Deno.exit(2);
}
console.log(JSON.stringify(await measureSlide(slide, known, dir)));
