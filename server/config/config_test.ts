import { deepEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { TabAgentError } from "../errors/mod.ts";
import { configFromEnv, defaultDataDir, EXTENSION_ID, isLoopbackHost, resolveConfig } from "./mod.ts";

const linux = { platform: "linux" as const, environment: { HOME: "/home/ann" } };

Deno.test("defaults put data under the platform's data dir", () => {
  const config = resolveConfig({}, {}, linux);
  assertEquals(config.host, "127.0.0.1");
  assertEquals(config.port, 8765);
  assertEquals(config.mode, "all");
  assertEquals(config.dataDir, "/home/ann/.local/share/TabAgent");
  assertEquals(config.dbPath, "/home/ann/.local/share/TabAgent/tabagent_db");
  assertEquals(config.modelCachePath, "/home/ann/.local/share/TabAgent/models");
  assertEquals(config.allowedOrigins, [`chrome-extension://${EXTENSION_ID}`]);
});

Deno.test("each platform has its own data dir", () => {
  assertEquals(defaultDataDir("darwin", { HOME: "/Users/ann" }), "/Users/ann/Library/Application Support/TabAgent");
  assertEquals(
    defaultDataDir("windows", { APPDATA: "C:\\Users\\ann\\AppData\\Roaming" }),
    "C:\\Users\\ann\\AppData\\Roaming\\TabAgent",
  );
  assertEquals(defaultDataDir("linux", { HOME: "/h", XDG_DATA_HOME: "/x" }), "/x/TabAgent");
});

Deno.test("flags win over the environment, which wins over defaults", () => {
  const env = configFromEnv({ TABAGENT_PORT: "9000", TABAGENT_MODE: "http", TABAGENT_LOG_LEVEL: "debug" });
  const config = resolveConfig({ port: "9100" }, env, linux);
  assertEquals(config.port, 9100);
  assertEquals(config.mode, "http");
  assertEquals(config.logLevel, "debug");
});

Deno.test("environment lists and booleans are read", () => {
  const env = configFromEnv({
    TABAGENT_ORIGINS: "http://localhost:3000, http://localhost:5173",
    TABAGENT_NO_ML: "1",
    TABAGENT_NO_AUTH: "true",
  });
  const config = resolveConfig({}, env, linux);
  assertEquals(config.allowedOrigins.slice(1), ["http://localhost:3000", "http://localhost:5173"]);
  assertEquals(config.ml, false);
  assertEquals(config.auth, false);
});

Deno.test("a bad value is refused naming the setting", () => {
  assertThrows(() => resolveConfig({ port: "70000" }, {}, linux), (error: unknown) => {
    assertEquals(error instanceof TabAgentError && error.code, "validation_failed");
    assertEquals(((error as TabAgentError).extensions.errors as { field: string }[])[0].field, "port");
    return true;
  });
  assertThrows(() => resolveConfig({ mode: "turbo" }, {}, linux), /mode/);
  assertThrows(() => resolveConfig({ origins: ["not an origin"] }, {}, linux), /allowedOrigins/);
});

Deno.test("--no-auth is refused unless bound to loopback", () => {
  assertThrows(() => resolveConfig({ noAuth: true, host: "0.0.0.0" }, {}, linux), /loopback/);
  assertEquals(resolveConfig({ noAuth: true, host: "::1" }, {}, linux).auth, false);
});

Deno.test("--allow-anonymous-local is off by default, read from env, and refused off loopback", () => {
  assertEquals(resolveConfig({}, {}, linux).allowAnonymousLocal, false);
  const env = configFromEnv({ TABAGENT_ALLOW_ANONYMOUS_LOCAL: "1" });
  assertEquals(resolveConfig({}, env, linux).allowAnonymousLocal, true);
  assertThrows(() => resolveConfig({ allowAnonymousLocal: true, host: "0.0.0.0" }, {}, linux), /loopback/);
});

Deno.test("loopback names are recognised", () => {
  for (const host of ["localhost", "127.0.0.1", "127.3.2.1", "::1", "[::1]", "app.localhost"]) {
    assertEquals(isLoopbackHost(host), true, host);
  }
  for (const host of ["0.0.0.0", "192.168.1.2", "evil.com", "localhost.evil.com"]) {
    assertEquals(isLoopbackHost(host), false, host);
  }
});

Deno.test("ML settings: local workers by default, remote ones replace them unless asked for", () => {
  const base = { dataDir: "/tmp/tabagent-config-test" };
  const plain = resolveConfig(base, {});
  assertEquals([plain.mlWorkers, plain.mlRemoteWorkers, plain.mlDispatch], [1, [], "least-loaded"]);
  const remote = resolveConfig({ ...base, mlRemoteWorkers: ["10.0.0.2:50051"] }, {});
  assertEquals([remote.mlWorkers, remote.mlRemoteWorkers], [0, ["10.0.0.2:50051"]]);
  const both = resolveConfig({ ...base, mlRemoteWorkers: ["gpu:50051"] }, {
    mlWorkers: "2",
    mlDispatch: "round-robin",
  });
  assertEquals([both.mlWorkers, both.mlDispatch], [2, "round-robin"]);
  assertThrows(() => resolveConfig({ ...base, mlRemoteWorkers: ["no-port"] }, {}));
  assertThrows(() => resolveConfig({ ...base, mlWorkers: "-1" }, {}));
});

Deno.test("config: --parallel and TABAGENT_PROMPT_CACHE size the chat models' sequences; bad values are refused", () => {
  const config = resolveConfig({ parallel: "2" }, configFromEnv({ TABAGENT_PROMPT_CACHE: "0" }), linux);
  assertEquals(config.parallel, 2);
  assertEquals(config.promptCache, 0);
  assertEquals(resolveConfig({}, {}, linux).parallel, undefined);
  assertThrows(() => resolveConfig({ parallel: "0" }, {}, linux));
  assertThrows(() => resolveConfig({}, configFromEnv({ TABAGENT_PROMPT_CACHE: "-1" }), linux));
});

Deno.test("config: --llama-addon and TABAGENT_LLAMA_ADDON name a local llama.cpp binding; other files are refused", () => {
  const env = configFromEnv({ TABAGENT_LLAMA_ADDON: "/env/llama-addon.node" });
  assertEquals(resolveConfig({}, env, linux).llamaAddon, "/env/llama-addon.node");
  assertEquals(
    resolveConfig({ llamaAddon: "/flag/llama-addon.node" }, env, linux).llamaAddon,
    "/flag/llama-addon.node",
  );
  assertEquals(resolveConfig({}, {}, linux).llamaAddon, undefined);
  assertThrows(() => resolveConfig({ llamaAddon: "/tmp/libllama.so" }, {}, linux));
});
