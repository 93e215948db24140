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

Deno.test("Chrome's origin argument starts the native host, with the launcher's flags after it", () => {
  const bare = parseCommandLine(["chrome-extension://abc/"]);
  assertEquals(bare.kind === "serve" && bare.flags.mode, "native");
  const launched = parseCommandLine(["chrome-extension://abc/", "--parent-window=0", "--data-dir", "/d"]);
  if (launched.kind !== "serve") throw new Error(launched.kind);
  assertEquals([launched.flags.mode, launched.flags.dataDir], ["native", "/d"]);
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
