/**
 * The Progress service: how long work tells the user where it is.
 *
 * A stage (or the runner) calls `track(label, total, (t) => …)` and advances the tracker as it
 * goes. Layers decide the rendering: `terminal` draws live bars on stderr (cli-progress),
 * `plain` writes a line at most every few seconds (logs, CI), `silent` draws nothing (tests),
 * and `auto` picks `terminal` on a TTY and `plain` otherwise.
 */
import { Context, Effect, Layer } from "effect";
// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";
import process from "node:process";

/** One unit of tracked work. */
export interface Tracker {
  /** `note`: a short status shown with the count (e.g. the current loss) */
  readonly advance: (n?: number, note?: string) => Effect.Effect<void>;
  readonly finish: Effect.Effect<void>;
}

/** The Progress operations. */
export interface ProgressShape {
  readonly start: (label: string, total: number) => Effect.Effect<Tracker>;
}

/** The Progress service key and its layers. */
export class Progress extends Context.Service<Progress, ProgressShape>()("ivaan/pipeline/Progress") {
  /** draws nothing */
  static readonly silent: Layer.Layer<Progress> = Layer.succeed(Progress, {
    start: () => Effect.succeed({ advance: () => Effect.void, finish: Effect.void }),
  });

  /** one line per tracker at most every `intervalMs`, plus a final line; to `write` (stderr by default) */
  static readonly plain = (
    intervalMs = 5000,
    write: (line: string) => void = (line) => console.error(line),
  ): Layer.Layer<Progress> =>
    Layer.succeed(Progress, {
      start: (label, total) =>
        Effect.sync(() => {
          const started = performance.now();
          let done = 0, lastPrinted = started, status = "";
          const line = () =>
            `${label}: ${done}/${total}${total > 0 ? ` (${Math.floor((100 * done) / total)}%)` : ""}${
              status === "" ? "" : ` ${status}`
            }`;
          return {
            advance: (n = 1, note?: string) =>
              Effect.sync(() => {
                done += n;
                if (note !== undefined) status = note;
                const now = performance.now();
                if (now - lastPrinted >= intervalMs) {
                  lastPrinted = now;
                  write(line());
                }
              }),
            finish: Effect.sync(() =>
              write(`${line()} done in ${((performance.now() - started) / 1000).toFixed(1)} s`)
            ),
          };
        }),
    });

  /** live bars on stderr */
  static readonly terminal: Layer.Layer<Progress> = Layer.effect(
    Progress,
    Effect.acquireRelease(
      Effect.sync(() =>
        new cliProgress.MultiBar({
          stream: process.stderr,
          format: "{bar} {percentage}% | {value}/{total} | {label} | {duration_formatted}",
          hideCursor: true,
          clearOnComplete: false,
        }, cliProgress.Presets.shades_classic)
      ),
      (bars) => Effect.sync(() => bars.stop()),
    ).pipe(Effect.map((bars) =>
      Progress.of({
        start: (label, total) =>
          Effect.sync(() => {
            const bar = bars.create(total, 0, { label });
            return {
              advance: (n = 1, note?: string) =>
                Effect.sync(() => bar.increment(n, note === undefined ? {} : { label: `${label} ${note}` })),
              finish: Effect.sync(() => bar.stop()),
            };
          }),
      })
    )),
  );

  /** `terminal` on a TTY, `plain` otherwise */
  static readonly auto: Layer.Layer<Progress> = Deno.stderr.isTerminal() ? Progress.terminal : Progress.plain();
}

/** Runs `f` with a tracker for `total` units; the tracker is finished however `f` ends. */
export const track = <A, E, R>(
  label: string,
  total: number,
  f: (tracker: Tracker) => Effect.Effect<A, E, R>,
): Effect.Effect<A, E, R | Progress> =>
  Effect.flatMap(Progress, (p) => Effect.acquireUseRelease(p.start(label, total), f, (t) => t.finish));
