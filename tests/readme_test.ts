import assert from "node:assert/strict";
import { withTempDir } from "./_helpers.ts";

const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));

Deno.test("the README's pipeline example runs as written and is cached on the second run", () =>
  withTempDir(async (dir) => {
    const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(code !== undefined, "README has a ts block");
    const file = new URL(`../.readme_example_${crypto.randomUUID().slice(0, 8)}.ts`, import.meta.url).pathname;
    await Deno.writeTextFile(file, code);
    try {
      const run = () =>
        new Deno.Command(Deno.execPath(), { args: ["run", "-A", file], cwd: dir, stdout: "piped", stderr: "piped" })
          .output();
      const first = await run();
      const out1 = new TextDecoder().decode(first.stdout);
      assert.equal(first.code, 0, new TextDecoder().decode(first.stderr));
      assert.match(out1, /tripled\s+miss/);
      assert.match(out1, /\[ 3, 6, 9 \] \[ "values=source", "tripled=computed" \]/);
      assert.match(out1, /^flowchart LR/m);
      const out2 = new TextDecoder().decode((await run()).stdout);
      assert.match(out2, /\[ 3, 6, 9 \] \[ "values=source", "tripled=hit" \]/);
    } finally {
      await Deno.remove(file);
    }
  }));

Deno.test("every deno task named in the README exists in deno.json", async () => {
  const tasks = Object.keys(JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).tasks);
  const named = [...readme.matchAll(/deno task ([a-z:]+)/g)].map((m) => m[1] as string);
  assert.ok(named.length > 5);
  for (const t of new Set(named)) assert.ok(tasks.includes(t), `README names 'deno task ${t}'`);
});
