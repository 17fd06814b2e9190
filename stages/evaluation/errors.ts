/** Errors of the evaluation stages: bad input files, named with what was expected. */
import { Data } from "effect";

/** An input file that cannot be evaluated: unreadable, wrong shape, wrong values. */
export class InvalidInput extends Data.TaggedError("InvalidInput")<{ readonly file: string; readonly reason: string }> {
  override get message(): string {
    return `${this.file}: ${this.reason}`;
  }
}
