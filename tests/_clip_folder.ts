/**
 * A small CLIP text encoder folder with random weights, laid out as a downloaded pathology CLIP
 * (config.json, vocab.json, merges.txt, model.safetensors): byte-level BPE over every byte, a few
 * merges, and CLIPTextModelWithProjection tensors under Hugging Face's names.
 */
import { encodeSafetensors } from "../pipeline/codec/safetensors.ts";
import { mulberry32 } from "../stages/data/random.ts";
import { BYTE_TO_UNICODE } from "../stages/text/tokenizer.ts";
import { clipTextShapes } from "../stages/text/clip_text.ts";

export const writeClipFolder = async (dir: string, seed = 1): Promise<void> => {
  await Deno.mkdir(dir, { recursive: true });
  const symbols = [...BYTE_TO_UNICODE, ...BYTE_TO_UNICODE.map((s) => `${s}</w>`)];
  const merges = [["n", "u"], ["nu", "c"], ["c", "l"], ["e", "u"], ["eu", "s</w>"]];
  const vocab = [...symbols, ...merges.map(([a, b]) => `${a}${b}`), "<|startoftext|>", "<|endoftext|>"];
  const config = {
    vocab_size: vocab.length,
    max_position_embeddings: 24,
    hidden_size: 32,
    num_attention_heads: 4,
    num_hidden_layers: 2,
    intermediate_size: 64,
    projection_dim: 24,
    layer_norm_eps: 1e-5,
    hidden_act: "quick_gelu",
    eos_token_id: vocab.length - 1,
  };
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  await Deno.writeTextFile(`${dir}/vocab.json`, JSON.stringify(Object.fromEntries(vocab.map((t, i) => [t, i]))));
  await Deno.writeTextFile(`${dir}/merges.txt`, ["#version: 0.2", ...merges.map((m) => m.join(" "))].join("\n") + "\n");
  const rand = mulberry32(seed);
  const tensors = Object.fromEntries(
    Object.entries(clipTextShapes(config as never)).map(([name, shape]) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const ones = /layer_norm.*weight|final_layer_norm.weight/.test(name);
      const data = Float32Array.from({ length: n }, () => (ones ? 1 : (rand() - 0.5) * 0.2));
      return [name, { dtype: "F32" as const, shape, data }];
    }),
  );
  await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors({ tensors }));
};
