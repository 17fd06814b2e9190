/**
 * Least privilege (issue #19): every `deno task` that runs a script declares its permissions in
 * deno.json — none has `-A`, network or subprocess rights except where stated — and each starts
 * and prints its help under exactly those permissions. The CLI tests run the tasks the same way
 * (tests/_tasks.ts), so every real run they make is under the declared permissions too.
 */
import assert from "node:assert/strict";
import { deno } from "./_helpers.ts";
import { taskArgs, taskPermissions } from "./_tasks.ts";

const tasks = (JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))) as {
  tasks: Record<string, string>;
}).tasks;
const scripts = Object.keys(tasks).filter((name) => (tasks[name] ?? "").startsWith("deno run "));
// the bench spawns the PyTorch peer (python3) and reads the CPU model: the only task with run and sys
const EXTRA: Record<string, ReadonlyArray<string>> = { bench: ["--allow-sys", "--allow-run"] };
const BASE = ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi"];

Deno.test("deno.json: every script task declares its permissions; no -A, no network, run/sys only for the bench", () => {
  assert.ok(scripts.length >= 12, `${scripts.length} script tasks`);
  const table = scripts.map((name) => `${name.padEnd(11)} ${taskPermissions(name).join(" ")}`);
  console.log(`permissions per task:\n${table.join("\n")}`);
  for (const name of scripts) {
    const flags = taskPermissions(name);
    assert.ok(!flags.some((f) => f === "-A" || f === "--allow-all"), `${name}: ${flags}`);
    assert.ok(!flags.some((f) => f.startsWith("--allow-net")), `${name} must not reach the network: ${flags}`);
    assert.deepEqual([...flags].sort(), [...BASE, ...(EXTRA[name] ?? [])].sort(), `${name}: ${flags}`);
  }
});

Deno.test("every script task starts and prints its --help under its declared permissions", async () => {
  for (const name of scripts.filter((n) => n !== "example")) {
    const r = await deno([...taskArgs(name), "--help"]);
    assert.equal(r.code, 0, `${name} --help: ${r.stderr}`);
    assert.match(r.stdout, /USAGE|Usage|usage/, `${name} --help prints a usage`);
  }
});

Deno.test("a task without network permission cannot reach the network (the declared flags really deny it)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ivaan-perm-" });
  try {
    const probe = `${dir}/probe.ts`;
    await Deno.writeTextFile(
      probe,
      `try { (await Deno.connect({ hostname: "127.0.0.1", port: 65000 })).close(); console.log("reached"); } catch (e) { console.log(e instanceof Deno.errors.NotCapable ? "denied" : "other " + e); }`,
    );
    const r = await deno(["run", ...taskPermissions("train"), "--no-prompt", probe]);
    assert.equal(r.stdout.trim(), "denied", r.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
