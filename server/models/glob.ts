/**
 * Glob patterns over '/'-separated repository paths (`*`, `**`, `?`), matched in time linear in
 * the path: the pattern is compiled once into a small automaton whose set of live states is
 * advanced one character at a time. A regular expression with a backtracking group per `*` took
 * over a minute on the event loop for 40 `*` and a 60-character path; here every pattern costs at
 * most `path.length × states` steps, and patterns are bounded in length.
 *
 * - `*` matches any run of characters within one path segment (no `/`);
 * - `?` matches one character other than `/`;
 * - `**` matches any run of characters, `/` included; `**` followed by `/` matches zero or more
 *   whole folders (`**\/*.onnx` matches `model.onnx` and `onnx/model.onnx`, not `xmodel.onnx`
 *   through the slash).
 *
 * @example
 * ```ts
 * matchesAny("onnx/model.onnx", ["**\/*.onnx"]); // true
 * compileGlob("*.gguf").test("a/b.gguf"); // false: `*` stays in one segment
 * ```
 * @module
 */
import { TabAgentError } from "../errors/mod.ts";

/** Longest glob pattern accepted (characters): the HTTP API's own limit on a `files` entry. */
export const MAX_GLOB_PATTERN_LENGTH = 256;

/** What one automaton state does with the next character. */
const enum Step {
  /** Consume exactly `char`, go to the next state. */
  Literal,
  /** Consume one character other than '/', go to the next state. */
  One,
  /** Loop on characters other than '/'; may leave to the next state without consuming. */
  Segment,
  /** Loop on any character; may leave to the next state without consuming. */
  Any,
  /** Start of `**\/`: leave to the state after the folder run without consuming, or consume any character and go on. */
  FoldersStart,
  /** Inside `**\/`: loop on any character; consume '/' to leave (to the state after the run). */
  FoldersRest,
}

interface State {
  step: Step;
  char: string;
}

/** A compiled glob pattern. */
export interface Glob {
  readonly pattern: string;
  /** True when the whole of `path` matches. */
  test(path: string): boolean;
}

function parse(pattern: string): State[] {
  const states: State[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*" && pattern[i + 1] === "*") {
      while (pattern[i + 1] === "*") i++; // `***` is `**`
      if (pattern[i + 1] === "/") {
        i++;
        states.push({ step: Step.FoldersStart, char: "" }, { step: Step.FoldersRest, char: "" });
      } else states.push({ step: Step.Any, char: "" });
    } else if (c === "*") {
      states.push({ step: Step.Segment, char: "" });
    } else if (c === "?") states.push({ step: Step.One, char: "" });
    else states.push({ step: Step.Literal, char: c });
  }
  return states;
}

/** Follows every move that consumes nothing, from the states set in `live` (all moves go forward). */
function close(states: State[], live: Uint8Array): void {
  for (let s = 0; s < states.length; s++) {
    if (!live[s]) continue;
    const step = states[s].step;
    if (step === Step.Segment || step === Step.Any) live[s + 1] = 1;
    else if (step === Step.FoldersStart) live[s + 2] = 1;
  }
}

/**
 * Compiles `pattern`; throws `bad_request` when it is longer than {@link MAX_GLOB_PATTERN_LENGTH}.
 */
export function compileGlob(pattern: string): Glob {
  if (pattern.length > MAX_GLOB_PATTERN_LENGTH) {
    throw new TabAgentError(
      "bad_request",
      `A file pattern may be at most ${MAX_GLOB_PATTERN_LENGTH} characters long`,
      { limit: MAX_GLOB_PATTERN_LENGTH },
    );
  }
  const states = parse(pattern);
  const end = states.length;
  const plain = !pattern.includes("*") && !pattern.includes("?");
  return {
    pattern,
    test(path: string): boolean {
      if (plain) return path === pattern;
      let live = new Uint8Array(end + 1);
      let next = new Uint8Array(end + 1);
      live[0] = 1;
      close(states, live);
      for (let i = 0; i < path.length; i++) {
        const c = path[i];
        next.fill(0);
        let any = false;
        for (let s = 0; s < end; s++) {
          if (!live[s]) continue;
          const { step, char } = states[s];
          switch (step) {
            case Step.Literal:
              if (c === char) next[s + 1] = 1;
              break;
            case Step.One:
              if (c !== "/") next[s + 1] = 1;
              break;
            case Step.Segment:
              if (c !== "/") next[s] = 1;
              break;
            case Step.Any:
              next[s] = 1;
              break;
            case Step.FoldersStart:
              if (c === "/") next[s + 2] = 1;
              else next[s + 1] = 1;
              break;
            case Step.FoldersRest:
              if (c === "/") next[s + 1] = 1;
              next[s] = 1;
              break;
          }
        }
        for (let s = 0; s <= end; s++) {
          if (next[s]) {
            any = true;
            break;
          }
        }
        if (!any) return false;
        close(states, next);
        [live, next] = [next, live];
      }
      return live[end] === 1;
    },
  };
}

/** True when `path` equals one of `patterns` or matches it as a glob. */
export function matchesAny(path: string, patterns: readonly string[]): boolean {
  for (const pattern of patterns) {
    if (pattern === path || compileGlob(pattern).test(path)) return true;
  }
  return false;
}
