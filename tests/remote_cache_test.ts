/**
 * The remote cache (pipeline/store/remote.ts) against a real server: Debian's nginx with its WebDAV
 * module, started per test on a free loopback port (tests/_nginx.ts; `deno task setup` installs it —
 * without it these tests fail and say so). Each "machine" is its own local cache directory in front
 * of the same server.
 */
import assert from "node:assert/strict";
import { Cause, Effect, Exit, Layer, Logger, Option } from "effect";
import { type Payload, Progress, RemoteStore, Runner, Store } from "../mod.ts";
import { sha256, sha256Text } from "../pipeline/hash.ts";
import { makeManifest, type Manifest } from "../pipeline/store/store.ts";
import { thresholdPipeline } from "./examples/threshold_pipeline.ts";
import { deno, freePort, inDir, Runs, withTempDir } from "./_helpers.ts";
import { type Nginx, withNginx } from "./_nginx.ts";
import { remoteChain } from "./_remote_writer.ts";
import { taskArgs } from "./_tasks.ts";

type Options = RemoteStore.RemoteOptions & RemoteStore.LayeredOptions;

/** A machine: the local cache `dir` in front of the remote cache `url`; every `run` is a fresh process's store. */
const machine = (dir: string, url: string, options: Options = {}) => {
  const logs: string[] = [];
  const logger = Logger.layer([
    Logger.make(({ logLevel, message }) => {
      logs.push(`${logLevel}: ${([] as unknown[]).concat(message).map(String).join(" ")}`);
    }),
  ]);
  const layers = Layer.mergeAll(RemoteStore.layer(dir, url, options), Progress.silent, logger);
  return {
    run: <A, E>(effect: Effect.Effect<A, E, Store | Progress>) =>
      Effect.runPromise(effect.pipe(Effect.provide(layers))),
    exit: <A, E>(effect: Effect.Effect<A, E, Store | Progress>) =>
      Effect.runPromiseExit(effect.pipe(Effect.provide(layers))),
    warnings: () => logs.filter((l) => l.startsWith("Warn")),
  };
};

const statuses = (report: ReadonlyArray<{ node: string; status: string }>) =>
  Object.fromEntries(report.map((s) => [s.node, s.status]));
const total = (runs: Runs) => ["numbers", "scale", "sum", "parity"].reduce((n, s) => n + runs.of(s), 0);
const keyOf = (report: ReadonlyArray<{ node: string; key?: string }>, node: string): string => {
  const key = report.find((s) => s.node === node)?.key;
  assert.ok(key !== undefined, `no key for ${node}`);
  return key;
};
const serverManifest = async (server: Nginx, key: string): Promise<Manifest> =>
  JSON.parse(await Deno.readTextFile(`${server.root}/ac/${key}.json`)) as Manifest;
const exists = (path: string) => Deno.stat(path).then(() => true, () => false);
/** A port nothing listens on. */
const deadPort = freePort;

Deno.test("a: an entry written on one machine is found, downloaded, verified and kept locally by another", () =>
  withNginx((server) =>
    withTempDir(async (tmp) => {
      const payload: Payload = {
        "value.json": new TextEncoder().encode('{"a":1}'),
        "extra.bin": new Uint8Array([0, 1, 2, 255]),
      };
      const key = sha256Text("entry a");
      const manifest = makeManifest(
        {
          key,
          node: "n",
          stage: "t.stage",
          version: "1",
          config: { x: 1 },
          environment: "",
          inputs: {},
          codec: "bytes",
          durationMs: 1,
        },
        payload,
        new Date(),
      );
      await machine(`${tmp}/a`, server.url).run(Effect.flatMap(Store, (s) => s.write(manifest, payload)));
      // on the server: the manifest, and each payload file under its own sha256
      assert.deepEqual(await serverManifest(server, key), manifest);
      for (const [name, bytes] of Object.entries(payload)) {
        assert.deepEqual(await Deno.readFile(`${server.root}/cas/${sha256(bytes)}`), bytes, name);
      }

      // machine b: a remote hit at lookup, downloaded and verified into its local cache (read-through)
      const b = machine(`${tmp}/b`, server.url);
      const found = await b.run(Effect.flatMap(Store, (s) => s.lookup(key)));
      assert.deepEqual(Option.getOrUndefined(found), manifest);
      const local = await inDir(
        `${tmp}/b`,
        Effect.flatMap(Store, (s) => Effect.flatMap(s.lookup(key), (m) => s.read(Option.getOrThrow(m)))),
      );
      assert.deepEqual(local, payload, "the plain local FileStore of b has the entry: the next lookup is local");

      // machine c, lazy (eagerBytes 0): the lookup finds the manifest, the first read downloads the payload
      const c = machine(`${tmp}/c`, server.url, { eagerBytes: 0 });
      assert.ok(Option.isSome(await c.run(Effect.flatMap(Store, (s) => s.lookup(key)))));
      assert.ok(Option.isNone(await inDir(`${tmp}/c`, Effect.flatMap(Store, (s) => s.lookup(key)))));
      assert.deepEqual(await c.run(Effect.flatMap(Store, (s) => s.read(manifest))), payload);
      assert.ok(Option.isSome(await inDir(`${tmp}/c`, Effect.flatMap(Store, (s) => s.lookup(key)))));
      assert.deepEqual([...b.warnings(), ...c.warnings()], []);
    })
  ));

Deno.test("b: two machines run the same pipelines: the second computes nothing, every node a remote hit", () =>
  withNginx((server) =>
    withTempDir(async (tmp) => {
      const a = machine(`${tmp}/a`, server.url), b = machine(`${tmp}/b`, server.url);
      const runsA = new Runs(), runsB = new Runs();
      const first = await a.run(Runner.run(remoteChain(runsA), ["parity"]));
      assert.equal(total(runsA), 4);
      const second = await b.run(Runner.run(remoteChain(runsB), ["parity"]));
      assert.equal(total(runsB), 0, "machine b computed nothing");
      assert.deepEqual(statuses(second.report), { numbers: "hit", scaled: "hit", total: "hit", parity: "hit" });
      assert.equal(second.outputs.parity, first.outputs.parity);

      // the README's example pipeline (PNG, safetensors and JSON payloads)
      const image = thresholdPipeline(4, 96);
      const fromA = await a.run(Runner.run(image, ["foreground"]));
      assert.ok(fromA.report.every((s) => s.status === "computed"), JSON.stringify(statuses(fromA.report)));
      const fromB = await b.run(Runner.run(image, ["foreground"]));
      assert.deepEqual(Object.values(statuses(fromB.report)), ["hit", "hit", "hit", "hit", "hit"]);
      assert.deepEqual(fromB.outputs.foreground, fromA.outputs.foreground);

      // read-through: with the server gone, b still has every entry locally
      const offline = machine(`${tmp}/b`, `http://127.0.0.1:${deadPort()}`);
      const again = await offline.run(Runner.run(remoteChain(runsB), ["parity"]));
      assert.ok(again.report.every((s) => s.status === "hit"));
      assert.equal(total(runsB), 0);
      assert.deepEqual([...a.warnings(), ...b.warnings(), ...offline.warnings()], []);
    })
  ));

Deno.test("c: a corrupted remote object is detected on download and never used: recomputed, and repaired", async () => {
  for (const options of [{}, { eagerBytes: 0 }] as const) {
    const mode = "eagerBytes" in options ? "downloaded at first read" : "downloaded at lookup";
    await withNginx((server) =>
      withTempDir(async (tmp) => {
        const { report } = await machine(`${tmp}/a`, server.url).run(Runner.run(remoteChain(new Runs()), ["parity"]));
        const parity = await serverManifest(server, keyOf(report, "parity"));
        const file = parity.files[0];
        assert.ok(file !== undefined);
        const blob = `${server.root}/cas/${file.sha256}`;
        const good = await Deno.readFile(blob);
        assert.equal(new TextDecoder().decode(good), '"even"');
        await Deno.writeFile(blob, new TextEncoder().encode('"dven"')); // same size, still valid JSON

        const runs = new Runs();
        const b = machine(`${tmp}/b`, server.url, options);
        const { outputs, report: seen } = await b.run(Runner.run(remoteChain(runs), ["parity"]));
        assert.equal(outputs.parity, "even", mode);
        // lazily, the plan said hit (from the manifest) before the download failed verification and the
        // runner recomputed the value; either way the stage ran once and its corrupt bytes were never used
        const parityStatus = "eagerBytes" in options ? "hit" : "computed";
        assert.deepEqual(statuses(seen), { numbers: "hit", scaled: "hit", total: "hit", parity: parityStatus }, mode);
        assert.deepEqual([runs.of("parity"), total(runs)], [1, 1], mode);
        const [warning, ...others] = b.warnings();
        assert.deepEqual(others, [], mode);
        assert.match(
          warning ?? "",
          /node 'parity': cache entry \w+ is corrupt: remote cache: value\.json .* does not match its sha256/,
        );
        assert.deepEqual(await Deno.readFile(blob), good, `${mode}: the recomputed entry's upload repaired the blob`);
        const c = machine(`${tmp}/c`, server.url, options);
        assert.ok((await c.run(Runner.run(remoteChain(runs), ["parity"]))).report.every((s) => s.status === "hit"));
        assert.deepEqual(c.warnings(), []);
      })
    );
  }
  // an unreadable manifest is corrupt too: the node is recomputed, downstream stays a hit (same digest)
  await withNginx((server) =>
    withTempDir(async (tmp) => {
      const { report } = await machine(`${tmp}/a`, server.url).run(Runner.run(remoteChain(new Runs()), ["parity"]));
      await Deno.writeTextFile(`${server.root}/ac/${keyOf(report, "total")}.json`, '{"format": 1, "key": ');
      const runs = new Runs();
      const b = machine(`${tmp}/b`, server.url);
      const { report: seen } = await b.run(Runner.run(remoteChain(runs), ["parity"]));
      assert.deepEqual(statuses(seen), { numbers: "hit", scaled: "hit", total: "computed", parity: "hit" });
      assert.equal(total(runs), 1);
      assert.match(b.warnings().join("\n"), /node 'total': .* remote manifest .* is unreadable/);
    })
  );
});

Deno.test("d: the manifest is uploaded last; a writer killed before its manifest leaves no entry for a reader", () =>
  withNginx((server) =>
    withTempDir(async (tmp) => {
      // a writer SIGKILLed at the first manifest PUT: the payload of `numbers` is on the server, no manifest
      const killed = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("./_remote_writer.ts", import.meta.url).pathname, `${tmp}/killed`, server.url],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(killed.signal, "SIGKILL", new TextDecoder().decode(killed.stderr));
      const putBefore = await server.requests();
      assert.ok(putBefore.some((r) => /^PUT \/cas\/\w+ 201$/.test(r)), putBefore.join("\n"));
      assert.ok(!putBefore.some((r) => r.startsWith("PUT /ac/")), putBefore.join("\n"));
      assert.deepEqual([...Deno.readDirSync(`${server.root}`)].map((e) => e.name).sort(), ["cas", "readonly"]);

      // a reader sees a plain miss (no half entry, no corruption warning) and computes everything
      const runs = new Runs();
      const reader = machine(`${tmp}/reader`, server.url);
      const { outputs } = await reader.run(Runner.run(remoteChain(runs), ["parity"]));
      assert.equal(outputs.parity, "even");
      assert.equal(total(runs), 4);
      assert.deepEqual(reader.warnings(), []);

      // the order on the wire: each entry's files are all on the server before its manifest is PUT
      const log = (await server.requests()).slice(putBefore.length);
      const manifests = log.flatMap((r, i) => /^PUT \/ac\/(\w+)\.json 201$/.exec(r) === null ? [] : [i]);
      assert.equal(manifests.length, 4, log.join("\n"));
      for (const at of manifests) {
        const key = /^PUT \/ac\/(\w+)\.json/.exec(log[at] ?? "")?.[1] ?? "";
        for (const file of (await serverManifest(server, key)).files) {
          const present = log.findIndex((r) =>
            new RegExp(`^(PUT /cas/${file.sha256} 20[14]|HEAD /cas/${file.sha256} 200)$`).test(r)
          );
          assert.ok(
            present >= 0 && present < at,
            `${file.name} of ${key} is uploaded before its manifest:\n${log.join("\n")}`,
          );
        }
      }
    })
  ));

Deno.test("e: an unreachable remote is one warning line and the run goes on locally; strict mode ends the run", () =>
  withNginx((server) =>
    withTempDir(async (tmp) => {
      const dead = `http://127.0.0.1:${deadPort()}`;
      const runs = new Runs();
      const offline = machine(`${tmp}/offline`, dead);
      const { outputs, report } = await offline.run(Runner.run(remoteChain(runs), ["parity"]));
      assert.equal(outputs.parity, "even");
      assert.ok(report.every((s) => s.status === "computed"));
      const [warning, ...others] = offline.warnings();
      assert.deepEqual(others, [], "one warning for the whole run, not one per node");
      assert.ok(warning !== undefined && !warning.includes("\n"), String(warning));
      assert.match(
        warning,
        new RegExp(`remote cache GET ${dead}/ac/\\w+\\.json failed: .*refused.*; continuing on the local cache alone`),
      );
      const again = await offline.run(Runner.run(remoteChain(runs), ["parity"]));
      assert.ok(again.report.every((s) => s.status === "hit"), "the local cache kept every entry");

      // strict: the first failure ends the run, naming the URL, in one line
      const strict = machine(`${tmp}/strict`, dead, { strict: true });
      const exit = await strict.exit(Runner.run(remoteChain(new Runs()), ["parity"]));
      assert.ok(Exit.isFailure(exit));
      const error = Cause.squash(exit.cause);
      assert.ok(error instanceof Error && "_tag" in error && error._tag === "StoreError", String(error));
      assert.match(error.message, new RegExp(`^cache store error at ${dead}/ac/\\w+\\.json: remote cache GET: .+$`));

      // a server that accepts and never answers: a timeout, the same single warning
      const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const held: Deno.Conn[] = [];
      const accepting = (async () => {
        try {
          for await (const conn of silent) held.push(conn);
        } catch {
          // closed
        }
      })();
      try {
        const slow = machine(`${tmp}/slow`, `http://127.0.0.1:${(silent.addr as Deno.NetAddr).port}`, {
          timeoutMs: 300,
        });
        const started = performance.now();
        assert.ok(
          (await slow.run(Runner.run(remoteChain(new Runs()), ["parity"]))).report.every((s) =>
            s.status === "computed"
          ),
        );
        assert.ok(performance.now() - started < 5_000, "one timeout, then the remote is off");
        assert.equal(slow.warnings().length, 1);
        assert.match(
          slow.warnings()[0] ?? "",
          /failed: no response within 0\.3 s; continuing on the local cache alone/,
        );
      } finally {
        silent.close();
        await accepting;
        for (const conn of held) conn.close();
      }

      // a server that refuses PUT (nginx without dav_methods): the status and what to configure
      const readonly = machine(`${tmp}/readonly`, `${server.url}/readonly`);
      assert.ok(
        (await readonly.run(Runner.run(remoteChain(new Runs()), ["parity"]))).report.every((s) =>
          s.status === "computed"
        ),
      );
      assert.equal(readonly.warnings().length, 1);
      assert.match(
        readonly.warnings()[0] ?? "",
        /remote cache PUT .*\/readonly\/cas\/\w+ failed: HTTP 405 Method Not Allowed \(the server does not accept PUT: nginx needs `dav_methods PUT; create_full_put_path on;`\)/,
      );
    })
  ));

Deno.test("the tasks: --remote-cache without network permission is one line with the command; that command shares the cache", () =>
  withNginx((server) =>
    withTempDir(async (tmp) => {
      const args = ["inspect", "synthetic:1", "--tiles", "2", "--cache", `${tmp}/one`];
      const denied = await deno([...taskArgs("data"), ...args, "--remote-cache", server.url]);
      assert.equal(denied.code, 1, denied.stderr);
      const lines = denied.stderr.trim().split("\n");
      assert.equal(lines.length, 1, denied.stderr);
      const command =
        /^error: --remote-cache \S+: no network access to (\S+) \(deno task grants none\); run: (deno run .+)$/
          .exec(lines[0] ?? "");
      assert.ok(command !== null, String(lines[0]));
      assert.equal(command[1], `127.0.0.1:${server.port}`);
      assert.equal(
        command[2],
        `deno run --allow-read --allow-write=.,/tmp --allow-env --allow-ffi --allow-net=127.0.0.1:${server.port} tasks/data.ts ${
          args.join(" ")
        } --remote-cache ${server.url}`,
      );

      const [, ...rest] = (command[2] ?? "").split(" "); // no argument needs quoting here
      const granted = await deno(rest);
      assert.equal(granted.code, 0, granted.stderr);
      assert.match(granted.stdout, /synthetic: 2 images/);
      assert.ok((await server.requests()).some((r) => /^PUT \/ac\/\w+\.json 201$/.test(r)));

      // another machine through $IVAAN_REMOTE_CACHE: the summary comes from the server
      const before = (await server.requests()).length;
      const other = await deno(
        [...rest.map((a) => a === `${tmp}/one` ? `${tmp}/two` : a).slice(0, -2)],
        { IVAAN_REMOTE_CACHE: server.url },
      );
      assert.equal(other.code, 0, other.stderr);
      assert.equal(other.stdout, granted.stdout);
      const fetched = (await server.requests()).slice(before);
      assert.ok(fetched.some((r) => /^GET \/cas\/\w+ 200$/.test(r)), fetched.join("\n"));
      assert.ok(!fetched.some((r) => r.startsWith("PUT")), fetched.join("\n"));
      assert.ok(await exists(`${tmp}/two/objects`));
    })
  ));
