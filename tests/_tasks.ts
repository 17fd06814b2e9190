import assert from "node:assert/strict";
import { deno } from "./_helpers.ts";

/**
 * The `deno run` arguments of a task as deno.json declares them (its permissions, then its
 * script), so that the CLI tests run every task under the permissions its users get, not `-A`.
 */
const tasks = (JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))) as {
  tasks: Record<string, string>;
}).tasks;

/**
 * `["run", ...permission flags, script]` of task `name`; throws when deno.json has no such `deno run` task. The
 * tests' scratch folders come from Deno.makeTempDir: under $TMPDIR when it is set elsewhere than /tmp, which then
 * joins the task's write grant (deno.json grants this folder and /tmp).
 */
export const taskArgs = (name: string): string[] => {
  const words = (tasks[name] ?? "").split(/\s+/).filter((w) => w !== "");
  if (words[0] !== "deno" || words[1] !== "run" || words.length < 3) {
    throw new RangeError(`deno.json: task '${name}' is not a 'deno run FLAGS SCRIPT' command`);
  }
  const tmp = Deno.env.get("TMPDIR");
  if (tmp === undefined || tmp === "" || tmp === "/tmp" || tmp.startsWith("/tmp/")) return words.slice(1);
  return words.slice(1).map((w) => (w.startsWith("--allow-write=") ? `${w},${tmp}` : w));
};

/** The permission flags of task `name` (what follows `deno run`, before the script). */
export const taskPermissions = (name: string): string[] => taskArgs(name).slice(1, -1);

/** A micro model trained for 40 steps on synthetic tiles (detection F1 ≈ 0.6; its run.json names that data): its checkpoint. */
export const trainMicro = async (dir: string): Promise<string> => {
  const r = await deno([
    ...taskArgs("train"),
    ...["--data", "synthetic:2", "--tiles", "10", "--preset", "micro", "--steps", "40", "--batch", "1"],
    ...["--out", `${dir}/run`, "--cache", `${dir}/cache`, "--checkpoint-every", "0"],
  ]);
  assert.equal(r.code, 0, r.stderr);
  return `${dir}/run/checkpoint.safetensors`;
};
