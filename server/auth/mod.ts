/**
 * The API token: generated at first start, kept with mode 0600 in the data dir, and required as
 * `Authorization: Bearer <token>` by the HTTP API (the Jupyter model).
 *
 * @example
 * ```ts
 * const token = await loadOrCreateToken("/home/me/.local/share/TabAgent/api_token");
 * ```
 * @module
 */
import { TabAgentError } from "../errors/mod.ts";

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{32,128}$/;

function generateToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function parentOf(path: string): string {
  const cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return cut > 0 ? path.slice(0, cut) : ".";
}

/**
 * Reads the token at `path`, creating it (and its folder, mode 0700) if absent. A file that does
 * not hold a well-formed token is refused rather than silently replaced.
 */
export async function loadOrCreateToken(path: string): Promise<string> {
  try {
    const text = (await Deno.readTextFile(path)).trim();
    if (!TOKEN_PATTERN.test(text)) {
      throw new TabAgentError(
        "config_invalid",
        `The API token file ${path} is malformed; delete it to get a new token`,
      );
    }
    if (Deno.build.os !== "windows") {
      const info = await Deno.stat(path);
      // Tighten permissions if a user copied the file around; the token is a password.
      if (info.mode !== null && (info.mode & 0o077) !== 0) await Deno.chmod(path, 0o600);
    }
    return text;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  await Deno.mkdir(parentOf(path), { recursive: true, mode: 0o700 });
  const token = generateToken();
  const temp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(temp, token + "\n", { mode: 0o600, createNew: true });
  try {
    // Link rather than rename so two first starts racing end with one token, not two.
    await Deno.link(temp, path);
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  } finally {
    await Deno.remove(temp);
  }
  return (await Deno.readTextFile(path)).trim();
}

/**
 * Constant-time comparison, so the token cannot be guessed byte by byte from timings. It compares
 * UTF-16 code units in place: every authenticated request runs it, and encoding both strings first
 * allocated two buffers a request for nothing (equal strings have equal code units).
 */
export function tokensEqual(given: string, expected: string): boolean {
  let diff = given.length ^ expected.length;
  // Past the end of `given`, charCodeAt is NaN, which `| 0` turns into 0: the loop never branches on it.
  for (let i = 0; i < expected.length; i++) diff |= (given.charCodeAt(i) | 0) ^ expected.charCodeAt(i);
  return diff === 0;
}
