/**
 * The address of the Redis behind a work queue (pipeline/queue/queue.ts), parsed without loading
 * BullMQ, so that tasks can check `--queue URL` at start for nothing.
 */

/** Where Redis is: `redis://HOST[:PORT][/DB]`. */
export interface RedisAddress {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly db: number;
}

/** `redis://HOST[:PORT][/DB]` parsed; an error line otherwise. */
export const parseRedisUrl = (url: string): RedisAddress | { readonly error: string } => {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { error: `${url} is not a redis://HOST:PORT URL` };
  }
  if (parsed.protocol !== "redis:" || parsed.hostname === "") {
    return { error: `${url} is not a redis://HOST:PORT URL` };
  }
  const db = parsed.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d+$/.test(db)) return { error: `${url}: the path must be a database number, found /${db}` };
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  return { url, host, port: Number(parsed.port || "6379"), db: Number(db || "0") };
};
