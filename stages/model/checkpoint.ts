/**
 * Checkpoints: every parameter tensor under its path in the parameter record (e.g.
 * `decoder.layers.0.cross.q.weight`), as safetensors, plus JSON metadata (config, classes, step).
 * Loading fills a freshly initialised parameter record of the same config, checking every name and
 * shape.
 */
import * as tf from "@tensorflow/tfjs";
import type { HostTensor, TensorFile } from "../../pipeline/codec/safetensors.ts";
import { initModel, type ModelConfig, type ModelParams } from "./model.ts";
import { prefetch } from "../backend/tf.ts";

/** (path, tensor) of every tensor in a nested record, in sorted key order. */
export const namedTensors = (params: unknown, prefix = ""): Array<[string, tf.Tensor]> => {
  if (params instanceof tf.Tensor) return [[prefix, params]];
  if (Array.isArray(params)) {
    return params.flatMap((p, i) => namedTensors(p, prefix === "" ? String(i) : `${prefix}.${i}`));
  }
  if (typeof params === "object" && params !== null) {
    return Object.keys(params).sort().flatMap((k) =>
      namedTensors((params as Record<string, unknown>)[k], prefix === "" ? k : `${prefix}.${k}`)
    );
  }
  return [];
};

/**
 * The parameters as a TensorFile with string metadata. Values are read asynchronously, once: the
 * same on every backend, webgpu (no synchronous reads under Deno) included.
 */
export const saveCheckpoint = async (params: unknown, metadata: Record<string, string>): Promise<TensorFile> => {
  const named = namedTensors(params);
  const values = await prefetch(named.map(([, t]) => t));
  return {
    tensors: Object.fromEntries(
      named.map((
        [name, t],
        i,
      ): [string, HostTensor] => [name, { dtype: "F32", shape: t.shape, data: Float32Array.from(values[i] ?? []) }]),
    ),
    metadata,
  };
};

/** Assigns a checkpoint's tensors to the variables of `params` (same structure); throws naming a mismatch. */
export const loadCheckpoint = (params: unknown, file: TensorFile): void => {
  const named = namedTensors(params);
  const expected = new Set(named.map(([n]) => n));
  const extra = Object.keys(file.tensors).find((n) => !expected.has(n));
  if (extra !== undefined) throw new RangeError(`checkpoint: unexpected tensor '${extra}'`);
  for (const [name, t] of named) {
    const stored = file.tensors[name];
    if (stored === undefined) throw new RangeError(`checkpoint: tensor '${name}' is missing`);
    if (stored.dtype !== "F32" || stored.shape.join() !== t.shape.join()) {
      throw new RangeError(`checkpoint: '${name}' is ${stored.dtype} [${stored.shape}], expected F32 [${t.shape}]`);
    }
    if (!(t instanceof tf.Variable)) throw new RangeError(`checkpoint: '${name}' is not a variable`);
    tf.tidy(() => t.assign(tf.tensor(stored.data, t.shape)));
  }
};

/** Where a training checkpoint keeps Adam's state (train.ts), apart from the parameters. */
export const OPTIMIZER = "optimizer/";

/** A training checkpoint's parameters, Adam's state left out: what `loadCheckpoint` fills a model with. */
export const parameterTensors = (file: TensorFile): TensorFile => ({
  tensors: Object.fromEntries(Object.entries(file.tensors).filter(([name]) => !name.startsWith(OPTIMIZER))),
});

/** A model of `config` with a checkpoint's parameters; nothing is left allocated when they do not fit. */
export const restoreModel = (config: ModelConfig, classes: number, file: TensorFile): ModelParams => {
  const params = initModel(config, classes, 0);
  try {
    loadCheckpoint(params, parameterTensors(file));
  } catch (e) {
    tf.dispose(namedTensors(params).map(([, t]) => t));
    throw e;
  }
  return params;
};
