/**
 * The worker of tests/malformed_test.ts: reads one corpus file with one reader per message, in a fresh
 * scratch folder, and answers with what happened. A worker, so that the test can end a reader that
 * never returns (a hang, even a synchronous loop) and count it, instead of hanging itself.
 */
/// <reference lib="deno.worker" />
import { READERS } from "./_malformed_readers.ts";

/** A request: read `file` (absolute; undefined = the layout's own valid file) with `reader`, in a folder under `scratch`. */
export interface ReadRequest {
  readonly index: number;
  readonly reader: string;
  readonly file: string | undefined;
  readonly scratch: string;
}

/**
 * The answer: the path the error must name, the error (or none: accepted), the time, and the memory this
 * worker's isolate holds after the read (JS heap and array buffers).
 */
export interface ReadResult {
  readonly index: number;
  readonly path: string;
  readonly error?: { readonly name: string; readonly tag: string | undefined; readonly message: string };
  readonly ms: number;
  readonly memory: number;
}

const describe = (e: unknown): NonNullable<ReadResult["error"]> => ({
  name: e instanceof Error ? e.constructor.name : typeof e,
  tag: typeof (e as { _tag?: unknown })?._tag === "string" ? (e as { _tag: string })._tag : undefined,
  message: e instanceof Error ? e.message : String(e),
});

self.onmessage = async (event: MessageEvent<ReadRequest>) => {
  const { index, reader, file } = event.data;
  const scratch = await Deno.makeTempDir({ dir: event.data.scratch });
  try {
    const r = READERS[reader];
    if (r === undefined) throw new Error(`no reader '${reader}' in tests/_malformed_readers.ts`);
    const path = await r.place(file, scratch);
    const started = performance.now();
    let error: ReadResult["error"];
    try {
      await r.read(path, scratch);
    } catch (e) {
      error = describe(e);
    }
    const ms = performance.now() - started;
    const { heapUsed, external } = Deno.memoryUsage();
    const result: ReadResult = {
      index,
      path,
      ms,
      memory: heapUsed + external,
      ...(error === undefined ? {} : { error }),
    };
    self.postMessage(result);
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
};

self.postMessage("ready");
