/**
 * The `deno run` arguments of a task as deno.json declares them (its permissions, then its
 * script), so that the CLI tests run every task under the permissions its users get, not `-A`.
 */
const tasks = (JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))) as {
  tasks: Record<string, string>;
}).tasks;

/** `["run", ...permission flags, script]` of task `name`; throws when deno.json has no such `deno run` task. */
export const taskArgs = (name: string): string[] => {
  const words = (tasks[name] ?? "").split(/\s+/).filter((w) => w !== "");
  if (words[0] !== "deno" || words[1] !== "run" || words.length < 3) {
    throw new RangeError(`deno.json: task '${name}' is not a 'deno run FLAGS SCRIPT' command`);
  }
  return words.slice(1);
};

/** The permission flags of task `name` (what follows `deno run`, before the script). */
export const taskPermissions = (name: string): string[] => taskArgs(name).slice(1, -1);
