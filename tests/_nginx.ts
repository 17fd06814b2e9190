/**
 * A real cache server for the tests: Debian's nginx with its WebDAV module (`dav_methods PUT`),
 * started on a free loopback port with its whole state (config, root, temp files, pid, logs) in a
 * temporary directory, in the foreground (no daemon, no master process), and stopped by `stop`.
 * `tasks/setup.sh` installs it; without it `startNginx` throws, saying so.
 */

import { freePort, listening } from "./_helpers.ts";

/** A running nginx. `root` is the directory it serves (and writes PUT bodies into). */
export interface Nginx {
  readonly url: string;
  readonly port: number;
  readonly root: string;
  /** the request lines of the access log so far, oldest first (`PUT /cas/… 201`) */
  readonly requests: () => Promise<ReadonlyArray<string>>;
  readonly stop: () => Promise<void>;
}

const SETUP_HINT = "run `deno task setup` (as root it installs Debian's nginx; elsewhere: apt-get install nginx)";

/** The nginx binary on PATH or in the usual sbin folders; throws with what to run when there is none. */
export const nginxBinary = (): string => {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"];
  for (const dir of dirs.filter((d) => d !== "")) {
    try {
      if (Deno.statSync(`${dir}/nginx`).isFile) return `${dir}/nginx`;
    } catch {
      // not here
    }
  }
  throw new Error(`nginx is not installed, and the remote cache tests need it: ${SETUP_HINT}`);
};

let checked: string | undefined;
/** The binary, after checking once that it has the WebDAV module. */
const davNginx = async (): Promise<string> => {
  if (checked !== undefined) return checked;
  const binary = nginxBinary();
  const out = await new Deno.Command(binary, { args: ["-V"], stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  if (!text.includes("--with-http_dav_module")) {
    throw new Error(`${binary} lacks the WebDAV module (ngx_http_dav_module) that PUT needs: ${SETUP_HINT}`);
  }
  return checked = binary;
};

const config = (dir: string, port: number) =>
  `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:${port};
    root ${dir}/root;
    location / {
      dav_methods PUT;
      create_full_put_path on;
      dav_access user:rw;
    }
    location /readonly/ {
    }
  }
}
`;

/**
 * Starts nginx on a free port: `/` accepts PUT, `/readonly/` does not (it answers 405). Waits until it
 * listens; retries on another port when the chosen one was taken meanwhile.
 */
export const startNginx = async (): Promise<Nginx> => {
  const binary = await davNginx();
  const dir = await Deno.makeTempDir({ prefix: "ivaan-nginx-" });
  await Deno.mkdir(`${dir}/root/readonly`, { recursive: true });
  for (let attempt = 1;; attempt++) {
    const port = freePort();
    await Deno.writeTextFile(`${dir}/nginx.conf`, config(dir, port));
    const child = new Deno.Command(binary, {
      args: ["-p", dir, "-c", `${dir}/nginx.conf`, "-e", `${dir}/error.log`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    let exited = false;
    const status = child.status.then((s) => {
      exited = true;
      return s;
    });
    const deadline = Date.now() + 10_000;
    while (!exited && Date.now() < deadline && !(await listening(port))) await new Promise((r) => setTimeout(r, 20));
    if (!exited && Date.now() < deadline) {
      const stop = async () => {
        if (!exited) child.kill("SIGTERM");
        await status;
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      };
      const requests = async () =>
        (await Deno.readTextFile(`${dir}/access.log`).catch(() => "")).split("\n").filter((l) => l !== "")
          .map((l) => /"([A-Z]+ \S+) HTTP\/[0-9.]+" (\d+)/.exec(l)).map((m) => m === null ? "?" : `${m[1]} ${m[2]}`);
      return { url: `http://127.0.0.1:${port}`, port, root: `${dir}/root`, requests, stop };
    }
    if (!exited) child.kill("SIGKILL");
    await status;
    const log = await Deno.readTextFile(`${dir}/error.log`).catch(() => "");
    if (attempt < 5 && log.includes("Address already in use")) continue;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new Error(`nginx did not start on 127.0.0.1:${port}:\n${log}`);
  }
};

/** Runs `f` with a fresh nginx, stopped afterwards. */
export const withNginx = async <A>(f: (server: Nginx) => Promise<A>): Promise<A> => {
  const server = await startNginx();
  try {
    return await f(server);
  } finally {
    await server.stop();
  }
};
