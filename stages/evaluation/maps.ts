/**
 * Reading instance and class maps for evaluation: 2-D `.npy` (any numeric dtype, floats truncated)
 * or single-channel 8/16-bit PNG. Every problem is an InvalidInput naming the file.
 */
import { Effect } from "effect";
import { decodePng } from "../../pipeline/codec/png.ts";
import { decodeNpy, type NpyData, NpyError } from "../../pipeline/codec/npy.ts";
import { InvalidInput } from "./errors.ts";

/** A 2-D map of non-negative integer labels, row-major [H, W]. */
export interface LabelMap {
  readonly height: number;
  readonly width: number;
  readonly labels: Int32Array;
}

/** Truncates values to integer labels; throws InvalidInput (caught by the caller's Effect.try). */
const toLabels = (values: ArrayLike<number>, file: string, width: number): Int32Array => {
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = Math.trunc(values[i] as number);
    if (!(v >= 0 && v <= 2147483647)) {
      const where = `row ${Math.floor(i / width)}, column ${i % width}`;
      throw new InvalidInput({ file, reason: `value ${values[i]} at ${where} is not a non-negative integer label` });
    }
    out[i] = v;
  }
  return out;
};

/** Reads a label map from `.npy` ([H, W] or [H, W, 1]) or `.png` (one channel). */
export const readLabelMap = (file: string): Effect.Effect<LabelMap, InvalidInput> =>
  Effect.gen(function* () {
    const bytes = yield* Effect.tryPromise({
      try: () => Deno.readFile(file),
      catch: (e) => new InvalidInput({ file, reason: `cannot read (${e instanceof Error ? e.message : e})` }),
    });
    if (file.toLowerCase().endsWith(".png")) {
      const image = yield* decodePng(bytes).pipe(Effect.mapError((e) => new InvalidInput({ file, reason: e.reason })));
      if (image.channels !== 1) {
        return yield* new InvalidInput({
          file,
          reason: `expected a single-channel (grey) label PNG, found ${image.channels} channels`,
        });
      }
      return { height: image.height, width: image.width, labels: Int32Array.from(image.data) };
    }
    if (!file.toLowerCase().endsWith(".npy")) {
      return yield* new InvalidInput({ file, reason: "expected a .npy or .png label map" });
    }
    const array = yield* Effect.try({
      try: () => decodeNpy(bytes, file),
      catch: (e) => (e instanceof NpyError
        ? new InvalidInput({ file, reason: e.reason })
        : new InvalidInput({ file, reason: String(e) })),
    });
    const shape = array.shape;
    if (!(shape.length === 2 || (shape.length === 3 && shape[2] === 1))) {
      return yield* new InvalidInput({ file, reason: `expected a 2-D map [H, W], found shape (${shape.join(", ")})` });
    }
    if (!ArrayBuffer.isView(array.data)) {
      return yield* new InvalidInput({ file, reason: `expected numbers, found dtype ${array.dtype}` });
    }
    const [height, width] = shape as [number, number];
    return yield* Effect.try({
      try: () => ({ height, width, labels: toLabels(array.data as NpyData, file, width) }),
      catch: (e) => (e instanceof InvalidInput ? e : new InvalidInput({ file, reason: String(e) })),
    });
  });

/** Checks that two maps have the same size. */
export const sameSize = (a: LabelMap, b: LabelMap, fileA: string, fileB: string): Effect.Effect<void, InvalidInput> =>
  a.height === b.height && a.width === b.width ? Effect.void : Effect.fail(
    new InvalidInput({
      file: fileB,
      reason: `size ${b.height}×${b.width} differs from ${fileA} (${a.height}×${a.width})`,
    }),
  );
