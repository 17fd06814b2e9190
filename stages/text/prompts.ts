/**
 * Prompt text for IVAAN's vision–language alignment (paper notes, "Key Designs" 2):
 *
 *  - fixed (class) prompts  `a {class} nucleus in {organ}` (organ left out where unknown);
 *  - attribute prompts per nucleus and attribute, `a {word} nucleus` (e.g. `a large nucleus`,
 *    `a very dark nucleus`), and each attribute's full word vocabulary — the negatives of L_attr;
 *  - image-level text listing the classes present: `a photo of a {class} nuclei.` per class.
 *
 * The templates are kept literal (no a/an agreement) so every prompt of a family differs only in
 * its word and the text encoder sees one fixed frame.
 */

/** `a {class} nucleus in {organ}`; the organ part is left out when the organ is unknown (""). */
export const classPrompt = (className: string, organ: string): string =>
  organ === "" ? `a ${className} nucleus` : `a ${className} nucleus in ${organ}`;

/** `a {word} nucleus`. */
export const attributePrompt = (word: string): string => `a ${word} nucleus`;

/** `a photo of a {class} nuclei.` for each class present, in the given order, joined by spaces. */
export const imagePrompt = (classesPresent: ReadonlyArray<string>): string =>
  classesPresent.map((c) => `a photo of a ${c} nuclei.`).join(" ");
