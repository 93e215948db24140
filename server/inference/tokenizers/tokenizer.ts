/** Hugging Face `tokenizer.json` tokenizers (BPE, WordPiece, Unigram) through `@huggingface/tokenizers`. */
import { Tokenizer } from "@huggingface/tokenizers";
import { TabAgentError } from "../../errors/mod.ts";

/** Anything that can count tokens: a Hugging Face tokenizer or a loaded llama.cpp model. */
export interface TokenCounter {
  countTokens(text: string): number;
}

/** Largest tokenizer.json accepted (bytes); real ones are a few MB, the biggest ~30 MB. */
export const MAX_TOKENIZER_JSON_BYTES = 64 * 1024 * 1024;

/** A loaded tokenizer. */
export class HfTokenizer implements TokenCounter {
  readonly #tokenizer: Tokenizer;
  /** The model type inside tokenizer.json (BPE, WordPiece, Unigram, …). */
  readonly kind: string;

  constructor(tokenizerJson: Record<string, unknown>, config: Record<string, unknown> = {}) {
    this.#tokenizer = new Tokenizer(tokenizerJson, config);
    this.kind = String((tokenizerJson.model as { type?: string } | undefined)?.type ?? "unknown");
  }

  /** Token ids and attention mask for `text`; `addSpecialTokens` applies the post-processor. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): { ids: number[]; attentionMask: number[] } {
    const encoded = this.#tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true });
    return { ids: encoded.ids, attentionMask: encoded.attention_mask };
  }

  /** Text for `ids`. */
  decode(ids: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.#tokenizer.decode(ids, { skip_special_tokens: options.skipSpecialTokens ?? true });
  }

  /** Number of tokens `text` becomes, special tokens excluded. */
  countTokens(text: string): number {
    return this.#tokenizer.encode(text, { add_special_tokens: false }).ids.length;
  }

  /** The id of a token string, if it is in the vocabulary. */
  tokenToId(token: string): number | undefined {
    return this.#tokenizer.token_to_id(token);
  }
}

async function readJson(path: string, required: boolean): Promise<Record<string, unknown> | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !required) return undefined;
    if (error instanceof Deno.errors.NotFound) {
      throw new TabAgentError("not_found", `No tokenizer at ${path}`, { path }, { cause: error });
    }
    throw error;
  }
  if (info.size > MAX_TOKENIZER_JSON_BYTES) {
    throw new TabAgentError("payload_too_large", `${path} is larger than ${MAX_TOKENIZER_JSON_BYTES} bytes`);
  }
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new TabAgentError("storage_corrupt", `${path} is not valid JSON`, { path }, { cause: error });
    }
    throw error;
  }
}

/**
 * Loads `tokenizer.json` (and `tokenizer_config.json` beside it, when present) from a model folder.
 *
 * @example
 * ```ts
 * const tokenizer = await loadTokenizer("/models/org--name");
 * tokenizer.countTokens("hello world");
 * ```
 */
export async function loadTokenizer(dir: string): Promise<HfTokenizer> {
  const json = (await readJson(`${dir}/tokenizer.json`, true))!;
  const config = await readJson(`${dir}/tokenizer_config.json`, false);
  try {
    return new HfTokenizer(json, config ?? {});
  } catch (error) {
    throw new TabAgentError("storage_corrupt", `${dir}/tokenizer.json could not be loaded`, {}, { cause: error });
  }
}
