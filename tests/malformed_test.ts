/**
 * The malformed-input corpus (issue #19): tests/fixtures/malformed/, made by its make_malformed.ts, lists
 * for each broken file the readers that must refuse it. Every (file, reader) pair is read in-process, in a
 * worker (tests/_malformed_worker.ts) so that a hang is cut off and counted rather than stalling the suite,
 * and must fail with a typed error whose message is one line, names the file and says what was expected,
 * within READ_LIMIT_MS. A sample with at least one file per reader goes through the task a user would run
 * (its deno.json permissions): exit 1, that one `error:` line on stderr (beside plain progress lines), no
 * file in its --out folder, no entry in its --cache. Prints `malformed inputs: N tried, N clear errors, 0 crashes`.
 */
import assert from "node:assert/strict";
import { encodeNpy } from "../pipeline/codec/npy.ts";
import { writeClipFolder } from "./_clip_folder.ts";
import { CONTROLS, CORPUS, READERS } from "./_malformed_readers.ts";
import type { ReadRequest, ReadResult } from "./_malformed_worker.ts";
import { withTempDir } from "./_helpers.ts";
import { taskArgs } from "./_tasks.ts";

/** One broken file and the readers that must refuse it (manifest.json). */
interface Case {
  readonly file: string;
  readonly readers: ReadonlyArray<string>;
  readonly case: string;
}
const manifest = JSON.parse(await Deno.readTextFile(`${CORPUS}/manifest.json`)) as {
  readers: Record<string, string>;
  cases: Case[];
};

/** A read may take this long (a bounded time, with room for a loaded CI machine)… */
const READ_LIMIT_MS = 5_000;
/** …and a worker that has not answered after this long is a hang: it is ended and the read counted. */
const HANG_MS = 30_000;
/** A task run that has not ended after this long is killed and counted as a hang. */
const TASK_LIMIT_MS = 60_000;
/** What the worker's isolate may hold after a read: a lying header must never be allocated. */
const MEMORY_LIMIT = 1024 ** 3;

/** Words of a reason that states the rule the file breaks (expected …, must …, not …, truncated, …). */
const RULE =
  /\b(expected|must|needs?|not|no|cannot|unexpected|unsupported|unknown|missing|truncated|cut off|outside|exceeds?|beyond|at (most|least)|differs|twice|empty|shorter|but|inside|the header has)\b/i;

/** Why `message` is not a clear error about `path`, or undefined when it is one. */
const unclear = (message: string, path: string): string | undefined => {
  if (message.includes("\n")) return "a message of several lines";
  if (!message.includes(path)) return "the message does not name the file";
  const reason = message.replace(path, "");
  if (!RULE.test(reason) || reason.length < 10) return "the message does not say what was expected";
  return undefined;
};

/** A line of the plain Progress layer (pipeline/progress.ts) on stderr, e.g. `pipeline: 0/1 (0%) done in 0.0 s`. */
const PROGRESS_LINE = /^[^:]+: \d+\/\d+( \(\d+%\))?/;

interface Try {
  readonly reader: string;
  readonly file: string;
  readonly problem: string | undefined;
  readonly message: string;
}

const corpusPath = (file: string) => `${CORPUS}/${file}`;

// ------------------------------------------------------------------------------------------------
// in-process: every (file, reader) pair, one at a time, in a worker

/**
 * Runs the requests one by one in a worker; a hang or a dead worker ends it and the next request gets a new one.
 * The layouts go under a temporary folder removed at the end, also what an ended worker left.
 */
const readAll = (requests: ReadonlyArray<Omit<ReadRequest, "index" | "scratch">>) =>
  withTempDir((scratch) => readEach(requests, scratch));

const readEach = async (requests: ReadonlyArray<Omit<ReadRequest, "index" | "scratch">>, scratch: string) => {
  const results: Array<ReadResult | string> = [];
  let worker: Worker | undefined;
  const answer = (w: Worker, limit: number, send?: ReadRequest) =>
    new Promise<ReadResult | string | "ready">((resolve) => {
      const timer = setTimeout(() => resolve(`no answer within ${limit / 1000} s (a hang)`), limit);
      w.onmessage = (e: MessageEvent<ReadResult | "ready">) => {
        clearTimeout(timer);
        resolve(e.data);
      };
      w.onerror = (e: ErrorEvent) => {
        e.preventDefault(); // an uncaught error in the reader: counted here, not thrown in the test
        clearTimeout(timer);
        resolve(`the reader crashed the worker: ${e.message}`);
      };
      if (send !== undefined) w.postMessage(send);
    });
  try {
    for (const [index, request] of requests.entries()) {
      if (worker === undefined) {
        worker = new Worker(new URL("./_malformed_worker.ts", import.meta.url).href, { type: "module" });
        const ready = await answer(worker, 120_000);
        if (ready !== "ready") throw new Error(`the malformed-input worker did not start: ${JSON.stringify(ready)}`);
      }
      const result = await answer(worker, HANG_MS, { index, scratch, ...request });
      if (result === "ready") throw new Error("the worker said ready twice");
      if (typeof result === "string") {
        worker.terminate();
        worker = undefined;
      }
      results.push(result);
    }
  } finally {
    worker?.terminate();
  }
  return results;
};

// ------------------------------------------------------------------------------------------------
// through the tasks: a sample, at least one file per reader

const VALID = `${CORPUS}/valid`;
const copy = async (from: string, to: string) => {
  await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
  await Deno.copyFile(from, to);
  return to;
};

/** The valid files of each data source's layout (path → valid/ file); the corpus file takes the place of one. */
const LAYOUTS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  folder: { "images/a.png": "rgb_8x8.png", "instances/a.npy": "instances_8x8.npy", "dataset.json": "dataset.json" },
  consep: { "Images/a.png": "rgb_8x8.png", "Labels/a.mat": "consep_label.mat" },
  monuseg: { "a.tif": "rgb_8x8.tif", "a.xml": "monuseg.xml" },
  pannuke: {
    "Fold 1/images/fold1/images.npy": "pannuke_images.npy",
    "Fold 1/masks/fold1/masks.npy": "pannuke_masks.npy",
    "Fold 1/images/fold1/types.npy": "pannuke_types.npy",
  },
};

/** A task run for one corpus file: the task, its arguments, the path its error must name. */
interface TaskRun {
  readonly task: string;
  readonly args: string[];
  readonly named: string;
}
/** Builds a run in `dir`: inputs under dir/in, outputs under dir/out (the --out folder, or --json's), dir/cache. */
type Invocation = (file: string, dir: string) => Promise<TaskRun>;

/** `deno task data COMMAND SOURCE:dir/in` with the corpus file at `at`, in place of the layout's file `replaces`. */
const dataRun =
  (command: "inspect" | "show" | "split", source: string, at: string, replaces = at): Invocation =>
  async (
    file,
    dir,
  ) => {
    for (const [path, valid] of Object.entries(LAYOUTS[source] ?? {})) {
      if (path !== replaces) await copy(`${VALID}/${valid}`, `${dir}/in/${path}`);
    }
    const named = await copy(file, `${dir}/in/${at}`);
    const where = `${source}:${dir}/in`;
    const args = command === "inspect"
      ? ["inspect", where, "--cache", `${dir}/cache`]
      : command === "show"
      ? ["show", where, "--out", `${dir}/out/tile.png`]
      : ["split", where, "--json", `${dir}/out/split.json`, "--cache", `${dir}/cache`];
    return { task: "data", args, named };
  };

/** A task that reads the corpus file where it is. */
const fileRun = (task: string, args: (file: string, dir: string) => string[]): Invocation => (file, dir) =>
  Promise.resolve({ task, args: args(file, dir), named: file });

/** `deno task encode text --weights FILE` with a valid CLIP text config and token ids [1, 3]. */
const encodeText: Invocation = async (file, dir) => {
  await writeClipFolder(`${dir}/clip`);
  const vocab = JSON.parse(await Deno.readTextFile(`${dir}/clip/vocab.json`)) as Record<string, number>;
  const ids = Int32Array.from(["<|startoftext|>", "a</w>", "<|endoftext|>"], (t) => vocab[t] as number);
  await Deno.writeFile(`${dir}/ids.npy`, encodeNpy(ids, [1, 3]));
  const args = ["text", "--weights", file, "--config", `${dir}/clip/config.json`, "--ids", `${dir}/ids.npy`];
  return { task: "encode", args: [...args, "--out", `${dir}/out/text.npy`], named: file };
};

/** `deno task train --text-encoder dir/in` (a CLIP folder whose `name` is the corpus file): the text stage runs first. */
const trainWithClip = (name: string): Invocation => async (file, dir) => {
  await writeClipFolder(`${dir}/in`);
  const named = await copy(file, `${dir}/in/${name}`);
  const args = ["--data", "synthetic:1", "--tiles", "2", "--preset", "micro", "--batch", "1", "--steps", "1"];
  args.push("--row", "vl_fixed", "--text-encoder", `${dir}/in`, "--checkpoint-every", "0");
  return { task: "train", args: [...args, "--out", `${dir}/out`, "--cache", `${dir}/cache`], named };
};

const labels = (flag: "--true" | "--pred"): Invocation =>
  fileRun("evaluate", (file, dir) => {
    const other = flag === "--true" ? "--pred" : "--true";
    const args = ["instances", flag, file, other, `${VALID}/instances_8x8.npy`];
    return [...args, "--json", `${dir}/out/evaluation.json`, "--cache", `${dir}/cache`];
  });
const features = (flag: "--image" | "--instances"): Invocation =>
  fileRun("features", (file, dir) => [
    ...(flag === "--image" ? ["--image", file] : ["--image", `${VALID}/rgb_8x8.png`]),
    ...(flag === "--instances" ? ["--instances", file] : ["--instances", `${VALID}/instances_8x8.npy`]),
    ...["--json", `${dir}/out/features.json`],
  ]);
const predict = fileRun("predict", (file, dir) => [
  ...["--model", file, "--input", `${VALID}/rgb_8x8.png`],
  ...["--out", `${dir}/out`, "--cache", `${dir}/cache`],
]);
const fit = fileRun("attributes", (file, dir) => ["fit", "--input", file, "--json", `${dir}/out/fit.json`]);

/** The files that go through a task: at least one per reader, by reader. */
const SAMPLE: ReadonlyArray<{ readonly reader: string; readonly file: string; readonly run: Invocation }> = (
  [
    ["image", "png/huge_1e6x1e6.png", dataRun("inspect", "folder", "images/a.png")],
    ["image", "jpeg/huge_65535x65535.jpg", dataRun("show", "folder", "images/a.jpg", "images/a.png")],
    ["image", "tiff/huge_1e6x1e6.tif", dataRun("inspect", "monuseg", "a.tif")],
    ["image", "png/truncated_in_idat.png", dataRun("split", "consep", "Images/a.png")],
    ["features.image", "png/ihdr_bad_crc.png", features("--image")],
    ["features.instances", "npy/shape_huge_1e6x1e6.npy", features("--instances")],
    ["evaluate.map", "npy/negative_id.npy", labels("--true")],
    ["evaluate.map", "png_labels/huge_1e6x1e6.png", labels("--pred")],
    ["folder.instances", "npy/nan.npy", dataRun("inspect", "folder", "instances/a.npy")],
    [
      "folder.instances",
      "png_labels/rgb_not_grey.png",
      dataRun("show", "folder", "instances/a.png", "instances/a.npy"),
    ],
    ["folder.dataset_json", "dataset_json/not_json.json", dataRun("inspect", "folder", "dataset.json")],
    ["folder.class_json", "class_json/class_unknown_name.json", dataRun("split", "folder", "classes/a.json")],
    ["pannuke.images", "pannuke/images_huge_n.npy", dataRun("inspect", "pannuke", "Fold 1/images/fold1/images.npy")],
    ["pannuke.masks", "pannuke/masks_negative_id.npy", dataRun("split", "pannuke", "Fold 1/masks/fold1/masks.npy")],
    ["pannuke.types", "pannuke/types_wrong_length.npy", dataRun("show", "pannuke", "Fold 1/images/fold1/types.npy")],
    ["consep.label", "mat/dims_huge_1e6x1e6.mat", dataRun("inspect", "consep", "Labels/a.mat")],
    ["consep.label", "mat/compressed_random.mat", dataRun("show", "consep", "Labels/a.mat")],
    ["monuseg.xml", "xml/billion_vertices.xml", dataRun("inspect", "monuseg", "a.xml")],
    ["monuseg.xml", "xml/vertex_empty_x.xml", dataRun("show", "monuseg", "a.xml")],
    ["checkpoint.info", "safetensors/shape_lying_1e6x1e6.safetensors", predict],
    ["checkpoint.info", "safetensors/metadata_model_not_json.safetensors", predict],
    ["checkpoint.load", "safetensors/offsets_overlapping.safetensors", encodeText],
    ["checkpoint.load", "safetensors/length_2p63.safetensors", encodeText],
    ["clip.vocab", "clip/vocab_not_json.json", trainWithClip("vocab.json")],
    ["clip.merges", "clip/merges_three_symbols.txt", trainWithClip("merges.txt")],
    ["clip.config", "clip/config_heads_not_dividing.json", trainWithClip("config.json")],
    ["clip.weights", "clip/weights_wrong_shape.safetensors", trainWithClip("model.safetensors")],
    ["attributes.fit", "csv/header_only.csv", fit],
    ["attributes.fit", "csv/decimal_comma.csv", fit],
  ] as const
).map(([reader, file, run]) => ({ reader, file, run }));

/** Every file under `dir` (none when it does not exist). */
const filesUnder = async (dir: string): Promise<string[]> => {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) out.push(...await filesUnder(`${dir}/${e.name}`));
      else out.push(`${dir}/${e.name}`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out;
};

/** Runs one sample through its task; the problem with the outcome, or undefined when it is a clear error. */
const runTask = (sample: (typeof SAMPLE)[number]): Promise<Try> =>
  withTempDir(async (dir) => {
    const file = corpusPath(sample.file);
    const { task, args, named } = await sample.run(file, dir);
    await Deno.mkdir(`${dir}/out`); // so that a write there could only fail for the input's sake
    const child = new Deno.Command(Deno.execPath(), {
      args: [...taskArgs(task), ...args],
      env: { IVAAN_BLAS: "off", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), TASK_LIMIT_MS);
    const started = performance.now();
    const out = await child.output();
    clearTimeout(timer);
    const seconds = (performance.now() - started) / 1000;
    const stderr = new TextDecoder().decode(out.stderr).trim();
    // non-TTY progress prints a last line per tracker, also when the work failed: those lines are not the error
    const lines = stderr.split("\n").filter((l) => l.trim() !== "" && !PROGRESS_LINE.test(l));
    const left = [
      ...await filesUnder(`${dir}/out`),
      ...await filesUnder(`${dir}/cache/objects`),
      ...await filesUnder(`${dir}/cache/tmp`),
    ];
    const problem = out.signal === "SIGKILL"
      ? `killed after ${TASK_LIMIT_MS / 1000} s (a hang)`
      : out.code === 0
      ? "exit code 0"
      : lines.length !== 1
      ? `${lines.length} lines on stderr`
      : !lines[0]?.startsWith("error: ")
      ? "stderr is not one 'error:' line"
      : left.length > 0
      ? `left ${left.map((p) => p.slice(dir.length + 1)).join(", ")}`
      : unclear(lines[0], named);
    const where = `deno task ${task} ${args[0]} (${seconds.toFixed(1)} s)`;
    return {
      reader: `${sample.reader} via ${where}`,
      file: sample.file,
      problem,
      message: stderr.replaceAll(dir, "$TMP"),
    };
  });

/** Runs `jobs` two at a time. */
const inPairs = async <A>(jobs: ReadonlyArray<() => Promise<A>>): Promise<A[]> => {
  const results: A[] = new Array(jobs.length);
  let next = 0;
  const lane = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await (jobs[i] as () => Promise<A>)();
    }
  };
  await Promise.all([lane(), lane()]);
  return results;
};

// ------------------------------------------------------------------------------------------------

Deno.test("malformed inputs: the corpus covers every reader with at least 200 files; the readers accept its valid files", async () => {
  const readers = new Set(manifest.cases.flatMap((c) => c.readers));
  assert.ok(manifest.cases.length >= 200, `${manifest.cases.length} corpus files`);
  assert.deepEqual(Object.keys(manifest.readers).sort(), Object.keys(READERS).sort(), "the manifest's readers");
  assert.deepEqual([...readers].sort(), Object.keys(READERS).sort(), "every reader has corpus files");
  for (const c of manifest.cases) {
    const size = (await Deno.stat(corpusPath(c.file))).size;
    assert.ok(size < 256 * 1024, `${c.file}: ${size} bytes; a lying header, never a big file`);
  }
  assert.deepEqual(Object.keys(CONTROLS).sort(), Object.keys(READERS).sort(), "CONTROLS name every reader");
  for (const reader of readers) assert.ok(SAMPLE.some((s) => s.reader === reader), `${reader}: no file through a task`);
  for (const s of SAMPLE) {
    assert.ok(manifest.cases.some((c) => c.file === s.file && c.readers.includes(s.reader)), `${s.file} ${s.reader}`);
  }
  // controls: what a reader refuses in the corpus is the broken file's doing, not its layout's
  const controls = Object.entries(CONTROLS).flatMap(([reader, files]) => files.map((file) => ({ reader, file })));
  const results = await readAll(controls);
  controls.forEach(({ reader, file }, i) => {
    const r = results[i];
    assert.ok(
      typeof r !== "string" && r?.error === undefined,
      `${reader} refuses the valid ${file}: ${JSON.stringify(r)}`,
    );
  });
});

Deno.test("malformed inputs: every file is one clear error for every reader of it, in-process and through the tasks", async () => {
  const started = performance.now();
  const requests = manifest.cases.flatMap((c) => c.readers.map((reader) => ({ reader, file: corpusPath(c.file) })));
  const results = await readAll(requests);
  let slowest = 0, memory = 0;
  const tries: Try[] = requests.map(({ reader, file }, i) => {
    const r = results[i] as ReadResult | string;
    const short = file.slice(CORPUS.length + 1);
    if (typeof r === "string") return { reader, file: short, problem: r, message: "" };
    [slowest, memory] = [Math.max(slowest, r.ms), Math.max(memory, r.memory)];
    const message = r.error?.message ?? "";
    const problem = r.error === undefined
      ? "accepted: no error"
      : r.error.tag === undefined
      ? `an untyped ${r.error.name}`
      : r.ms > READ_LIMIT_MS
      ? `took ${(r.ms / 1000).toFixed(1)} s`
      : r.memory > MEMORY_LIMIT
      ? `left ${(r.memory / 1024 ** 2).toFixed(0)} MiB allocated`
      : unclear(message, r.path);
    return { reader, file: short, problem, message: message.replaceAll(r.path, "FILE") };
  });
  const inProcess = tries.length;
  const seconds = (performance.now() - started) / 1000;
  tries.push(...await inPairs(SAMPLE.map((s) => () => runTask(s))));
  const bad = tries.filter((t) => t.problem !== undefined);
  console.log(
    `malformed inputs: ${tries.length} tried, ${tries.length - bad.length} clear errors, ${bad.length} crashes ` +
      `(${manifest.cases.length} files; ${inProcess} reads in-process in ${seconds.toFixed(1)} s, slowest ` +
      `${slowest.toFixed(0)} ms, isolate memory at most ${(memory / 1024 ** 2).toFixed(0)} MiB; ` +
      `${tries.length - inProcess} task runs in ${((performance.now() - started) / 1000 - seconds).toFixed(1)} s)`,
  );
  assert.deepEqual(bad.map((t) => `${t.reader} ${t.file}: ${t.problem}: ${t.message}`), []);
});
