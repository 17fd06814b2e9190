import assert from "node:assert/strict";
import { attributePrompt, classPrompt, imagePrompt } from "./prompts.ts";

Deno.test("class, attribute and image prompts follow the paper's templates", () => {
  assert.equal(classPrompt("neoplastic", "breast"), "a neoplastic nucleus in breast");
  assert.equal(classPrompt("inflammatory", ""), "a inflammatory nucleus");
  assert.equal(attributePrompt("very dark"), "a very dark nucleus");
  assert.equal(
    imagePrompt(["neoplastic", "connective"]),
    "a photo of a neoplastic nuclei. a photo of a connective nuclei.",
  );
  assert.equal(imagePrompt([]), "");
});
