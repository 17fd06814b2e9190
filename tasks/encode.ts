/**
 * `deno task encode image`: run SAM's image encoder with weights from a local safetensors file —
 * a check that our ViT reproduces a given checkpoint.
 *
 *   deno task encode image --weights W.safetensors --config C.json --image X.png --out OUT.npy
 *
 * C.json holds ImageEncoderViT's arguments (img_size, patch_size, in_chans, embed_dim, depth,
 * num_heads, mlp_ratio, out_chans, qkv_bias, use_abs_pos, use_rel_pos, window_size,
 * global_attn_indexes, layer_norm_eps) and optionally pixel_mean / pixel_std (SAM's by default);
 * unknown keys are ignored. A PNG/JPEG/TIFF is normalised with pixel_mean/std; a .npy ([H, W, 3] or
 * [1, H, W, 3] float) is taken as the already normalised input. OUT is float32 NHWC
 * [1, H/patch, W/patch, out_chans].
 */
import * as NodeServices from "@effect/platform-node/NodeServices";
import * as tf from "@tensorflow/tfjs";
import { Console, Effect, Schema } from "effect";
import { Command, Flag } from "effect/cli";
import { decodeNpy, encodeNpy } from "../pipeline/codec/npy.ts";
import { decodeSafetensors } from "../pipeline/codec/safetensors.ts";
import { schemaProblems } from "../pipeline/schema_problems.ts";
import { BACKENDS, initBackend } from "../stages/backend/tf.ts";
import { readRgb } from "../stages/data/image.ts";
import { applyViT, loadSamEncoderWeights, type ViTConfig, vitVariables } from "../stages/model/vit.ts";
import { runTask, UsageError, writeAtomic } from "./_main.ts";

const EncoderConfig = Schema.Struct({
  img_size: Schema.Int,
  patch_size: Schema.Int,
  in_chans: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(3))),
  embed_dim: Schema.Int,
  depth: Schema.Int,
  num_heads: Schema.Int,
  mlp_ratio: Schema.Number.pipe(Schema.withDecodingDefaultKey(Effect.succeed(4))),
  out_chans: Schema.Int,
  qkv_bias: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(true))),
  use_abs_pos: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(true))),
  use_rel_pos: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(false))),
  window_size: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0))),
  global_attn_indexes: Schema.Array(Schema.Int).pipe(Schema.withDecodingDefaultKey(Effect.succeed([] as number[]))),
  layer_norm_eps: Schema.Number.pipe(Schema.withDecodingDefaultKey(Effect.succeed(1e-6))),
  pixel_mean: Schema.Array(Schema.Number).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed([123.675, 116.28, 103.53])),
  ),
  pixel_std: Schema.Array(Schema.Number).pipe(Schema.withDecodingDefaultKey(Effect.succeed([58.395, 57.12, 57.375]))),
});

const fail = (message: string) => new UsageError({ message });
const read = (path: string, flag: string) =>
  Effect.tryPromise({
    try: () => Deno.readFile(path),
    catch: (e) => fail(`${flag}: cannot read ${path} (${e instanceof Error ? e.message : e})`),
  });

const image = Command.make("image", {
  weights: Flag.String("weights").pipe(Flag.withDescription("SAM checkpoint as safetensors (image_encoder.* names)")),
  config: Flag.String("config").pipe(
    Flag.withDescription("JSON with ImageEncoderViT's arguments (+ pixel_mean, pixel_std)"),
  ),
  image: Flag.String("image").pipe(
    Flag.withDescription("RGB image (PNG/JPEG/TIFF, normalised here) or a normalised float .npy"),
  ),
  out: Flag.String("out").pipe(Flag.withDescription("Output .npy: float32 [1, H/patch, W/patch, out_chans]")),
  backend: Flag.Literals("backend", BACKENDS).pipe(
    Flag.withDescription("tfjs backend (default cpu: the numerical reference)"),
    Flag.withDefault("cpu" as const),
  ),
}, (f) =>
  Effect.gen(function* () {
    const configText = new TextDecoder().decode(yield* read(f.config, "--config"));
    const json = yield* Effect.try({
      try: () => JSON.parse(configText) as unknown,
      catch: () => fail(`--config ${f.config}: not valid JSON`),
    });
    const c = yield* Schema.decodeUnknownEffect(EncoderConfig)(json, { errors: "all" }).pipe(
      Effect.mapError((e) => fail(`--config ${f.config}: ${schemaProblems(e, json).join("; ")}`)),
    );
    const { pixel_mean: mean, pixel_std: std, ...rest } = c;
    const config: ViTConfig = { ...rest, global_attn_indexes: [...rest.global_attn_indexes] };
    const file = yield* decodeSafetensors(yield* read(f.weights, "--weights")).pipe(
      Effect.mapError((e) => fail(`--weights ${f.weights}: ${e.reason}`)),
    );
    yield* initBackend(f.backend);
    const params = yield* loadSamEncoderWeights(file.tensors, config).pipe(
      Effect.mapError((e) => fail(`--weights ${f.weights}: ${e.message}`)),
    );
    const input = yield* Effect.tryPromise({
      try: async (): Promise<tf.Tensor4D> => {
        if (f.image.toLowerCase().endsWith(".npy")) {
          const a = decodeNpy(await Deno.readFile(f.image), f.image);
          const shape = a.shape.length === 3 ? [1, ...a.shape] : [...a.shape];
          if (shape.length !== 4 || shape[3] !== config.in_chans || !ArrayBuffer.isView(a.data)) {
            throw new Error(
              `expected a float array [H, W, ${config.in_chans}] or [1, H, W, ${config.in_chans}], found (${
                a.shape.join(", ")
              })`,
            );
          }
          return tf.tensor4d(Float32Array.from(a.data), shape as [number, number, number, number]);
        }
        const { height, width, rgb } = await readRgb(f.image);
        return tf.tidy(() =>
          tf.div(tf.sub(tf.tensor4d(Float32Array.from(rgb), [1, height, width, 3]), [...mean]), [...std]) as tf.Tensor4D
        );
      },
      catch: (e) => fail(`--image ${f.image}: ${e instanceof Error ? e.message : e}`),
    });
    const output = applyViT(params, config, input); // [1, H/p, W/p, out]
    const data = output.dataSync() as Float32Array;
    yield* writeAtomic(f.out, encodeNpy(data, output.shape));
    yield* Console.log(`wrote ${f.out}: float32 [${output.shape.join(", ")}] (${f.backend})`);
    tf.dispose([input, output, ...vitVariables(params)]);
  })).pipe(
    Command.withDescription(
      "Encode an image with SAM's image encoder. Example: deno task encode image --weights sam.safetensors --config vit_b.json --image tile.png --out features.npy",
    ),
  );

if (import.meta.main) {
  runTask(
    Command.make("encode").pipe(
      Command.withSubcommands([image]),
      Command.run({ version: "0.1.0" }),
      Effect.provide(NodeServices.layer),
    ),
  );
}
