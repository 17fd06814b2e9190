/**
 * Least privilege (issue #19): every `deno task` that runs a script declares its permissions in
 * deno.json — none has `-A`, network or subprocess rights except where stated — and each starts
 * and prints its help under exactly those permissions. The CLI tests run the tasks the same way
 * (tests/_tasks.ts), so every real run they make is under the declared permissions too.
 */
import assert from "node:assert/strict";
import { deno } from "./_helpers.ts";
import { taskArgs, taskPermissions } from "./_tasks.ts";
import { writtenPlaces } from "../tasks/_main.ts";

const tasks = (JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))) as {
  tasks: Record<string, string>;
}).tasks;
const scripts = Object.keys(tasks).filter((name) => (tasks[name] ?? "").startsWith("deno run "));
// the bench spawns the PyTorch peer (python3) and reads the CPU model: the only task with run and sys
const EXTRA: Record<string, ReadonlyArray<string>> = { bench: ["--allow-sys", "--allow-run"] };
// writes only inside this folder and /tmp (tasks/_main.ts's TASK_WRITE_SCOPE); reads anywhere
const BASE = ["--allow-read", "--allow-write=.,/tmp", "--allow-env", "--allow-ffi"];

Deno.test("deno.json: every script task declares its permissions; no -A, no network, run/sys only for the bench", () => {
  assert.ok(scripts.length >= 12, `${scripts.length} script tasks`);
  const table = scripts.map((name) => `${name.padEnd(11)} ${taskPermissions(name).join(" ")}`);
  console.log(`permissions per task:\n${table.join("\n")}`);
  for (const name of scripts) {
    const flags = taskPermissions(name);
    assert.ok(!flags.some((f) => f === "-A" || f === "--allow-all"), `${name}: ${flags}`);
    assert.ok(!flags.some((f) => f.startsWith("--allow-net")), `${name} must not reach the network: ${flags}`);
    const declared = flags.map((f) => (f.startsWith("--allow-write=") ? f.split(",").slice(0, 2).join(",") : f));
    assert.deepEqual([...declared].sort(), [...BASE, ...(EXTRA[name] ?? [])].sort(), `${name}: ${flags}`);
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

Deno.test("writtenPlaces: the output flags' values (both spellings), the cache unless --no-cache, none for --help", () => {
  const env = (cache?: string) => (name: string) => (name === "IVAAN_CACHE" ? cache : undefined);
  assert.deepEqual(writtenPlaces(["--out", "runs/a", "--json=r.json", "--cache", "/c"], env("/e")), [
    { named: "--out", path: "runs/a" },
    { named: "--json", path: "r.json" },
    { named: "--cache", path: "/c" },
  ]);
  assert.deepEqual(writtenPlaces(["--md", "x.md"], env("/e")), [{ named: "--md", path: "x.md" }, {
    named: "IVAAN_CACHE",
    path: "/e",
  }]);
  assert.deepEqual(writtenPlaces(["--no-cache", "--cache", "/c", "--out", "o"], env("/e")), [{
    named: "--out",
    path: "o",
  }]);
  assert.deepEqual(writtenPlaces(["--out", "o", "--help"], env()), []);
});

Deno.test("a task asked to write outside its grant stops at once with one line and the command that grants it", async () => {
  const parent = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "ivaan-write-" });
  const out = `${parent}/run`, cache = `${parent}/cache`;
  try {
    const args = ["--preset", "micro", "--steps", "2", "--tiles", "8", "--out", out, "--cache", cache];
    const r = await deno([...taskArgs("train"), ...args]);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] ?? "", new RegExp(`^error: --out ${out}, --cache ${cache}: no write access there`));
    assert.deepEqual(await Array.fromAsync(Deno.readDir(parent)), [], "nothing written");
    // the command it prints grants exactly those two places, and runs
    const command = (lines[0] ?? "").split("; run: ")[1] ?? "";
    assert.ok(command.includes(`--allow-write=.,/tmp,${out},${cache} `), command);
    const again = await new Deno.Command("bash", { args: ["-c", command], cwd: new URL("..", import.meta.url) })
      .output();
    assert.equal(again.code, 0, new TextDecoder().decode(again.stderr));
    await Deno.stat(`${out}/checkpoint.safetensors`);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});
