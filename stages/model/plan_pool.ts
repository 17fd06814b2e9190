/**
 * Runs the loss's planning (planning.ts: matching and point selection, one unit per image and
 * decoder layer) on this thread and, when more threads are allowed, on a worker thread as well.
 *
 * Why: planning is plain JavaScript (≈ 0.28 s of a 0.9 s training step on 2 cores) and runs while
 * the BLAS threads are idle; splitting the units over two threads halves it (measured: the step
 * went from 0.89 to 0.74 s).
 *
 * Mental model: `planImages` is synchronous. The units are split by estimated cost (longest first,
 * to the less loaded thread); the worker's inputs are copied into SharedArrayBuffers, the worker is
 * sent one message, this thread plans its own share, then blocks (`Atomics.wait`) until the worker
 * has written its plans into shared memory. Each unit is seeded, so the plans do not depend on which
 * thread made them (tested).
 *
 * Gotchas: a live worker keeps Deno from exiting, so the worker closes itself after
 * `IDLE_CLOSE_MS` without work (a shared state word makes that race-free; the next call starts a new
 * one), and `stopPlanningWorkers` ends it at once (the tasks and tests do). A new worker runs its
 * first jobs un-optimised (≈ 2× slower until V8 has compiled them): keep one worker for a run.
 */
import { type ImagePlan, type ImageValues, planImage, type PlanSettings } from "./planning.ts";

/** One image of one decoder layer: its values and its settings. */
export interface PlanUnit {
  readonly image: ImageValues;
  readonly settings: PlanSettings;
}

/** The worker closes itself after this long without work. */
export const IDLE_CLOSE_MS = 5000;

/** How long a job may take before the worker is taken for dead (its errors cannot reach a blocked thread). */
const ANSWER_WITHIN_MS = 300_000;

/** State word values shared with the worker. */
export const IDLE = 0, BUSY = 1, CLOSED = 2;
/** Done word values. */
export const PENDING = 0, DONE = 1, FAILED = 2;

/** A unit as the worker reads it: offsets into the shared buffers. */
export interface WorkerUnit {
  readonly logits: [number, number];
  readonly masks: [number, number];
  readonly maskShape: readonly [number, number, number];
  readonly classes: [number, number];
  readonly targets: [number, number];
  readonly targetBytes: boolean;
  readonly targetShape: readonly [number, number, number];
  readonly settings: PlanSettings;
  /** how many pairs its plan has: min(Q, N) */
  readonly matched: number;
  /** where its plan goes: `matched` query and target indices, then `matched·P·2` coordinates */
  readonly indices: number;
  readonly coords: number;
}

/** The one message a planning job sends. */
export interface WorkerJob {
  readonly floats: SharedArrayBuffer;
  readonly ints: SharedArrayBuffer;
  readonly bytes: SharedArrayBuffer;
  readonly resultInts: SharedArrayBuffer;
  readonly resultFloats: SharedArrayBuffer;
  /** Int32 [done, error length], then the error text from byte 8 */
  readonly control: SharedArrayBuffer;
  /** the worker's Int32 state word (IDLE, BUSY, CLOSED) */
  readonly state: SharedArrayBuffer;
  readonly units: ReadonlyArray<WorkerUnit>;
}

let threads = 1;
let worker: { readonly worker: Worker; readonly state: Int32Array } | undefined;

/** How many threads plan (1: this one only, the default). Clamped to 1–2: one worker at most. */
export const setPlanningThreads = (n: number): void => {
  threads = Math.max(1, Math.min(2, Math.floor(n)));
  if (threads === 1) stopPlanningWorkers();
};

export const planningThreads = (): number => threads;

/** Ends the worker now, if there is one. */
export const stopPlanningWorkers = (): void => {
  worker?.worker.terminate();
  worker = undefined;
};

/** A planning worker that is idle and now marked busy (a new one if the old one closed itself). */
const claimWorker = () => {
  if (worker !== undefined && Atomics.compareExchange(worker.state, 0, IDLE, BUSY) === IDLE) return worker;
  worker?.worker.terminate(); // closed itself (or never answered): a new one
  const state = new Int32Array(new SharedArrayBuffer(4));
  Atomics.store(state, 0, BUSY);
  worker = { worker: new Worker(new URL("./plan_worker.ts", import.meta.url).href, { type: "module" }), state };
  return worker;
};

/** A rough cost of a unit (ms on 2 vCPUs): the matcher's sampling of every query, then ≈ 0.45 ms per matched mask. */
const unitCost = (u: PlanUnit): number =>
  (u.image.maskShape[0] * u.settings.points) / 30_000 +
  Math.min(u.image.maskShape[0], u.image.targetShape[0]) * u.settings.points * u.settings.oversample / 27_000;

/** Plans every unit, in order: on this thread alone, or split with the worker. */
export const planImages = (units: ReadonlyArray<PlanUnit>): ImagePlan[] => {
  if (threads === 1 || units.length < 2) return units.map((u) => planImage(u.image, u.settings));
  // longest first, each to the less loaded side
  const order = units.map((u, i) => ({ i, cost: unitCost(u) })).sort((a, b) => b.cost - a.cost);
  const load = [0, 0], mine: number[] = [], theirs: number[] = [];
  for (const { i, cost } of order) {
    const side = load[0] as number <= (load[1] as number) ? 0 : 1;
    load[side] = (load[side] as number) + cost;
    (side === 0 ? mine : theirs).push(i);
  }
  if (theirs.length === 0) return units.map((u) => planImage(u.image, u.settings));
  const w = claimWorker();
  const job = packJob(theirs.map((i) => units[i] as PlanUnit), w.state.buffer as SharedArrayBuffer);
  const control = new Int32Array(job.control, 0, 2);
  w.worker.postMessage(job);
  const plans: ImagePlan[] = new Array(units.length);
  try {
    for (const i of mine) plans[i] = planImage((units[i] as PlanUnit).image, (units[i] as PlanUnit).settings);
  } catch (error) {
    stopPlanningWorkers(); // it is still writing into the shared buffers the next job would reuse
    throw error;
  }
  while (Atomics.load(control, 0) === PENDING) {
    if (Atomics.wait(control, 0, PENDING, ANSWER_WITHIN_MS) === "timed-out") {
      stopPlanningWorkers();
      throw new Error(`planning worker: no answer within ${ANSWER_WITHIN_MS / 1000} s (did it crash?)`);
    }
  }
  if (Atomics.load(control, 0) === FAILED) {
    const text = new TextDecoder().decode(new Uint8Array(job.control, 8, Atomics.load(control, 1)).slice());
    stopPlanningWorkers();
    throw new Error(`planning worker: ${text}`);
  }
  theirs.forEach((i, k) => (plans[i] = readPlan(job, k)));
  return plans;
};

/**
 * Grow-only shared buffers, reused by every job (one job runs at a time): fresh ones would cost a
 * page fault per 4 KB written, ≈ 10,000 a step.
 */
const buffers = new Map<string, SharedArrayBuffer>();
export const sharedBuffer = (name: string, bytes: number): SharedArrayBuffer => {
  let b = buffers.get(name);
  if (b === undefined || b.byteLength < bytes) {
    // whole 8-byte words: typed arrays of any element size can view it
    b = new SharedArrayBuffer(Math.ceil(Math.max(bytes, (b?.byteLength ?? 0) * 1.5, 8) / 8) * 8);
    buffers.set(name, b);
  }
  return b;
};

/** Copies the units' inputs into shared buffers and lays out where their plans go. */
const packJob = (units: ReadonlyArray<PlanUnit>, state: SharedArrayBuffer): WorkerJob => {
  let floats = 0, ints = 0, bytes = 0, resultInts = 0, resultFloats = 0;
  const laid = units.map((u) => {
    const [Q] = u.image.maskShape, [N] = u.image.targetShape, M = Math.min(Q, N);
    const targetBytes = u.image.targets instanceof Uint8Array;
    const take = (size: number, kind: "f" | "i" | "b"): [number, number] => {
      const at = kind === "f" ? floats : kind === "i" ? ints : bytes;
      if (kind === "f") floats += size;
      else if (kind === "i") ints += size;
      else bytes += size;
      return [at, size];
    };
    const unit: WorkerUnit = {
      logits: take(u.image.logits.length, "f"),
      masks: take(u.image.masks.length, "f"),
      maskShape: u.image.maskShape,
      classes: take(u.image.classes.length, "i"),
      targets: take(u.image.targets.length, targetBytes ? "b" : "f"),
      targetBytes,
      targetShape: u.image.targetShape,
      settings: u.settings,
      matched: M,
      indices: resultInts,
      coords: resultFloats,
    };
    resultInts += 2 * M;
    resultFloats += M * u.settings.points * 2;
    return unit;
  });
  const job: WorkerJob = {
    floats: sharedBuffer("floats", 4 * floats),
    ints: sharedBuffer("ints", 4 * ints),
    bytes: sharedBuffer("bytes", bytes),
    resultInts: sharedBuffer("resultInts", 4 * resultInts),
    resultFloats: sharedBuffer("resultFloats", 4 * resultFloats),
    control: sharedBuffer("control", 8 + 4096),
    state,
    units: laid,
  };
  new Int32Array(job.control, 0, 2).fill(0);
  const f = new Float32Array(job.floats, 0, floats), i32 = new Int32Array(job.ints, 0, ints);
  const b = new Uint8Array(job.bytes, 0, bytes);
  units.forEach((u, k) => {
    const l = laid[k] as WorkerUnit;
    f.set(u.image.logits, l.logits[0]);
    f.set(u.image.masks, l.masks[0]);
    i32.set(u.image.classes, l.classes[0]);
    if (l.targetBytes) b.set(u.image.targets as Uint8Array, l.targets[0]);
    else f.set(u.image.targets as Float32Array, l.targets[0]);
  });
  return job;
};

/** The plan of the job's unit `k`, copied out of shared memory. */
const readPlan = (job: WorkerJob, k: number): ImagePlan => {
  const u = job.units[k] as WorkerUnit, M = u.matched;
  const ints = new Int32Array(job.resultInts, 4 * u.indices, 2 * M);
  return {
    queryIndex: ints.slice(0, M),
    targetIndex: ints.slice(M, 2 * M),
    coords: new Float32Array(job.resultFloats, 4 * u.coords, M * u.settings.points * 2).slice(),
  };
};

/** The worker's side: the units of a job as ImageValues over the shared buffers. */
export const unitValues = (job: WorkerJob, u: WorkerUnit): ImageValues => ({
  logits: new Float32Array(job.floats, 4 * u.logits[0], u.logits[1]),
  masks: new Float32Array(job.floats, 4 * u.masks[0], u.masks[1]),
  maskShape: u.maskShape,
  classes: new Int32Array(job.ints, 4 * u.classes[0], u.classes[1]),
  targets: u.targetBytes
    ? new Uint8Array(job.bytes, u.targets[0], u.targets[1])
    : new Float32Array(job.floats, 4 * u.targets[0], u.targets[1]),
  targetShape: u.targetShape,
});

/** The worker's side: writes unit `u`'s plan into the job's result buffers. */
export const writePlan = (job: WorkerJob, u: WorkerUnit, plan: ImagePlan): void => {
  const M = plan.queryIndex.length;
  const ints = new Int32Array(job.resultInts, 4 * u.indices, 2 * u.matched);
  ints.set(plan.queryIndex, 0);
  ints.set(plan.targetIndex, M);
  new Float32Array(job.resultFloats, 4 * u.coords, plan.coords.length).set(plan.coords);
};
