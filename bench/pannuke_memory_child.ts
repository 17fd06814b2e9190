/**
 * Child process of the data bench: reads every tile of a PanNuke fold through the streaming
 * reader (as `deno task data inspect` does) and prints {tiles, nuclei, seconds, peakRssMb}, the peak
 * resident memory (VmHWM) of this process. Usage: deno run -A bench/pannuke_memory_child.ts DIR
 */
import { openPannuke } from "../stages/data/pannuke.ts";

const started = performance.now();
const ds = await openPannuke(Deno.args[0] as string);
let nuclei = 0;
for (let i = 0; i < ds.size; i++) nuclei += (await ds.sample(i)).classOf.length - 1;
ds.close();
const status = await Deno.readTextFile("/proc/self/status");
const peakKb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
console.log(
  JSON.stringify({ tiles: ds.size, nuclei, seconds: (performance.now() - started) / 1000, peakRssMb: peakKb / 1024 }),
);
