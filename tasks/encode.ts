/**
 * `deno task encode image|text`: run SAM's image encoder or a CLIP text encoder with weights from a
 * local safetensors file — a check that our modules reproduce a given checkpoint.
 *
 *   deno task encode image --weights W.safetensors --config C.json --image X.png --out OUT.npy
 *   deno task encode text --weights W.safetensors --config C.json --ids IDS.npy --out OUT.npy
 *
 * image: C.json holds ImageEncoderViT's arguments (img_size, patch_size, in_chans, embed_dim, depth,
 * num_heads, mlp_ratio, out_chans, qkv_bias, use_abs_pos, use_rel_pos, window_size,
 * global_attn_indexes, layer_norm_eps) and optionally pixel_mean / pixel_std (SAM's by default);
 * unknown keys are ignored. A PNG/JPEG/TIFF is normalised with pixel_mean/std; a .npy ([H, W, 3] or
 * [1, H, W, 3] float) is taken as the already normalised input. OUT is float32 NHWC
 * [1, H/patch, W/patch, out_chans].
 *
 * text: W holds `CLIPTextModelWithProjection` (or whole `CLIPModel`) tensors under Hugging Face names;
 * C.json is a CLIPTextConfig (vocab_size, max_position_embeddings, hidden_size, num_attention_heads,
 * num_hidden_layers, intermediate_size, projection_dim, layer_norm_eps, hidden_act, eos_token_id;
 * missing keys take CLIPTextConfig's defaults — ViT-B/32 sizes and eos_token_id 2, HF's legacy
 * argmax pooling; unknown keys are ignored). IDS is an int32 or int64 .npy of token ids [B, T]
 * (T ≤ max_position_embeddings, every row holding its eos); OUT is float32 [B, projection_dim].
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
import {
  applyClipText,
  type ClipTextConfig,
  ClipTextConfigSchema,
  clipTextVariables,
  eosPositions,
  LEGACY_EOS_TOKEN_ID,
  loadClipTextWeights,
} from "../stages/text/clip_text.ts";
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

/** Reads a JSON config file and decodes it with `schema`; problems are one `--config` line. */
const readConfig = <S extends Schema.Top>(schema: S, path: string) =>
  Effect.gen(function* () {
    const text = new TextDecoder().decode(yield* read(path, "--config"));
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: () => fail(`--config ${path}: not valid JSON`),
    });
    return yield* Schema.decodeUnknownEffect(schema)(json, { errors: "all" }).pipe(
      Effect.mapError((e) => fail(`--config ${path}: ${schemaProblems(e, json).join("; ")}`)),
    );
  });

/** Token ids [B, T] from an int32/int64 .npy, checked against the config: the ids, B and T. */
const readTokenIds = (path: string, config: ClipTextConfig) =>
  Effect.gen(function* () {
    const bytes = yield* read(path, "--ids");
    const bad = (reason: string) => fail(`--ids ${path}: ${reason}`);
    const a = yield* Effect.try({
      try: () => decodeNpy(bytes, path),
      catch: (e) => fail(`--ids ${e instanceof Error ? e.message : e}`),
    });
    if (a.dtype !== "i4" && a.dtype !== "i8") {
      return yield* bad(`expected int32 or int64 token ids, found dtype ${a.dtype}`);
    }
    const [B = 0, T = 0] = a.shape;
    if (a.shape.length !== 2 || B < 1 || T < 1) {
      return yield* bad(`expected token ids [B, T] with B, T ≥ 1, found shape (${a.shape.join(", ")})`);
    }
    if (T > config.max_position_embeddings) {
      return yield* bad(`${T} tokens a row exceed max_position_embeddings ${config.max_position_embeddings}`);
    }
    const data = a.data;
    if (!ArrayBuffer.isView(data)) return yield* bad("expected numeric token ids");
    const outside = data.findIndex((id: number) => !(id >= 0 && id < config.vocab_size)); // before any int32 wrap-around
    if (outside >= 0) {
      const [row, column] = [Math.floor(outside / T), outside % T];
      return yield* bad(
        `id ${data[outside]} at [${row}, ${column}] is outside the vocabulary [0, ${config.vocab_size})`,
      );
    }
    const ids = Int32Array.from(data); // [B·T]
    const noEos = eosPositions(ids, T, config.eos_token_id).indexOf(-1);
    if (config.eos_token_id !== LEGACY_EOS_TOKEN_ID && noEos >= 0) {
      return yield* bad(`row ${noEos} holds no eos_token_id ${config.eos_token_id}, where the encoder pools`);
    }
    return { ids, B, T };
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
    const c = yield* readConfig(EncoderConfig, f.config);
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
    // read asynchronously: webgpu cannot read synchronously under Deno
    const data = (yield* Effect.promise(() => output.data())) as Float32Array;
    yield* writeAtomic(f.out, encodeNpy(data, output.shape));
    yield* Console.log(`wrote ${f.out}: float32 [${output.shape.join(", ")}] (${f.backend})`);
    tf.dispose([input, output, ...vitVariables(params)]);
  })).pipe(
    Command.withDescription(
      "Encode an image with SAM's image encoder. Example: deno task encode image --weights sam.safetensors --config vit_b.json --image tile.png --out features.npy",
    ),
  );

const text = Command.make("text", {
  weights: Flag.String("weights").pipe(
    Flag.withDescription("CLIPTextModelWithProjection or CLIPModel checkpoint as safetensors (HF names)"),
  ),
  config: Flag.String("config").pipe(Flag.withDescription("JSON with CLIPTextConfig's keys (others are ignored)")),
  ids: Flag.String("ids").pipe(Flag.withDescription("Token ids: int32 or int64 .npy [B, T]")),
  out: Flag.String("out").pipe(Flag.withDescription("Output .npy: float32 [B, projection_dim]")),
  backend: Flag.Literals("backend", BACKENDS).pipe(
    Flag.withDescription("tfjs backend (default cpu: the numerical reference)"),
    Flag.withDefault("cpu" as const),
  ),
}, (f) =>
  Effect.gen(function* () {
    const config: ClipTextConfig = yield* readConfig(ClipTextConfigSchema, f.config);
    const { ids, B, T } = yield* readTokenIds(f.ids, config);
    const file = yield* decodeSafetensors(yield* read(f.weights, "--weights")).pipe(
      Effect.mapError((e) => fail(`--weights ${f.weights}: ${e.reason}`)),
    );
    yield* initBackend(f.backend);
    const params = yield* loadClipTextWeights(file.tensors, config).pipe(
      Effect.mapError((e) =>
        e._tag === "ClipTextConfigError"
          ? fail(`--config ${f.config}: ${e.field}: ${e.reason}`)
          : fail(`--weights ${f.weights}: ${e.message}`)
      ),
    );
    const input = tf.tensor2d(ids, [B, T], "int32"); // [B, T]
    const output = applyClipText(params, config, input); // [B, P]
    const data = (yield* Effect.promise(() => output.data())) as Float32Array;
    tf.dispose([input, output, ...clipTextVariables(params)]);
    yield* writeAtomic(f.out, encodeNpy(data, [B, config.projection_dim]));
    yield* Console.log(`wrote ${f.out}: float32 [${B}, ${config.projection_dim}] (${f.backend})`);
  })).pipe(
    Command.withDescription(
      "Encode token ids with a CLIP text encoder. Example: deno task encode text --weights clip.safetensors --config text_config.json --ids ids.npy --out text.npy",
    ),
  );

if (import.meta.main) {
  runTask(
    Command.make("encode").pipe(
      Command.withSubcommands([image, text]),
      Command.run({ version: "0.1.0" }),
      Effect.provide(NodeServices.layer),
    ),
  );
}
