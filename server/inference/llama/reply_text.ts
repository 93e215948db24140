/**
 * A reply's text from its tokens as they are sampled, for the native decode loop (decode_loop.ts):
 * what is safe to show (no half of a UTF-8 character, nothing that may be the start of a stop
 * sequence) and where a stop sequence ends the reply. node-llama-cpp's chat generator does the same
 * for the replies it generates; the tests hold both to the same text.
 * @module
 */
import type { ChatWrapperGeneratedContextState, LlamaModel, Token, Tokenizer } from "node-llama-cpp";

/** Tokens before the undecided ones, given to the tokenizer so that spaces at word starts come out right. */
const CONTEXT_TOKENS = 8;

/**
 * The stop sequences (text) of the chat wrapper's triggers, or undefined when a trigger is neither
 * an end-of-generation token (the loop stops there itself) nor plain text.
 */
export function textStopTriggers(
  model: LlamaModel,
  triggers: ChatWrapperGeneratedContextState["stopGenerationTriggers"],
  tokenizer: Tokenizer = model.tokenizer,
): string[] | undefined {
  const stops: string[] = [];
  for (const trigger of triggers) {
    const tokens = trigger.tokenize(tokenizer);
    if (tokens.length > 0 && model.isEogToken(tokens[0])) continue;
    if (!trigger.values.every((value) => typeof value === "string")) return undefined;
    const text = trigger.toString();
    if (text) stops.push(text);
  }
  return stops;
}

/**
 * @example
 * ```ts
 * const reply = new ReplyText(model, ["\n\n"]);
 * for (const token of tokens) {
 *   const { text, stopped } = reply.push(token);
 *   process(text);
 *   if (stopped) break;
 * }
 * process(reply.finish());
 * ```
 */
export class ReplyText {
  readonly #model: LlamaModel;
  readonly #stops: string[];
  readonly #tokens: Token[] = [];
  /** Tokens whose text is settled (ends on a whole character). */
  #settledTokens = 0;
  #settled = "";
  #shown = 0;
  #stopped = false;

  constructor(model: LlamaModel, stops: readonly string[]) {
    this.#model = model;
    this.#stops = stops.filter((stop) => stop.length > 0);
  }

  /** The reply's text: up to the stop sequence when one ended it. */
  get text(): string {
    return this.#settled;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Adds a sampled token (an end-of-generation token adds nothing); returns the new text safe to show. */
  push(token: Token): { text: string; stopped: boolean } {
    if (this.#stopped || this.#model.isEogToken(token)) return { text: "", stopped: this.#stopped };
    this.#tokens.push(token);
    const pending = this.#tokens.slice(this.#settledTokens);
    const context = this.#tokens.slice(Math.max(0, this.#settledTokens - CONTEXT_TOKENS), this.#settledTokens);
    const text = this.#model.detokenize(pending, false, context);
    if (!text.endsWith("\uFFFD")) {
      this.#settled += text;
      this.#settledTokens = this.#tokens.length;
    }
    const stop = this.#firstStop();
    if (stop !== undefined) {
      this.#settled = this.#settled.slice(0, stop);
      this.#stopped = true;
      return { text: this.#show(this.#settled.length), stopped: true };
    }
    return { text: this.#show(this.#settled.length - this.#possibleStopStart()), stopped: false };
  }

  /** The text still withheld (the reply ended without completing a stop sequence). */
  finish(): string {
    return this.#show(this.#settled.length);
  }

  #show(upTo: number): string {
    if (upTo <= this.#shown) return "";
    const text = this.#settled.slice(this.#shown, upTo);
    this.#shown = upTo;
    return text;
  }

  /** Where the first stop sequence begins in the settled text, if one is there. */
  #firstStop(): number | undefined {
    let first: number | undefined;
    for (const stop of this.#stops) {
      const at = this.#settled.indexOf(stop, Math.max(0, this.#shown - stop.length + 1));
      if (at >= 0 && (first === undefined || at < first)) first = at;
    }
    return first;
  }

  /** Length of the longest end of the settled text that begins some stop sequence (withheld). */
  #possibleStopStart(): number {
    let longest = 0;
    for (const stop of this.#stops) {
      for (let length = Math.min(stop.length - 1, this.#settled.length); length > longest; length--) {
        if (this.#settled.endsWith(stop.slice(0, length))) {
          longest = length;
          break;
        }
      }
    }
    return longest;
  }
}
