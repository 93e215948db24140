/** The folders the settings name (data dir, database dir), created and checked writable at start. */
import { TabAgentError } from "../errors/mod.ts";

/**
 * Creates `dir` (mode 0700) and proves it writable with a probe file; a folder that is not
 * writable is `config_invalid`, naming `what` it is and the `flags` that choose another.
 *
 * @example
 * ```ts
 * await ensureWritableDir(config.dataDir, { what: "data dir", flags: "--data-dir" });
 * ```
 */
export async function ensureWritableDir(dir: string, options: { what: string; flags: string }): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const probe = `${dir}/.write-probe-${crypto.randomUUID()}`;
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  } catch (error) {
    throw new TabAgentError(
      "config_invalid",
      `The ${options.what} ${dir} is not writable (${error instanceof Error ? error.message : error}); ` +
        `choose another with ${options.flags}`,
      { path: dir },
      { cause: error },
    );
  }
}
