/**
 * The planning worker (plan_pool.ts): plans the units of each job it is sent into shared memory,
 * marks itself idle, then signals the job done. After IDLE_CLOSE_MS without a job it closes itself,
 * unless the main thread has claimed it in between (the shared state word decides).
 */
import { planImage } from "./planning.ts";
import { CLOSED, DONE, FAILED, IDLE, IDLE_CLOSE_MS, unitValues, type WorkerJob, writePlan } from "./plan_pool.ts";

let timer: ReturnType<typeof setTimeout> | undefined;

globalThis.addEventListener("message", (event) => {
  const job = (event as MessageEvent<WorkerJob>).data;
  const state = new Int32Array(job.state, 0, 1), control = new Int32Array(job.control, 0, 2);
  let outcome = DONE;
  try {
    for (const u of job.units) writePlan(job, u, planImage(unitValues(job, u), u.settings));
  } catch (error) {
    const text = new TextEncoder().encode(error instanceof Error ? error.stack ?? error.message : String(error));
    const kept = text.subarray(0, Math.min(text.length, job.control.byteLength - 8));
    new Uint8Array(job.control, 8, kept.length).set(kept);
    Atomics.store(control, 1, kept.length);
    outcome = FAILED;
  }
  // idle before done: the main thread may claim this worker again as soon as it wakes
  Atomics.store(state, 0, IDLE);
  Atomics.store(control, 0, outcome);
  Atomics.notify(control, 0);
  clearTimeout(timer);
  timer = setTimeout(() => {
    if (Atomics.compareExchange(state, 0, IDLE, CLOSED) === IDLE) self.close();
  }, IDLE_CLOSE_MS);
});
