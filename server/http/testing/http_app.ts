/**
 * The HTTP app as route tests build it: loopback, no extra hosts or origins, quiet logs, and the
 * repository's node_modules for the docs viewers. Only tests import this.
 */
import { Lifecycle } from "../../lifecycle/mod.ts";
import { createLogger } from "../../log/mod.ts";
import { MetricsRegistry } from "../../metrics/mod.ts";
import { createHttpApp, type HttpAppDeps } from "../app.ts";

/** What a test may set: any dependency, and any part of the config. */
export type TestHttpAppOptions = Partial<Omit<HttpAppDeps, "config">> & { config?: Partial<HttpAppDeps["config"]> };

/**
 * `createHttpApp` with test defaults; `options` replace any of them.
 *
 * @example
 * ```ts
 * const app = testHttpApp({ token: "t".repeat(40), routers: [modelRoutes({ models })] });
 * const res = await app.request("/v1/health", { headers: { host: "127.0.0.1" } });
 * ```
 */
export function testHttpApp(options: TestHttpAppOptions = {}): ReturnType<typeof createHttpApp> {
  const log = options.log ?? createLogger({ level: "error", sink: () => {} });
  return createHttpApp({
    version: "test",
    log,
    lifecycle: new Lifecycle(log),
    metrics: new MetricsRegistry(),
    token: null,
    nodeModules: new URL("../../../node_modules/", import.meta.url),
    ...options,
    config: {
      host: "127.0.0.1",
      allowedHosts: [],
      allowedOrigins: [],
      maxBodyBytes: 1 << 20,
      requestTimeoutMs: 60_000,
      mode: "http",
      staticDir: "/nonexistent",
      ...options.config,
    },
  });
}
