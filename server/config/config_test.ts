import assert from "node:assert/strict";
import { TabAgentError } from "../errors/mod.ts";
import { configFromEnv, defaultDataDir, EXTENSION_ID, isLoopbackHost, resolveConfig } from "./mod.ts";

const linux = { platform: "linux" as const, environment: { HOME: "/home/ann" } };

Deno.test("defaults put data under the platform's data dir", () => {
  const config = resolveConfig({}, {}, linux);
  assert.deepEqual(config.host, "127.0.0.1");
  assert.deepEqual(config.port, 8765);
  assert.deepEqual(config.mode, "all");
  assert.deepEqual(config.dataDir, "/home/ann/.local/share/TabAgent");
  assert.deepEqual(config.dbPath, "/home/ann/.local/share/TabAgent/tabagent_db");
  assert.deepEqual(config.modelCachePath, "/home/ann/.local/share/TabAgent/models");
  assert.deepEqual(config.allowedOrigins, [`chrome-extension://${EXTENSION_ID}`]);
});

Deno.test("each platform has its own data dir", () => {
  assert.deepEqual(defaultDataDir("darwin", { HOME: "/Users/ann" }), "/Users/ann/Library/Application Support/TabAgent");
  assert.deepEqual(
    defaultDataDir("windows", { APPDATA: "C:\\Users\\ann\\AppData\\Roaming" }),
    "C:\\Users\\ann\\AppData\\Roaming\\TabAgent",
  );
  assert.deepEqual(defaultDataDir("linux", { HOME: "/h", XDG_DATA_HOME: "/x" }), "/x/TabAgent");
});

Deno.test("flags win over the environment, which wins over defaults", () => {
  const env = configFromEnv({ TABAGENT_PORT: "9000", TABAGENT_MODE: "http", TABAGENT_LOG_LEVEL: "debug" });
  const config = resolveConfig({ port: "9100" }, env, linux);
  assert.deepEqual(config.port, 9100);
  assert.deepEqual(config.mode, "http");
  assert.deepEqual(config.logLevel, "debug");
});

Deno.test("environment lists and booleans are read", () => {
  const env = configFromEnv({
    TABAGENT_ORIGINS: "http://localhost:3000, http://localhost:5173",
    TABAGENT_NO_ML: "1",
    TABAGENT_NO_AUTH: "true",
  });
  const config = resolveConfig({}, env, linux);
  assert.deepEqual(config.allowedOrigins.slice(1), ["http://localhost:3000", "http://localhost:5173"]);
  assert.deepEqual(config.ml, false);
  assert.deepEqual(config.auth, false);
});

Deno.test("a bad value is refused naming the setting", () => {
  assert.throws(() => resolveConfig({ port: "70000" }, {}, linux), (error: unknown) => {
    assert.deepEqual(error instanceof TabAgentError && error.code, "validation_failed");
    assert.deepEqual(((error as TabAgentError).extensions.errors as { field: string }[])[0].field, "port");
    return true;
  });
  assert.throws(() => resolveConfig({ mode: "turbo" }, {}, linux), /mode/);
  assert.throws(() => resolveConfig({ origins: ["not an origin"] }, {}, linux), /allowedOrigins/);
});

Deno.test("--no-auth is refused unless bound to loopback", () => {
  assert.throws(() => resolveConfig({ noAuth: true, host: "0.0.0.0" }, {}, linux), /loopback/);
  assert.deepEqual(resolveConfig({ noAuth: true, host: "::1" }, {}, linux).auth, false);
});

Deno.test("--allow-anonymous-local is off by default, read from env, and refused off loopback", () => {
  assert.deepEqual(resolveConfig({}, {}, linux).allowAnonymousLocal, false);
  const env = configFromEnv({ TABAGENT_ALLOW_ANONYMOUS_LOCAL: "1" });
  assert.deepEqual(resolveConfig({}, env, linux).allowAnonymousLocal, true);
  assert.throws(() => resolveConfig({ allowAnonymousLocal: true, host: "0.0.0.0" }, {}, linux), /loopback/);
});

Deno.test("loopback names are recognised", () => {
  for (const host of ["localhost", "127.0.0.1", "127.3.2.1", "::1", "[::1]", "app.localhost"]) {
    assert.deepEqual(isLoopbackHost(host), true, host);
  }
  for (const host of ["0.0.0.0", "192.168.1.2", "evil.com", "localhost.evil.com"]) {
    assert.deepEqual(isLoopbackHost(host), false, host);
  }
});

Deno.test("ML settings: local workers by default, remote ones replace them unless asked for", () => {
  const base = { dataDir: "/tmp/tabagent-config-test" };
  const plain = resolveConfig(base, {});
  assert.deepEqual([plain.mlWorkers, plain.mlRemoteWorkers, plain.mlDispatch], [1, [], "least-loaded"]);
  const remote = resolveConfig({ ...base, mlRemoteWorkers: ["10.0.0.2:50051"] }, {});
  assert.deepEqual([remote.mlWorkers, remote.mlRemoteWorkers], [0, ["10.0.0.2:50051"]]);
  const both = resolveConfig({ ...base, mlRemoteWorkers: ["gpu:50051"] }, {
    mlWorkers: "2",
    mlDispatch: "round-robin",
  });
  assert.deepEqual([both.mlWorkers, both.mlDispatch], [2, "round-robin"]);
  assert.throws(() => resolveConfig({ ...base, mlRemoteWorkers: ["no-port"] }, {}));
  assert.throws(() => resolveConfig({ ...base, mlWorkers: "-1" }, {}));
});

Deno.test("config: --parallel and TABAGENT_PROMPT_CACHE size the chat models' sequences; bad values are refused", () => {
  const config = resolveConfig({ parallel: "2" }, configFromEnv({ TABAGENT_PROMPT_CACHE: "0" }), linux);
  assert.deepEqual(config.parallel, 2);
  assert.deepEqual(config.promptCache, 0);
  assert.deepEqual(resolveConfig({}, {}, linux).parallel, undefined);
  assert.throws(() => resolveConfig({ parallel: "0" }, {}, linux));
  assert.throws(() => resolveConfig({}, configFromEnv({ TABAGENT_PROMPT_CACHE: "-1" }), linux));
});

Deno.test("the weaver: rules by default, set by flag or environment, bad values refused by name", () => {
  const defaults = resolveConfig({}, {}, linux);
  assert.deepEqual([defaults.weaver, defaults.weaverModel, defaults.weaverMergeThreshold], [
    "rules",
    "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
    0.85,
  ]);
  const env = configFromEnv({ TABAGENT_WEAVER: "off", TABAGENT_WEAVER_MERGE_THRESHOLD: "0.9" });
  const fromEnv = resolveConfig({ weaverModel: "org/extractor-GGUF" }, env, linux);
  assert.deepEqual([fromEnv.weaver, fromEnv.weaverModel, fromEnv.weaverMergeThreshold], [
    "off",
    "org/extractor-GGUF",
    0.9,
  ]);
  assert.throws(() => resolveConfig({ weaver: "llm" }, {}, linux), /weaver/);
  assert.throws(() => resolveConfig({ weaverMergeThreshold: "2" }, {}, linux), /weaverMergeThreshold/);
});

Deno.test("config: --llama-addon and TABAGENT_LLAMA_ADDON name a local llama.cpp binding or 'prebuilt'; other files are refused", () => {
  const env = configFromEnv({ TABAGENT_LLAMA_ADDON: "/env/llama-addon.node" });
  assert.equal(resolveConfig({}, env, linux).llamaAddon, "/env/llama-addon.node");
  assert.equal(
    resolveConfig({ llamaAddon: "/flag/llama-addon.node" }, env, linux).llamaAddon,
    "/flag/llama-addon.node",
  );
  assert.equal(resolveConfig({}, {}, linux).llamaAddon, undefined);
  assert.equal(resolveConfig({ llamaAddon: "prebuilt" }, env, linux).llamaAddon, "prebuilt");
  assert.throws(() => resolveConfig({ llamaAddon: "/tmp/libllama.so" }, {}, linux), /prebuilt/);
});

Deno.test("config: --llama-threads and TABAGENT_LLAMA_THREADS fix llama.cpp's threads; bad counts are refused", () => {
  const env = configFromEnv({ TABAGENT_LLAMA_THREADS: "3" });
  assert.equal(resolveConfig({}, env, linux).llamaThreads, 3);
  assert.equal(resolveConfig({ llamaThreads: "1" }, env, linux).llamaThreads, 1);
  assert.equal(resolveConfig({}, {}, linux).llamaThreads, undefined);
  assert.throws(() => resolveConfig({ llamaThreads: "0" }, {}, linux), /llamaThreads/);
  assert.throws(() => resolveConfig({ llamaThreads: "two" }, {}, linux), /llamaThreads/);
  assert.throws(() => resolveConfig({}, configFromEnv({ TABAGENT_LLAMA_THREADS: "1.5" }), linux), /llamaThreads/);
});
