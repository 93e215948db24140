/**
 * Tokenizers: Hugging Face `tokenizer.json` (BPE, WordPiece, Unigram) with the maintained
 * `@huggingface/tokenizers` library, and the {@link TokenCounter} interface every loaded model
 * (ONNX with its tokenizer, GGUF with llama.cpp's own) answers for token counting.
 *
 * @example
 * ```ts
 * import { loadTokenizer } from "./mod.ts";
 * const tokenizer = await loadTokenizer("/models/org--name");
 * console.log(tokenizer.encode("hello").ids);
 * ```
 * @module
 */
export { HfTokenizer, loadTokenizer, MAX_TOKENIZER_JSON_BYTES, type TokenCounter } from "./tokenizer.ts";
