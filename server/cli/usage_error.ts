/**
 * A command-line error: printed as one line, exit code 2. In its own file because every parser
 * (parse.ts, models_args.ts) raises it and parse.ts imports the others.
 * @module
 */

/** A command-line error: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}
