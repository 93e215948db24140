/**
 * Logs on stderr: one JSON object a line (`ts`, `level`, `component`, `msg`, fields) for machines,
 * or a readable line for a person at a terminal (`--log-format text`, the default on a TTY).
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

/** How log lines look: `auto` is `text` when stderr is a terminal and `json` otherwise. */
export const LOG_FORMATS = ["auto", "text", "json"] as const;
/** A log format setting. */
export type LogFormat = typeof LOG_FORMATS[number];

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

/** `auto` → `text` on a terminal, `json` otherwise (pipes, files, CI, Chrome's native host). */
export function resolveLogFormat(format: LogFormat, isTerminal = Deno.stderr.isTerminal()): "text" | "json" {
  if (format === "auto") return isTerminal ? "text" : "json";
  return format;
}

const LEVEL_LABEL: Record<LogLevel, string> = { debug: "DEBUG", info: "INFO ", warn: "WARN ", error: "ERROR" };
const LEVEL_COLOR: Record<LogLevel, string> = {
  debug: "\x1b[2m",
  info: "\x1b[36m",
  warn: "\x1b[33m",
  error: "\x1b[31m",
};

function textValue(value: unknown): string {
  if (typeof value === "string") return /[\s"=]/.test(value) || value === "" ? JSON.stringify(value) : value;
  if (value && typeof value === "object" && "message" in value && "name" in value) {
    const error = value as { name: string; message: string; stack?: string };
    return JSON.stringify(`${error.name}: ${error.message}`);
  }
  return JSON.stringify(value);
}

/**
 * One readable line: `12:34:56 INFO  http  listening url=http://127.0.0.1:8765`, with an error's
 * stack on the following lines.
 */
export function formatTextLine(
  record: { ts: string; level: LogLevel; component: string; msg: string; fields?: Record<string, unknown> },
  color = false,
): string {
  const time = record.ts.slice(11, 19);
  const level = color ? `${LEVEL_COLOR[record.level]}${LEVEL_LABEL[record.level]}\x1b[0m` : LEVEL_LABEL[record.level];
  const component = record.component ? ` ${color ? "\x1b[2m" : ""}${record.component}${color ? "\x1b[0m" : ""}` : "";
  const pairs = Object.entries(record.fields ?? {}).filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${textValue(v)}`);
  let line = `${time} ${level}${component}  ${record.msg}${pairs.length ? "  " + pairs.join(" ") : ""}`;
  for (const value of Object.values(record.fields ?? {})) {
    if (value && typeof value === "object" && "stack" in value && typeof value.stack === "string") {
      line += "\n" + value.stack.split("\n").slice(1).map((l) => `    ${l.trim()}`).join("\n");
    }
  }
  return line;
}

/** Creates the root logger. */
export function createLogger(
  options: { level: LogLevel; sink?: LogSink; component?: string; format?: LogFormat },
): Logger {
  const sink = options.sink ?? stderrSink;
  const format = resolveLogFormat(options.format ?? "json", options.sink ? false : undefined);
  const color = format === "text" && !options.sink && !Deno.noColor;
  const threshold = LOG_LEVELS.indexOf(options.level);
  const make = (component: string): Logger => {
    const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
      if (LOG_LEVELS.indexOf(level) < threshold) return;
      const ts = new Date().toISOString();
      if (format === "text") {
        sink(formatTextLine({ ts, level, component, msg, fields }, color));
        return;
      }
      const record: Record<string, unknown> = { ts, level, component, msg };
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
