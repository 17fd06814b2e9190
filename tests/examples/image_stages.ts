/**
 * Example stages for the README's pipeline example: make a seeded test image, smooth it, find an
 * Otsu threshold from its histogram, and measure the foreground. Small, pure and nucleus-agnostic:
 * they show how a user writes stages (config Schemas, typed inputs, codecs, progress).
 */
import { Effect, Schema } from "effect";
import { json, png, type RasterImage, Stage, track } from "../../mod.ts";

const Histogram = Schema.Array(Schema.Number);

/** Blobs on a noisy background, from a seed (mulberry32), as a 1-channel 8-bit image. */
export const blobImage = Stage.make({
  name: "example.blobImage",
  version: 1,
  config: Schema.Struct({
    seed: Schema.Int,
    size: Schema.Int.pipe(Schema.check(Schema.isGreaterThan(7))),
    blobs: Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0))),
  }),
  inputs: {},
  output: png,
  run: (_, { seed, size, blobs }) =>
    Effect.sync((): RasterImage => {
      let s = seed >>> 0;
      const rand = () => {
        s = (s + 0x6d2b79f5) >>> 0;
        let t = s;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
      const data = new Uint8Array(size * size);
      for (let i = 0; i < data.length; i++) data[i] = 40 + Math.floor(rand() * 40);
      for (let b = 0; b < blobs; b++) {
        const cx = rand() * size, cy = rand() * size, r = 3 + rand() * size / 12;
        for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(size, cy + r); y++) {
          for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(size, cx + r); x++) {
            if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) data[y * size + x] = 170 + Math.floor(rand() * 60);
          }
        }
      }
      return { width: size, height: size, channels: 1, data };
    }),
});

/** Repeated 3×3 box smoothing (deliberately the slow step, with progress). */
export const smooth = Stage.make({
  name: "example.smooth",
  version: 1,
  config: Schema.Struct({ passes: Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0))) }),
  inputs: { image: png },
  output: png,
  run: ({ image }, { passes }) =>
    track("smooth", passes, (progress) =>
      Effect.gen(function* () {
        const { width: w, height: h } = image;
        let src = Float32Array.from(image.data);
        for (let p = 0; p < passes; p++) {
          const dst = new Float32Array(w * h);
          for (let y = 0; y < h; y++) {
            for (let x = 0; x < w; x++) {
              let sum = 0, n = 0;
              for (let dy = -1; dy <= 1; dy++) {
                for (let dx = -1; dx <= 1; dx++) {
                  const yy = y + dy, xx = x + dx;
                  if (yy >= 0 && yy < h && xx >= 0 && xx < w) {
                    sum += src[yy * w + xx] as number;
                    n++;
                  }
                }
              }
              dst[y * w + x] = sum / n;
            }
          }
          src = dst;
          yield* progress.advance(1);
        }
        return { width: w, height: h, channels: 1 as const, data: Uint8Array.from(src, (v) => Math.round(v)) };
      })),
});

/** 256-bin grey-level histogram. */
export const histogram = Stage.make({
  name: "example.histogram",
  version: 1,
  inputs: { image: png },
  output: json(Histogram),
  run: ({ image }) =>
    Effect.sync(() => {
      const counts = new Array<number>(256).fill(0);
      for (const v of image.data) counts[Math.min(255, v)]! += 1;
      return counts;
    }),
});

/** Otsu's threshold: the grey level maximising between-class variance. */
export const otsuThreshold = Stage.make({
  name: "example.otsuThreshold",
  version: 1,
  inputs: { histogram: json(Histogram) },
  output: json(Schema.Int),
  run: ({ histogram }) =>
    Effect.sync(() => {
      const total = histogram.reduce((a, b) => a + b, 0);
      const sumAll = histogram.reduce((a, c, i) => a + c * i, 0);
      let best = 0, bestVar = -1, wB = 0, sumB = 0;
      for (let t = 0; t < 256; t++) {
        wB += histogram[t] as number;
        sumB += t * (histogram[t] as number);
        const wF = total - wB;
        if (wB === 0 || wF === 0) continue;
        const between = wB * wF * (sumB / wB - (sumAll - sumB) / wF) ** 2;
        if (between > bestVar) [bestVar, best] = [between, t];
      }
      return best;
    }),
});

/** Fraction of pixels above the threshold. */
export const foreground = Stage.make({
  name: "example.foreground",
  version: 1,
  inputs: { image: png, threshold: json(Schema.Int) },
  output: json(Schema.Struct({ threshold: Schema.Int, fraction: Schema.Number })),
  run: ({ image, threshold }) =>
    Effect.sync(() => ({
      threshold,
      fraction: Array.from(image.data).filter((v) => v > threshold).length / image.data.length,
    })),
});
