/**
 * The Hugging Face token `tabagent login` stores: one line in `<data-dir>/hf_token`, mode 0600,
 * never logged. `HF_TOKEN` in the environment wins over it.
 * @module
 */
import { TabAgentError } from "../errors/mod.ts";

/** File name of the stored Hub token inside the data dir. */
export const HUB_TOKEN_FILE = "hf_token";

const TOKEN_PATTERN = /^[\x21-\x7e]{8,512}$/;

/** True when `token` looks like a token (printable, no spaces, 8–512 characters). */
export function isPlausibleHubToken(token: string): boolean {
  return TOKEN_PATTERN.test(token);
}

/** Reads the stored token, or undefined when there is none. */
export async function readHubToken(path: string): Promise<string | undefined> {
  try {
    const text = (await Deno.readTextFile(path)).trim();
    return isPlausibleHubToken(text) ? text : undefined;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** Stores `token` with mode 0600 (replacing any earlier one atomically). */
export async function storeHubToken(path: string, token: string): Promise<void> {
  const trimmed = token.trim();
  if (!isPlausibleHubToken(trimmed)) {
    throw new TabAgentError("validation_failed", "That does not look like a Hugging Face token (expected hf_…)");
  }
  const dir = path.slice(0, Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")));
  if (dir) await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(temp, trimmed + "\n", { mode: 0o600, createNew: true });
  if (Deno.build.os !== "windows") await Deno.chmod(temp, 0o600); // umask cannot widen it, but be explicit
  await Deno.rename(temp, path);
}

/** Removes the stored token; true when there was one. */
export async function removeHubToken(path: string): Promise<boolean> {
  try {
    await Deno.remove(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
