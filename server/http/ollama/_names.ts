/**
 * Ollama model names (`name:tag`, `namespace/name:tag`, `hf.co/org/name:QUANT`) onto our `org/name`
 * ids and the quantisation of a GGUF file.
 */
import { TabAgentError } from "../../errors/mod.ts";
import { modelIdSchema } from "../../models/mod.ts";

/** What a name resolved to. */
export interface ResolvedName {
  /** Our `org/name` id. */
  id: string;
  /** The quantisation the tag asks for (upper case, e.g. `Q4_K_M`), if any. */
  quant?: string;
  /** The tag as given, `latest` when none. */
  tag: string;
}

const QUANT_PATTERN = /^(i?q\d[a-z0-9_]*|f16|f32|bf16)$/i;
const HUB_PREFIXES = [/^https?:\/\//i, /^(hf\.co|huggingface\.co)\//i];

/** The quantisation in a GGUF file name (`SmolLM2-135M-Instruct.Q4_1.gguf` → `Q4_1`), if it names one. */
export function quantOfFile(path: string): string | undefined {
  const match = /[-_.]((?:i?q\d[a-z0-9_]*)|f16|f32|bf16)\.gguf$/i.exec(path.split("/").pop() ?? "");
  return match ? match[1].toUpperCase() : undefined;
}

/** Splits `base:tag` (the tag is after the last colon that follows the last slash). */
export function splitTag(name: string): { base: string; tag: string } {
  const slash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  if (colon > slash && colon !== -1) return { base: name.slice(0, colon), tag: name.slice(colon + 1) || "latest" };
  return { base: name, tag: "latest" };
}

function tokens(text: string): string[] {
  return text.toLowerCase().split(/[-_]/).filter(Boolean);
}

/**
 * Resolves an Ollama-style name against the models we know (cached first, then the catalog). An
 * `org/name` id resolves to itself (case-insensitively onto a known one); a short `name:tag` matches
 * the repository whose name starts with `name` and contains the tag's words (`smollm2:135m` →
 * `HuggingFaceTB/SmolLM2-135M-Instruct-GGUF`); a tag that is a quantisation selects that file.
 * Returns undefined when nothing matches.
 *
 * @example
 * ```ts
 * resolveModelName("hf.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M", ["Qwen/Qwen2.5-0.5B-Instruct-GGUF"]);
 * // → { id: "Qwen/Qwen2.5-0.5B-Instruct-GGUF", quant: "Q4_K_M", tag: "Q4_K_M" }
 * ```
 */
export function resolveModelName(name: string, known: readonly string[]): ResolvedName | undefined {
  let text = name.trim();
  for (const prefix of HUB_PREFIXES) text = text.replace(prefix, "");
  text = text.replace(/^(hf\.co|huggingface\.co)\//i, "");
  const { base, tag } = splitTag(text);
  const tagWords = tag === "latest" ? [] : tag.split("-").filter(Boolean);
  const quant = tagWords.find((word) => QUANT_PATTERN.test(word))?.toUpperCase();
  const otherWords = tagWords.filter((word) => !QUANT_PATTERN.test(word)).map((w) => w.toLowerCase());

  if (modelIdSchema.safeParse(base).success) {
    const exact = known.find((id) => id === base) ?? known.find((id) => id.toLowerCase() === base.toLowerCase());
    // Tags other than a quantisation mean nothing for a Hub id: `org/name:latest` is the id itself.
    return { id: exact ?? base, quant, tag };
  }
  if (base.includes("/") || !/^[A-Za-z0-9._-]{1,96}$/.test(base)) return undefined;
  const wanted = tokens(base);
  for (const id of known) {
    const repo = tokens(id.split("/")[1] ?? "");
    const startsWith = wanted.every((word, i) => repo[i] === word);
    if (startsWith && otherWords.every((word) => repo.includes(word))) return { id, quant, tag };
  }
  return undefined;
}

/** Ollama's "model not found" error, naming the command that gets the model. */
export function modelNotFound(name: string, id?: string): TabAgentError {
  const how = id
    ? `tabagent models pull ${id}, or POST /api/pull {"model": "${id}"}`
    : "tabagent models pull <org>/<name>, or POST /api/pull with a Hugging Face id";
  return new TabAgentError("not_found", `model "${name}" not found, try pulling it first: ${how}`, { model: name });
}

/** The name `/api/tags` and `/api/ps` list for a model: its id, tagged with the file's quantisation. */
export function listedName(id: string, file: string): string {
  return `${id}:${quantOfFile(file) ?? "latest"}`;
}
