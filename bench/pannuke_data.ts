/**
 * Seeded PanNuke-size evaluation data for the benchmark: N images of 256×256×6 (truth) and
 * 256×256×5 (prediction) as uint8 .npy files, written image by image. Truth: 20–80 elliptic nuclei
 * of random class, touching and overlapping; prediction: each nucleus shifted by up to 2 px,
 * resized, relabelled with probability 0.2, dropped with probability 0.1, plus 10 % false positives.
 * uint8 keeps the two files at 1 GB (PanNuke's float64 would be 8 GB); the readers accept any dtype.
 */
import { encodeStringsNpy, npyHeader } from "../pipeline/codec/npy.ts";
import { PANNUKE_TISSUES } from "../stages/evaluation/pannuke.ts";

const SIZE = 256;

const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

interface Nucleus {
  readonly cx: number;
  readonly cy: number;
  readonly rx: number;
  readonly ry: number;
  readonly type: number;
}

/** Rasterises nuclei into an interleaved [256, 256, channels] image; later nuclei overwrite. */
const draw = (channels: number, nuclei: ReadonlyArray<Nucleus>): Uint8Array => {
  const out = new Uint8Array(SIZE * SIZE * channels);
  const next = [0, 0, 0, 0, 0];
  for (const n of nuclei) {
    const id = ++next[n.type]!;
    for (let y = Math.max(0, Math.floor(n.cy - n.ry)); y <= Math.min(SIZE - 1, Math.ceil(n.cy + n.ry)); y++) {
      for (let x = Math.max(0, Math.floor(n.cx - n.rx)); x <= Math.min(SIZE - 1, Math.ceil(n.cx + n.rx)); x++) {
        if (((x - n.cx) / n.rx) ** 2 + ((y - n.cy) / n.ry) ** 2 > 1) continue;
        const at = (y * SIZE + x) * channels;
        out.fill(0, at, at + 5); // a pixel belongs to one nucleus
        out[at + n.type] = id;
      }
    }
  }
  if (channels === 6) {
    for (let i = 0; i < SIZE * SIZE; i++) out[i * 6 + 5] = out.subarray(i * 6, i * 6 + 5).some((v) => v !== 0) ? 0 : 1;
  }
  return out;
};

/** One image's truth and prediction nuclei. */
const nucleiOf = (rand: () => number): { truth: Nucleus[]; pred: Nucleus[] } => {
  const count = 20 + Math.floor(rand() * 61);
  const truth: Nucleus[] = [];
  for (let k = 0; k < count; k++) {
    const r = 3 + rand() * 7;
    truth.push({
      cx: rand() * SIZE,
      cy: rand() * SIZE,
      rx: r * (0.7 + rand() * 0.6),
      ry: r,
      type: Math.floor(rand() * 5),
    });
  }
  const pred: Nucleus[] = [];
  for (const t of truth) {
    if (rand() < 0.1) continue;
    pred.push({
      cx: t.cx + (rand() - 0.5) * 4,
      cy: t.cy + (rand() - 0.5) * 4,
      rx: Math.max(1.5, t.rx + (rand() - 0.5) * 2),
      ry: Math.max(1.5, t.ry + (rand() - 0.5) * 2),
      type: rand() < 0.2 ? Math.floor(rand() * 5) : t.type,
    });
  }
  for (let k = 0; k < count / 10; k++) {
    pred.push({ cx: rand() * SIZE, cy: rand() * SIZE, rx: 4, ry: 5, type: Math.floor(rand() * 5) });
  }
  return { truth, pred };
};

/** Writes truth.npy, pred.npy and types.npy for `n` images under `dir`; returns their paths. */
export const writePannukeBenchData = async (dir: string, n: number, seed = 1) => {
  const rand = mulberry32(seed);
  const paths = { truth: `${dir}/truth.npy`, pred: `${dir}/pred.npy`, types: `${dir}/types.npy` };
  using truthFile = await Deno.open(paths.truth, { write: true, create: true, truncate: true });
  using predFile = await Deno.open(paths.pred, { write: true, create: true, truncate: true });
  const writeAll = async (file: Deno.FsFile, bytes: Uint8Array) => {
    for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
  };
  await writeAll(truthFile, npyHeader("|u1", [n, SIZE, SIZE, 6]));
  await writeAll(predFile, npyHeader("|u1", [n, SIZE, SIZE, 5]));
  for (let i = 0; i < n; i++) {
    const { truth, pred } = nucleiOf(rand);
    await writeAll(truthFile, draw(6, truth));
    await writeAll(predFile, draw(5, pred));
  }
  await Deno.writeFile(
    paths.types,
    encodeStringsNpy(Array.from({ length: n }, (_, i) => PANNUKE_TISSUES[i % PANNUKE_TISSUES.length] as string)),
  );
  return paths;
};
