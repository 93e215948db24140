import assert from "node:assert/strict";
import { parseCommandLine, UsageError } from "./mod.ts";

Deno.test("no arguments means serve with defaults", () => {
  assert.deepEqual(parseCommandLine([]), { kind: "serve", flags: {} });
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
  assert.deepEqual(command.flags.mode, "http");
  assert.deepEqual(command.flags.port, "9000");
  assert.deepEqual(command.flags.noMl, true);
  assert.deepEqual(command.flags.origins, ["http://a:1", "http://b:2"]);
});

Deno.test("Chrome's origin argument starts the native host, with the launcher's flags after it", () => {
  const bare = parseCommandLine(["chrome-extension://abc/"]);
  assert.deepEqual(bare.kind === "serve" && bare.flags.mode, "native");
  const launched = parseCommandLine(["chrome-extension://abc/", "--parent-window=0", "--data-dir", "/d"]);
  if (launched.kind !== "serve") throw new Error(launched.kind);
  assert.deepEqual([launched.flags.mode, launched.flags.dataDir], ["native", "/d"]);
});

Deno.test("unknown options, stray positionals and commands are usage errors", () => {
  assert.throws(() => parseCommandLine(["serve", "--bogus"]), UsageError);
  assert.throws(() => parseCommandLine(["serve", "extra"]), UsageError);
  assert.throws(() => parseCommandLine(["srve"]), /Did you mean 'serve'/);
  assert.throws(() => parseCommandLine(["serve", "--port"]), UsageError);
});

Deno.test("help and version", () => {
  assert.deepEqual(parseCommandLine(["--version"]), { kind: "version" });
  assert.deepEqual(parseCommandLine(["help", "serve"]), { kind: "help", topic: "serve" });
  assert.deepEqual(parseCommandLine(["token", "--help"]), { kind: "help", topic: "token" });
});

Deno.test("--llama-threads is read by serve and doctor", () => {
  const serve = parseCommandLine(["serve", "--llama-threads", "1"]);
  assert.deepEqual(serve.kind === "serve" && serve.flags.llamaThreads, "1");
  const doctor = parseCommandLine(["doctor", "--llama-threads", "2"]);
  assert.deepEqual(doctor.kind === "doctor" && doctor.flags.llamaThreads, "2");
});
