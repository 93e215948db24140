import { deepEqual as assertEquals, throws } from "node:assert/strict";
import { parseCommandLine, UsageError } from "./mod.ts";

Deno.test("no arguments means serve with defaults", () => {
  assertEquals(parseCommandLine([]), { kind: "serve", flags: {} });
});

Deno.test("serve flags are read", () => {
  const command = parseCommandLine([
    "serve",
    "--mode",
    "http",
    "-p",
    "9000",
    "--no-ml",
    "--origin",
    "http://a:1",
    "--origin",
    "http://b:2",
  ]);
  if (command.kind !== "serve") throw new Error(command.kind);
  assertEquals(command.flags.mode, "http");
  assertEquals(command.flags.port, "9000");
  assertEquals(command.flags.noMl, true);
  assertEquals(command.flags.origins, ["http://a:1", "http://b:2"]);
});

Deno.test("Chrome's origin argument starts the native host", () => {
  assertEquals(parseCommandLine(["chrome-extension://abc/"]), { kind: "serve", flags: { mode: "native" } });
});

Deno.test("unknown options, stray positionals and commands are usage errors", () => {
  throws(() => parseCommandLine(["serve", "--bogus"]), UsageError);
  throws(() => parseCommandLine(["serve", "extra"]), UsageError);
  throws(() => parseCommandLine(["srve"]), /Did you mean 'serve'/);
  throws(() => parseCommandLine(["serve", "--port"]), UsageError);
});

Deno.test("help and version", () => {
  assertEquals(parseCommandLine(["--version"]), { kind: "version" });
  assertEquals(parseCommandLine(["help", "serve"]), { kind: "help", topic: "serve" });
  assertEquals(parseCommandLine(["token", "--help"]), { kind: "help", topic: "token" });
});
