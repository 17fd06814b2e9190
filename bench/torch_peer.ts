/**
 * PyTorch peer of the model benchmark: bench/torch_step.py times one AdamW training step of the
 * same architecture as the `tiny` baseline or the `conv` preset (`--preset`; batches of 2 and 4,
 * 256², 4,096 loss points, Hungarian matching with scipy) in Debian's PyTorch 1.13 on the CPU, at 1
 * and 2 threads (OMP_WAIT_POLICY=PASSIVE, so idle OpenMP workers do not spin between kernels). Rows
 * match bench/evaluation_bench.ts's `Row`.
 */
import type { Row } from "./evaluation_bench.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = new URL("./torch_step.py", import.meta.url).pathname;

/** The presets torch_step.py has a peer of. */
export type PeerPreset = "tiny" | "conv";

interface StepResult {
  readonly preset: PeerPreset;
  readonly threads: number;
  readonly median_s: number;
  readonly steps: number[];
  readonly params: number;
}

const run = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string } | undefined> => {
  const out = await new Deno.Command(PYTHON, {
    args,
    env: { OMP_WAIT_POLICY: "PASSIVE" },
    stdout: "piped",
    stderr: "piped",
  }).output().catch(() => undefined);
  if (out === undefined) return undefined;
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
};

/** A peer row; `seconds` is the median step time when the run succeeded. */
export type PeerRow = Row & {
  readonly preset: PeerPreset;
  readonly seconds?: number;
  readonly batch?: number;
  readonly threads?: number;
};

/** What the step holds besides the forward and the backward, per preset. */
const STEP: Record<PeerPreset, string> = {
  tiny: "forward, Mask2Former loss (scipy matching, 4,096 points) with deep supervision",
  conv: "forward, Mask2Former loss (scipy matching, 4,096 points) with deep supervision, dense loss (BCE + dice, " +
    "distance MSE)",
};

export const torchStepPeer = async (
  batches: ReadonlyArray<number> = [2],
  preset: PeerPreset = "tiny",
): Promise<PeerRow[]> => {
  const probe = await run(["-c", "import torch, scipy, numpy; print(torch.__version__)"]);
  if (probe === undefined || probe.code !== 0) {
    return [{
      name: `peer: PyTorch, same architecture (${preset}, batch ${batches.join("/")})`,
      preset,
      value: "not run",
      note: probe === undefined
        ? `${PYTHON} not found`
        : `needs torch, scipy and numpy for ${PYTHON}: ${probe.stderr.trim().split("\n").at(-1) ?? ""}`,
    }];
  }
  const version = probe.stdout.trim().replace(/a0.*$|\+.*$/, "").split(".").slice(0, 2).join(".");
  const rows: PeerRow[] = [];
  for (const batch of batches) {
    for (const threads of [1, 2]) {
      const unit = threads > 1 ? "threads" : "thread";
      const name = `peer: PyTorch ${version}, same architecture (${preset}, batch ${batch}), ${threads} ${unit}`;
      const out = await run([SCRIPT, String(threads), String(batch), "--preset", preset]);
      if (out === undefined || out.code !== 0) {
        const note = out?.stderr.trim().split("\n").at(-1) ?? "could not start";
        rows.push({ name, preset, value: "failed", note });
        continue;
      }
      const r = JSON.parse(out.stdout.trim().split("\n").at(-1) as string) as StepResult;
      rows.push({
        name,
        preset,
        value: `${r.median_s.toFixed(2)} s`,
        seconds: r.median_s,
        batch,
        threads,
        note: `median of 5 after a warm-up (${r.steps.map((s) => s.toFixed(2)).join(", ")} s); ` +
          `${r.params.toLocaleString("en-US")} parameters; ${STEP[preset]}, backward, clipping, AdamW; ` +
          `CPU float32, OMP_WAIT_POLICY=PASSIVE`,
      });
    }
  }
  return rows;
};
