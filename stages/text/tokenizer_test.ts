import assert from "node:assert/strict";
import { Effect } from "effect";
import {
  BYTE_TO_UNICODE,
  clipPreTokens,
  type ClipTokenizer,
  clipTokenizer,
  splitWords,
  WORD_SPECIALS,
  wordTokenizer,
} from "./tokenizer.ts";

// Hand-written CLIP vocabulary: tests/fixtures/clip_text/vocab.json (46 ids, <|startoftext|> 44,
// <|endoftext|> 45) and merges.txt (12 merges; rank = line − 2). Every expected id below is derived by hand
// from those two files in the comments next to it.
const fixture = (name: string) => new URL(`../../tests/fixtures/clip_text/${name}`, import.meta.url);
const loadClip = async (): Promise<ClipTokenizer> =>
  Effect.runPromise(
    clipTokenizer(await Deno.readTextFile(fixture("vocab.json")), await Deno.readTextFile(fixture("merges.txt"))),
  );

Deno.test("splitWords: lower-case words and single punctuation characters, whitespace dropped", () => {
  assert.deepEqual(splitWords("  A spindle-shaped\tNucleus."), ["a", "spindle", "-", "shaped", "nucleus", "."]);
  assert.deepEqual(splitWords("it's 2 cells!!"), ["it", "'", "s", "2", "cells", "!", "!"]);
  assert.deepEqual(splitWords("Café"), ["café"]);
  assert.deepEqual(splitWords("   "), []);
});

Deno.test("wordTokenizer: specials 0–3, then the prompts' unique words sorted, whatever the prompt order", () => {
  const tok = wordTokenizer(["a small nucleus", "a large nucleus."]);
  assert.deepEqual(tok.tokens, ["<pad>", "<unk>", "<sot>", "<eot>", ".", "a", "large", "nucleus", "small"]);
  assert.deepEqual([tok.pad, tok.sot, tok.eot, tok.vocabSize], [0, 2, 3, 9]);
  assert.deepEqual(WORD_SPECIALS, { pad: 0, unk: 1, sot: 2, eot: 3 });
  const shuffled = wordTokenizer(["A LARGE nucleus.", "a small nucleus", "a small nucleus"]);
  assert.deepEqual(shuffled.tokens, tok.tokens);
});

Deno.test("wordTokenizer.encode: T=8 → [sot, words…, eot, pad…], eot position, unknown words as <unk>", () => {
  const tok = wordTokenizer(["a large nucleus", "a small nucleus"]); // <pad> <unk> <sot> <eot> a large nucleus small
  assert.deepEqual(tok.encode("a small nucleus", 8), { ids: Int32Array.from([2, 4, 7, 6, 3, 0, 0, 0]), eot: 4 });
  assert.deepEqual(tok.encode("A huge Nucleus", 6), { ids: Int32Array.from([2, 4, 1, 6, 3, 0]), eot: 4 });
  assert.deepEqual(tok.encode("", 3), { ids: Int32Array.from([2, 3, 0]), eot: 1 });
});

Deno.test("wordTokenizer.encode: too-long text keeps its first T − 2 words and ends with eot", () => {
  const tok = wordTokenizer(["a large nucleus", "a small nucleus"]);
  assert.deepEqual(tok.encode("a small nucleus", 4), { ids: Int32Array.from([2, 4, 7, 3]), eot: 3 });
  assert.deepEqual(tok.encode("a small nucleus", 2), { ids: Int32Array.from([2, 3]), eot: 1 });
  assert.throws(() => tok.encode("a", 1), /contextLength must be an integer ≥ 2/);
});

Deno.test("BYTE_TO_UNICODE: printable Latin-1 bytes stand for themselves, the others for U+0100…", () => {
  assert.equal(BYTE_TO_UNICODE.length, 256);
  assert.equal(new Set(BYTE_TO_UNICODE).size, 256);
  assert.equal(BYTE_TO_UNICODE[0x41], "A");
  assert.equal(BYTE_TO_UNICODE[0xe9], "é");
  assert.equal(BYTE_TO_UNICODE[0x00], "\u0100");
  assert.equal(BYTE_TO_UNICODE[0x20], "Ġ"); // 256 + 32: the 33rd non-printable byte
  assert.equal(BYTE_TO_UNICODE[0x7f], "ġ"); // 256 + 33
  assert.equal(BYTE_TO_UNICODE[0xad], "Ń"); // soft hyphen, the last of the 68: 256 + 67
});

Deno.test("clipPreTokens: whitespace collapsed, lower-cased, contractions, single digits, punctuation runs", () => {
  assert.deepEqual(clipPreTokens("  Lower  low, LOW!! 42 it's café €"), [
    "lower",
    "low",
    ",",
    "low",
    "!!",
    "4",
    "2",
    "it",
    "'s",
    "café",
    "€",
  ]);
  assert.deepEqual(clipPreTokens("I'LL <|EndOfText|>x"), ["i", "'ll", "<|endoftext|>", "x"]);
});

Deno.test("clipTokenizer: BPE merges by rank on the hand-written fixture", async () => {
  const tok = await loadClip();
  // lower: l o w e r</w> → (l o) r0 → lo w e r</w> → (e r</w>) r2 beats (lo w) r3 → lo w er</w> → low er</w>
  // café: bytes 63 61 66 c3 a9 → c a f Ã ©</w> → ca (r6) → Ã©</w> (r8) → caf (r9) → cafÃ©</w> (r10)
  // €: bytes e2 82 ac → â Ĥ ¬</w> (0x82 is the 37th non-printable byte: U+0124 "Ĥ") → âĤ (r11) → âĤ¬</w> (r12)
  assert.deepEqual(tok.tokenize("  Lower  low, LOW!! 42 it's café €"), [
    "low",
    "er</w>",
    "low</w>",
    ",</w>",
    "low</w>",
    "!!</w>",
    "4</w>",
    "2</w>",
    "it</w>",
    "'s</w>",
    "cafÃ©</w>",
    "âĤ¬</w>",
  ]);
  assert.deepEqual([tok.sot, tok.eot, tok.pad, tok.vocabSize], [44, 45, 45, 46]);
  const { ids, eot } = tok.encode("  Lower  low, LOW!! 42 it's café €", 16);
  assert.deepEqual([...ids], [44, 34, 33, 32, 22, 32, 38, 24, 23, 35, 36, 41, 43, 45, 45, 45]);
  assert.equal(eot, 13);
});

Deno.test("clipTokenizer: too-long text is cut to T − 2 tokens and still ends with <|endoftext|>", async () => {
  const tok = await loadClip();
  assert.deepEqual(tok.encode("lower low, low", 6), { ids: Int32Array.from([44, 34, 33, 32, 22, 45]), eot: 5 });
});

Deno.test("clipTokenizer: symbols missing from vocab.json become <|endoftext|> (HF's unk); special tokens map directly", async () => {
  const tok = await loadClip();
  // zoo: z o o</w>, no pair has a rank; only "o" is in the vocab
  assert.deepEqual([...tok.encode("zoo", 6).ids], [44, 45, 11, 45, 45, 45]);
  assert.deepEqual([...tok.encode("<|startoftext|>it", 5).ids], [44, 44, 35, 45, 45]);
});

Deno.test("clipTokenizer: bad vocab.json or merges.txt is a TokenizerError naming the file and the problem", async () => {
  const vocab = await Deno.readTextFile(fixture("vocab.json"));
  const fail = (v: string, m: string) => Effect.runPromise(Effect.flip(clipTokenizer(v, m)));
  const notJson = await fail("{", "");
  assert.equal(notJson.file, "vocab.json");
  assert.match(notJson.message, /^clipTokenizer: vocab\.json: not valid JSON/);
  assert.match((await fail("[1, 2]", "")).reason, /expected an object/);
  assert.match((await fail('{"a": -1}', "")).reason, /token "a": expected a non-negative integer id, found -1/);
  assert.match((await fail('{"a": 0}', "")).reason, /must hold <\|startoftext\|> and <\|endoftext\|>/);
  const merges = await fail(vocab, "#version: 0.2\nl o\nlow\n");
  assert.equal(merges.file, "merges.txt");
  assert.match(merges.reason, /^line 3: expected two symbols separated by one space, found "low"$/);
});
