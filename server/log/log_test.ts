import assert from "node:assert/strict";
import { createLogger, formatTextLine, resolveLogFormat } from "./mod.ts";

Deno.test("auto is text on a terminal and JSON otherwise; explicit formats win", () => {
  assert.equal(resolveLogFormat("auto", true), "text");
  assert.equal(resolveLogFormat("auto", false), "json");
  assert.equal(resolveLogFormat("json", true), "json");
  assert.equal(resolveLogFormat("text", false), "text");
});

Deno.test("text lines are readable: time, level, component, message, key=value", () => {
  const line = formatTextLine({
    ts: "2026-11-29T23:04:05.678Z",
    level: "warn",
    component: "http",
    msg: "slow request",
    fields: { path: "/v1/models", ms: 12.5, note: "two words" },
  });
  assert.equal(line, '23:04:05 WARN  http  slow request  path=/v1/models ms=12.5 note="two words"');
  const error = new Error("boom");
  assert.match(
    formatTextLine({ ts: "2026-11-29T23:04:05Z", level: "error", component: "", msg: "x", fields: { error } }),
    /error="Error: boom"\n {4}at /,
  );
});

Deno.test("the logger writes JSON or text lines to its sink", () => {
  const lines: string[] = [];
  createLogger({ level: "info", sink: (l) => lines.push(l), format: "text" }).child("a").info("hello", { n: 1 });
  createLogger({ level: "info", sink: (l) => lines.push(l) }).child("a").info("hello", { n: 1 });
  assert.match(lines[0], /^\d\d:\d\d:\d\d INFO {2}a {2}hello {2}n=1$/);
  assert.equal(JSON.parse(lines[1]).msg, "hello");
});
