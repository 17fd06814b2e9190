/**
 * A real Redis for the queue tests: Debian's `redis-server`, started on a free loopback port with no
 * persistence (`--save '' --appendonly no`) and its working directory in a temporary folder, in the
 * foreground (no daemon), and stopped by `stop`. `restart` kills it (SIGKILL: every job record is
 * lost) and starts a fresh one on the same port. `tasks/setup.sh` installs it; without it
 * `startRedis` throws, saying so.
 */

import { freePort, listening } from "./_helpers.ts";

/** A running redis-server. */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** SIGKILL, then a new empty server on the same port */
  readonly restart: () => Promise<void>;
  readonly stop: () => Promise<void>;
}

const SETUP_HINT =
  "run `deno task setup` (as root it installs Debian's redis-server; elsewhere: apt-get install redis-server)";

/** The redis-server binary on PATH or in the usual folders; throws with what to run when there is none. */
export const redisBinary = (): string => {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/bin", "/usr/sbin", "/usr/local/bin"];
  for (const dir of dirs.filter((d) => d !== "")) {
    try {
      if (Deno.statSync(`${dir}/redis-server`).isFile) return `${dir}/redis-server`;
    } catch {
      // not here
    }
  }
  throw new Error(`redis-server is not installed, and the queue tests need it: ${SETUP_HINT}`);
};

/** Starts redis-server on a free loopback port (another one when the chosen port was taken meanwhile). */
export const startRedis = async (): Promise<RedisServer> => {
  const binary = redisBinary();
  const dir = await Deno.makeTempDir({ prefix: "ivaan-redis-" });
  const launch = async (port: number) => {
    const child = new Deno.Command(binary, {
      args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let exited = false;
    const output = new Response(child.stdout).text();
    void child.stderr.cancel();
    const status = child.status.then((s) => {
      exited = true;
      return s;
    });
    const deadline = Date.now() + 10_000;
    while (!exited && Date.now() < deadline && !(await listening(port))) await new Promise((r) => setTimeout(r, 20));
    if (!exited && Date.now() < deadline) return { child, status };
    if (!exited) child.kill("SIGKILL");
    await status;
    return { error: await output };
  };
  for (let attempt = 1;; attempt++) {
    const port = freePort();
    const first = await launch(port);
    if ("error" in first) {
      if (attempt < 5 && first.error.includes("Address already in use")) continue;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw new Error(`redis-server did not start on 127.0.0.1:${port}:\n${first.error}`);
    }
    let current = first;
    const halt = async (signal: Deno.Signal) => {
      try {
        current.child.kill(signal);
      } catch {
        // already gone
      }
      await current.status;
    };
    return {
      url: `redis://127.0.0.1:${port}`,
      port,
      restart: async () => {
        await halt("SIGKILL");
        const next = await launch(port);
        if ("error" in next) throw new Error(`redis-server did not restart on 127.0.0.1:${port}:\n${next.error}`);
        current = next;
      },
      stop: async () => {
        await halt("SIGTERM");
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
  }
};

/** Runs `f` with a fresh redis-server, stopped afterwards. */
export const withRedis = async <A>(f: (server: RedisServer) => Promise<A>): Promise<A> => {
  const server = await startRedis();
  try {
    return await f(server);
  } finally {
    await server.stop();
  }
};
