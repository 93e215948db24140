/**
 * Structured logs: one JSON object a line on stderr (`ts`, `level`, `component`, `msg`, fields).
 * stdout is never written, because in `native` mode it belongs to Chrome's native messaging.
 *
 * @example
 * ```ts
 * const log = createLogger({ level: "info" }).child("http");
 * log.info("listening", { url: "http://127.0.0.1:8765" });
 * ```
 * @module
 */

/** Log levels, least to most severe. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Where log lines go; stderr unless a test captures them. */
export type LogSink = (line: string) => void;

/** A logger bound to one component. */
export interface Logger {
  readonly level: LogLevel;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** True when `level` would be written; lets hot paths skip building fields. */
  enabled(level: LogLevel): boolean;
  /** A logger for a sub-component that shares level and sink. */
  child(component: string): Logger;
}

const encoder = new TextEncoder();

function stderrSink(line: string): void {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

function serializeError(value: unknown): unknown {
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: value.message };
    if ("code" in value) out.code = (value as { code: unknown }).code;
    if (value.stack) out.stack = value.stack;
    if (value.cause !== undefined) out.cause = serializeError(value.cause);
    return out;
  }
  return value;
}

/** Creates the root logger. */
export function createLogger(options: { level: LogLevel; sink?: LogSink; component?: string }): Logger {
  const sink = options.sink ?? stderrSink;
  const threshold = LOG_LEVELS.indexOf(options.level);
  const make = (component: string): Logger => {
    const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
      if (LOG_LEVELS.indexOf(level) < threshold) return;
      const record: Record<string, unknown> = { ts: new Date().toISOString(), level, component, msg };
      if (fields) {
        for (const [key, value] of Object.entries(fields)) record[key] = serializeError(value);
      }
      sink(JSON.stringify(record));
    };
    return {
      level: options.level,
      debug: (msg, fields) => write("debug", msg, fields),
      info: (msg, fields) => write("info", msg, fields),
      warn: (msg, fields) => write("warn", msg, fields),
      error: (msg, fields) => write("error", msg, fields),
      enabled: (level) => LOG_LEVELS.indexOf(level) >= threshold,
      child: (sub) => make(component ? `${component}.${sub}` : sub),
    };
  };
  return make(options.component ?? "");
}
