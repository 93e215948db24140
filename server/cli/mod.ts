/**
 * The `tabagent` command line: parsing (node:util `parseArgs`, strict) and help texts. Bad input
 * raises {@link UsageError}, which `main.ts` prints as one line with exit code 2.
 *
 * @example
 * ```ts
 * const command = parseCommandLine(["serve", "--port", "9000"]);
 * ```
 * @module
 */
export { type Command, COMMANDS, parseCommandLine } from "./parse.ts";
export { UsageError } from "./usage_error.ts";
export { helpText } from "./help.ts";
