/** Ollama's `keep_alive`: how long a model stays loaded after its last request. */
import { TabAgentError } from "../../errors/mod.ts";

/** Five minutes, as in Ollama. */
export const DEFAULT_KEEP_ALIVE_MS = 5 * 60_000;

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** What a schema says of a keep_alive string that does not match {@link KEEP_ALIVE_PATTERN}. */
export const KEEP_ALIVE_MESSAGE = "not a duration like 5m, 30s or -1";

/**
 * The strings {@link parseKeepAlive} takes, as a `pattern` for request schemas: a negative value,
 * seconds, or a duration like "1h30m". (It also trims other white space; the schema names spaces
 * and tabs only, so a client generating from it never sends what the server refuses.)
 */
export const KEEP_ALIVE_PATTERN = /^[ \t]*(?:-.*|\d+(?:\.\d+)?|(?:\d+(?:\.\d+)?(?:ms|s|m|h))+)[ \t]*$/;

/**
 * Parses a keep_alive value: a number of seconds, or a duration like "10m", "1h30m", "500ms";
 * 0 unloads right after the request, a negative value keeps the model loaded until shutdown.
 * Returns milliseconds, `Infinity` for "forever".
 */
export function parseKeepAlive(value: string | number | undefined, fallbackMs = DEFAULT_KEEP_ALIVE_MS): number {
  if (value === undefined) return fallbackMs;
  if (typeof value === "number") return value < 0 ? Infinity : value * 1000;
  const text = value.trim();
  if (/^-/.test(text)) return Infinity;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join("") !== text) {
    throw new TabAgentError("validation_failed", `keep_alive '${value}' is not a duration like 5m, 30s or -1`, {
      errors: [{ field: "keep_alive", message: "not a duration" }],
    });
  }
  return parts.reduce((ms, [, amount, unit]) => ms + Number(amount) * UNITS[unit], 0);
}
