/**
 * Tokenizers for the text encoder (stages/text/clip_text.ts): text → token ids `[T]`, wrapped in
 * start- and end-of-text tokens and padded to a fixed context length T.
 *
 *  - `wordTokenizer(prompts)`: the `tiny` preset's word-level tokenizer. The prompts are few and
 *    short (ARCHITECTURE §5), so the vocabulary is built from the prompts themselves: no unused
 *    embedding rows, nothing to download.
 *  - `clipTokenizer(vocabJson, mergesTxt)`: CLIP's byte-level BPE (Radford et al. 2021; openai/CLIP
 *    `simple_tokenizer.py`), read from the `vocab.json` + `merges.txt` of a Hugging Face
 *    CLIPTokenizer, for a pretrained CLIP/PLIP text tower loaded from local files.
 *
 * Both return `{ ids, eot }`: ids `[T]` = [sot, …, eot, pad, …] and the position of that eot, where
 * the text encoder pools. Text longer than T − 2 tokens is cut to its first T − 2 tokens, so sot and
 * eot are always there (CLIP's `truncate=True`; HF's `truncation=True`).
 *
 * Common task: `const tok = wordTokenizer(prompts); const { ids, eot } = tok.encode("a large nucleus", 16)`.
 *
 * Gotchas:
 *  - Stages are pure: `clipTokenizer` takes the files' text, the task reads them.
 *  - CLIP text cleanup here is whitespace collapse + lower-case only; openai's `basic_clean` also runs
 *    ftfy and html.unescape (not available here): mojibake or `&amp;` in a prompt are encoded as they are.
 *  - A BPE symbol missing from vocab.json becomes `<|endoftext|>`, HF CLIPTokenizer's `unk_token`.
 *    A complete CLIP vocabulary holds every byte symbol, so this only happens with a partial vocab,
 *    where the encoder would then pool at that earlier `<|endoftext|>` (as HF would).
 *  - CLIP rows are padded with `<|endoftext|>` (HF's pad token; openai's `clip.tokenize` pads with 0).
 *    Padding never changes the encoder's output: attention is causal and pooling takes the first eot.
 */
import { Data, Effect } from "effect";
import { causeText } from "../../pipeline/cause_text.ts";

/** One encoded text: ids `[T]` = [sot, …, eot, pad, …] and the position of the eot. */
export interface Encoded {
  readonly ids: Int32Array; // [T]
  readonly eot: number;
}

/** What the text encoder needs of a tokenizer. */
export interface Tokenizer {
  /** Number of ids (the encoder's `vocab_size` must be at least this). */
  readonly vocabSize: number;
  readonly sot: number;
  /** The id the encoder pools at: its config's `eos_token_id`. */
  readonly eot: number;
  readonly pad: number;
  /** Encodes one text into `contextLength` ids (≥ 2: room for sot and eot). */
  readonly encode: (text: string, contextLength: number) => Encoded;
}

/** [sot, …content, eot, pad, …] of length T, content cut to T − 2 ids. */
const wrap = (content: ReadonlyArray<number>, t: Tokenizer, T: number): Encoded => {
  if (!Number.isInteger(T) || T < 2) {
    throw new RangeError(`tokenizer: contextLength must be an integer ≥ 2 (sot and eot), got ${T}`);
  }
  const kept = content.slice(0, T - 2);
  const ids = new Int32Array(T).fill(t.pad); // [T]
  ids[0] = t.sot;
  ids.set(kept, 1);
  ids[kept.length + 1] = t.eot;
  return { ids, eot: kept.length + 1 };
};

// ---------------------------------------------------------------------------------------------
// Word-level tokenizer (the `tiny` preset)

/**
 * Special tokens of the word vocabulary, ids 0–3. `<pad>` is 0 so zero-filled arrays read as
 * padding; `<eot>` is 3, not 2, because Hugging Face pools configs with `eos_token_id` 2 at the
 * argmax id instead of at the eot (clip_text.ts, `eosPositions`).
 */
export const WORD_SPECIALS = { pad: 0, unk: 1, sot: 2, eot: 3 } as const;

/** The word tokenizer: `tokens[id]` is the word (or special token) of an id. */
export interface WordTokenizer extends Tokenizer {
  readonly tokens: ReadonlyArray<string>;
}

/**
 * Lower-cases `text` and splits it into words (runs of letters, marks and digits) and single
 * punctuation characters; whitespace separates and is dropped.
 * `"A spindle-shaped nucleus."` → `["a", "spindle", "-", "shaped", "nucleus", "."]`.
 */
export const splitWords = (text: string): string[] =>
  text.toLowerCase().match(/[\p{L}\p{M}\p{N}]+|[^\s\p{L}\p{M}\p{N}]/gu) ?? [];

/**
 * A word-level tokenizer whose vocabulary is the special tokens (ids 0–3, `WORD_SPECIALS`) followed
 * by the unique words of `prompts` (`splitWords`) in code-unit order, so the same prompts always
 * give the same ids, whatever their order or the locale. Unknown words encode as `<unk>`.
 *
 * @example
 * ```ts
 * import { wordTokenizer } from "./tokenizer.ts";
 * const tok = wordTokenizer(["a large nucleus", "a small nucleus"]);
 * tok.tokens; // ["<pad>", "<unk>", "<sot>", "<eot>", "a", "large", "nucleus", "small"]
 * tok.encode("a small nucleus", 8); // ids [2, 4, 7, 6, 3, 0, 0, 0], eot 4
 * ```
 */
export const wordTokenizer = (prompts: ReadonlyArray<string>): WordTokenizer => {
  const words = [...new Set(prompts.flatMap(splitWords))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const tokens = ["<pad>", "<unk>", "<sot>", "<eot>", ...words];
  const index = new Map(tokens.map((w, i) => [w, i]));
  const self: WordTokenizer = {
    tokens,
    vocabSize: tokens.length,
    ...WORD_SPECIALS,
    encode: (text, T) => wrap(splitWords(text).map((w) => index.get(w) ?? WORD_SPECIALS.unk), self, T),
  };
  return self;
};

// ---------------------------------------------------------------------------------------------
// CLIP's byte-level BPE

/** vocab.json or merges.txt that cannot be a CLIP tokenizer's. */
export class TokenizerError extends Data.TaggedError("TokenizerError")<{
  readonly file: "vocab.json" | "merges.txt";
  readonly reason: string;
}> {
  override get message(): string {
    return `clipTokenizer: ${this.file}: ${this.reason}`;
  }
}

/** CLIP's BPE tokenizer. */
export interface ClipTokenizer extends Tokenizer {
  /** The BPE tokens of a text, before the id lookup (without sot/eot): for checks and debugging. */
  readonly tokenize: (text: string) => string[];
}

/**
 * GPT-2/CLIP's reversible byte → character table: printable Latin-1 bytes (`!`–`~`, `¡`–`¬`,
 * `®`–`ÿ`) stand for themselves, the other 68 bytes for U+0100, U+0101, … in byte order (space →
 * `Ġ`), so every BPE symbol is a printable string without whitespace.
 */
export const BYTE_TO_UNICODE: ReadonlyArray<string> = (() => {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCharCode(printable(b) ? b : next++));
})();

/** openai/CLIP `whitespace_clean` then lower-case (no ftfy / html.unescape: see the module gotchas). */
export const cleanText = (text: string): string => text.replace(/\s+/g, " ").trim().toLowerCase();

/** CLIP's pre-tokenisation pattern (simple_tokenizer.py), case-insensitive. */
const PRE_TOKENS = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/** Cleans a text and splits it into CLIP's pre-tokens: words, single digits, punctuation runs, contractions. */
export const clipPreTokens = (text: string): string[] => cleanText(text).match(PRE_TOKENS) ?? [];

const END_OF_WORD = "</w>";
/** CLIP's merge count, 49152 − 256 − 2: HF CLIPTokenizer and openai/CLIP read no further (CLIP's bpe file lists more). */
const MAX_MERGES = 48_894;
const SOT = "<|startoftext|>", EOT = "<|endoftext|>";

/**
 * Byte-pair encoding of one pre-token: its UTF-8 bytes as characters (`BYTE_TO_UNICODE`), `</w>` on
 * the last, then repeatedly the adjacent pair of lowest merge rank is joined — every occurrence,
 * left to right, without overlap — until no adjacent pair has a rank.
 */
const bytePairs = (pretoken: string, ranks: ReadonlyMap<string, number>): string[] => {
  const chars = Array.from(new TextEncoder().encode(pretoken), (b) => BYTE_TO_UNICODE[b] as string);
  let word = [...chars.slice(0, -1), chars[chars.length - 1] + END_OF_WORD];
  while (word.length > 1) {
    let best = Infinity, first = "", second = "";
    for (let i = 0; i + 1 < word.length; i++) {
      const rank = ranks.get(`${word[i]} ${word[i + 1]}`);
      if (rank !== undefined && rank < best) [best, first, second] = [rank, word[i] as string, word[i + 1] as string];
    }
    if (best === Infinity) break;
    const merged: string[] = [];
    for (let i = 0; i < word.length;) {
      if (word[i] === first && word[i + 1] === second) {
        merged.push(first + second);
        i += 2;
      } else merged.push(word[i++] as string);
    }
    word = merged;
  }
  return word;
};

/**
 * CLIP's tokenizer from the text of a Hugging Face CLIPTokenizer's `vocab.json` (token → id) and
 * `merges.txt` (one merge `a b` a line, by rank; a first `#version` line is skipped, and so is every
 * merge after the 48 894th, as HF and openai do). Ids are
 * `<|startoftext|>` … `<|endoftext|>`, padded with `<|endoftext|>`. Fails when vocab.json is not an
 * object of non-negative integer ids holding both special tokens, or a merge line is not two symbols.
 *
 * @example
 * ```ts
 * import { Effect } from "effect";
 * import { clipTokenizer } from "./tokenizer.ts";
 * const vocab = JSON.stringify({ "a</w>": 0, "<|startoftext|>": 1, "<|endoftext|>": 2 });
 * const tok = Effect.runSync(clipTokenizer(vocab, "#version: 0.2\n"));
 * tok.encode("A", 4); // ids [1, 0, 2, 2], eot 2
 * ```
 */
export const clipTokenizer = (vocabJson: string, mergesTxt: string): Effect.Effect<ClipTokenizer, TokenizerError> =>
  Effect.suspend(() => {
    const vocabError = (reason: string) => Effect.fail(new TokenizerError({ file: "vocab.json", reason }));
    let parsed: unknown;
    try {
      parsed = JSON.parse(vocabJson);
    } catch (e) {
      return vocabError(`not valid JSON (${causeText(e)})`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return vocabError("expected an object mapping tokens to ids");
    }
    const vocab = new Map<string, number>();
    for (const [token, id] of Object.entries(parsed)) {
      if (!Number.isSafeInteger(id) || (id as number) < 0) {
        return vocabError(
          `token ${JSON.stringify(token)}: expected a non-negative integer id, found ${JSON.stringify(id)}`,
        );
      }
      vocab.set(token, id as number);
    }
    const sot = vocab.get(SOT), eot = vocab.get(EOT);
    if (sot === undefined || eot === undefined) return vocabError(`must hold ${SOT} and ${EOT}`);

    const ranks = new Map<string, number>();
    const lines = mergesTxt.split("\n").map((l) => l.replace(/\r$/, ""));
    let rank = 0;
    for (const [i, line] of lines.entries()) {
      if ((i === 0 && line.startsWith("#version")) || line.trim() === "") continue;
      if (rank === MAX_MERGES) break;
      const parts = line.split(" ");
      if (parts.length !== 2 || parts[0] === "" || parts[1] === "") {
        return Effect.fail(
          new TokenizerError({
            file: "merges.txt",
            reason: `line ${i + 1}: expected two symbols separated by one space, found ${JSON.stringify(line)}`,
          }),
        );
      }
      ranks.set(`${parts[0]} ${parts[1]}`, rank++); // a repeated pair keeps its last rank, as a Python dict
    }

    const tokenize = (text: string): string[] =>
      clipPreTokens(text).flatMap((p) => (p === SOT || p === EOT ? [p] : bytePairs(p, ranks)));
    const self: ClipTokenizer = {
      vocabSize: Math.max(...vocab.values()) + 1,
      sot,
      eot,
      pad: eot,
      tokenize,
      encode: (text, T) => wrap(tokenize(text).map((s) => vocab.get(s) ?? eot), self, T),
    };
    return Effect.succeed(self);
  });
