/**
 * A frozen CLIP text encoder — a pathology CLIP such as PLIP, from local files — as a cached stage:
 * its features of every prompt a dataset's training can ask for (the class prompts, the image-level
 * sentence of each class, and the attribute prompt of every word of every family scale, whichever
 * attributes a fit later selects), computed once. Training rows then only learn the projection from
 * these features; a rerun, another seed or another row reuses them through the cache.
 *
 * The folder holds `config.json` (CLIPTextConfig keys), `vocab.json` and `merges.txt` (its BPE
 * tokenizer) and exactly one `.safetensors` file with `CLIPTextModelWithProjection` (or whole
 * `CLIPModel`) tensors under Hugging Face's names — the form in which such models are distributed.
 */
import * as tf from "@tensorflow/tfjs";
import { Effect, Schema } from "effect";
import { causeText } from "../../pipeline/cause_text.ts";
import { decodeSafetensors, safetensors, type TensorFile } from "../../pipeline/codec/safetensors.ts";
import { schemaProblems } from "../../pipeline/schema_problems.ts";
import type { Progress } from "../../pipeline/progress.ts";
import { type DirRef, dirRefCodec } from "../../pipeline/source.ts";
import * as Stage from "../../pipeline/stage.ts";
import { SCALES } from "../attributes/words.ts";
import { backendEnvironment } from "../backend/tf.ts";
import { DatasetError, datasetOrgans } from "../data/sample.ts";
import { datasetRefCodec, openDataset } from "../data/source.ts";
import {
  applyClipText,
  type ClipTextConfig,
  ClipTextConfigSchema,
  clipTextVariables,
  loadClipTextWeights,
} from "./clip_text.ts";
import { attributePrompt, classPrompt, imagePrompt } from "./prompts.ts";
import { clipTokenizer } from "./tokenizer.ts";

/**
 * Every prompt training can ask the text encoder for, for these classes and organs (no duplicates,
 * stable order): the organ-named class prompts serve `--organ-prompts`.
 */
export const frozenPrompts = (classNames: ReadonlyArray<string>, organs: ReadonlyArray<string> = []): string[] => [
  ...new Set([
    ...classNames.map((name) => classPrompt(name, "")),
    ...classNames.map((name) => imagePrompt([name])),
    ...Object.values(SCALES).flat().map(attributePrompt),
    ...organs.flatMap((organ) => classNames.map((name) => classPrompt(name, organ))),
  ]),
];

/** The text encoder of a folder: config, tokenizer and weights, each problem naming its file. */
export const readClipFolder = async (dir: DirRef) => {
  const names = dir.files.map((f) => f.name);
  const need = (name: string) => {
    if (!names.includes(name)) {
      throw new DatasetError({
        file: dir.path,
        reason: `${name} is missing (expected config.json, vocab.json, merges.txt and one .safetensors)`,
      });
    }
    return `${dir.path}/${name}`;
  };
  const weights = names.filter((n) => n.endsWith(".safetensors") && !n.includes("/"));
  if (weights.length !== 1) {
    throw new DatasetError({ file: dir.path, reason: `expected one .safetensors file, found ${weights.length}` });
  }
  const configFile = need("config.json");
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(configFile));
  } catch (e) {
    throw new DatasetError({ file: configFile, reason: `not valid JSON (${causeText(e)})` });
  }
  // a whole CLIPModel's config.json keeps the text tower's keys under text_config
  const body = typeof json === "object" && json !== null && "text_config" in json
    ? (json as { text_config: unknown }).text_config
    : json;
  const config: ClipTextConfig = await Effect.runPromise(
    Schema.decodeUnknownEffect(ClipTextConfigSchema)(body, { errors: "all" }).pipe(
      Effect.mapError((e) => new DatasetError({ file: configFile, reason: schemaProblems(e, body).join("; ") })),
    ),
  );
  const tokenizer = await Effect.runPromise(
    clipTokenizer(await Deno.readTextFile(need("vocab.json")), await Deno.readTextFile(need("merges.txt"))).pipe(
      Effect.mapError((e) => new DatasetError({ file: `${dir.path}/${e.file}`, reason: e.reason })),
    ),
  );
  const weightsFile = `${dir.path}/${weights[0]}`;
  const file = await Effect.runPromise(
    decodeSafetensors(await Deno.readFile(weightsFile)).pipe(
      Effect.mapError((e) => new DatasetError({ file: weightsFile, reason: e.reason })),
    ),
  );
  return { config, tokenizer, tensors: file.tensors, weightsFile };
};

/** The encoder's features [N, projection_dim] of `prompts`, batched. */
export const encodeWithClipFolder = async (dir: DirRef, prompts: ReadonlyArray<string>): Promise<TensorFile> => {
  const { config, tokenizer, tensors, weightsFile } = await readClipFolder(dir);
  if (tokenizer.vocabSize > config.vocab_size) {
    throw new DatasetError({
      file: `${dir.path}/vocab.json`,
      reason: `${tokenizer.vocabSize} tokens (ids up to ${
        tokenizer.vocabSize - 1
      }); expected at most config.json's vocab_size ${config.vocab_size}`,
    });
  }
  const params = await Effect.runPromise(
    loadClipTextWeights(tensors, config).pipe(
      Effect.mapError((e) =>
        new DatasetError({
          file: e._tag === "ClipTextConfigError" ? `${dir.path}/config.json` : weightsFile,
          reason: e.message,
        })
      ),
    ),
  );
  try {
    const T = config.max_position_embeddings, P = config.projection_dim;
    const features = new Float32Array(prompts.length * P);
    for (let start = 0; start < prompts.length; start += 64) {
      const group = prompts.slice(start, start + 64);
      const ids = new Int32Array(group.length * T);
      group.forEach((p, i) => ids.set(tokenizer.encode(p, T).ids, i * T));
      const out = tf.tidy(() => applyClipText(params, config, tf.tensor2d(ids, [group.length, T], "int32")));
      try {
        features.set(await out.data() as Float32Array, start * P); // [group, P]; read asynchronously for webgpu
      } finally {
        out.dispose();
      }
    }
    return {
      tensors: { features: { dtype: "F32", shape: [prompts.length, P], data: features } },
      metadata: { prompts: JSON.stringify(prompts), config: JSON.stringify(config) },
    };
  } finally {
    tf.dispose(clipTextVariables(params));
  }
};

/** The frozen features of `text.frozen`'s output: the encoder's config, the prompts and [N, P]. */
export const frozenTextOf = (
  file: TensorFile,
): { config: ClipTextConfig; prompts: string[]; features: Float32Array } => {
  const features = file.tensors.features;
  if (features === undefined || features.dtype !== "F32") throw new RangeError("frozen text: the features are missing");
  return {
    config: JSON.parse(file.metadata?.config ?? "null") as ClipTextConfig,
    prompts: JSON.parse(file.metadata?.prompts ?? "[]") as string[],
    features: features.data as Float32Array,
  };
};

/** Every prompt of a dataset's classes through a frozen CLIP text encoder folder (cached). */
export const frozenTextStage = Stage.make({
  name: "text.frozen",
  version: 2, // 2: the organ-named class prompts of the dataset's organs too
  inputs: { dataset: datasetRefCodec, clip: dirRefCodec },
  output: safetensors,
  environment: backendEnvironment<Progress>(),
  run: ({ dataset, clip }) =>
    Effect.tryPromise({
      try: async () => {
        const ds = await openDataset(dataset);
        try {
          return await encodeWithClipFolder(clip, frozenPrompts(ds.classes, await datasetOrgans(ds)));
        } finally {
          ds.close();
        }
      },
      catch: (e) =>
        e instanceof DatasetError
          ? e
          : new DatasetError({ file: clip.path, reason: e instanceof Error ? e.message : String(e) }),
    }),
});
