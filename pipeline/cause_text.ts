/**
 * A caught library error as one line, for the reason inside one of our errors: V8's JSON errors quote
 * the input (line breaks included), libvips stacks one line per failing step and repeats them
 * (`VipsJpeg: premature end of JPEG image\nVipsJpeg: …\nVipsJpeg: premature end …`), some ending
 * in a bare colon. Lines are trimmed, repeats dropped, and joined with "; ".
 *
 * @example
 * ```ts
 * import { causeText } from "./cause_text.ts";
 * causeText(new Error("Input file has corrupt header: VipsJpeg: bad\nVipsJpeg: bad\n")); // "Input file has corrupt header: VipsJpeg: bad"
 * ```
 */
export const causeText = (e: unknown): string => {
  const text = e instanceof Error ? e.message : String(e);
  const lines = text.split(/\r?\n/).map((l) => l.trim().replace(/:$/, "")).filter((l) => l !== "");
  return [...new Set(lines)].join("; ");
};
