import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { type Config, ROUTE_BODY_LIMITS } from "../config/mod.ts";
import type { Lifecycle } from "../lifecycle/mod.ts";
import type { Logger } from "../log/mod.ts";
import { type MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from "../metrics/mod.ts";
import { mountDocs } from "./docs.ts";
import { serveHealthFast } from "./_fast_health.ts";
import { fastRoutesOf } from "./_fast_routes.ts";
import { HealthBody, healthRoutes } from "./health.ts";
import { RequestAdmission, requestContext, requestGuard, RequestRecorder } from "./middleware.ts";
import { ollamaErrorShape } from "./ollama/mod.ts";
import { handleError, notFoundHandler } from "./problem.ts";
import { allowedMethods } from "./_allowed_methods.ts";
import { BEARER_SECURITY, createRouter, type HttpEnv } from "./router.ts";
import { serveStatic } from "./static.ts";

const metricsRoute = createRoute({
  method: "get",
  path: "/metrics",
  tags: ["system"],
  summary: "Prometheus metrics",
  description: "Request counts and latency histograms per route, component states, process memory.",
  security: BEARER_SECURITY,
  responses: {
    200: { description: "Prometheus text exposition 0.0.4", content: { "text/plain": { schema: z.string() } } },
  },
});

/** What the HTTP front door needs from the composition root. It owns none of it. */
export interface HttpAppDeps {
  config: Pick<
    Config,
    "host" | "allowedHosts" | "allowedOrigins" | "maxBodyBytes" | "requestTimeoutMs" | "mode" | "staticDir"
  >;
  version: string;
  log: Logger;
  lifecycle: Lifecycle;
  metrics: MetricsRegistry;
  /** The bearer token; null turns auth off (`--no-auth`, loopback only). */
  token: string | null;
  /** Resource routers from the components (memory, models, chat, …), mounted at `/`. */
  routers?: OpenAPIHono<HttpEnv>[];
  /** Serve `config.staticDir` at `/` (modes `web` and `all`). */
  serveStaticFiles?: boolean;
  /** Folder holding the npm packages the docs viewers come from. */
  nodeModules: URL;
  /** "METHOD /path" routes served without the token (`--allow-anonymous-local`). */
  anonymousRoutes?: readonly string[];
  /** Paths with a body limit of their own (default {@link ROUTE_BODY_LIMITS}: the memory import). */
  bodyLimits?: ReadonlyMap<string, number>;
}

/**
 * Builds the Hono app: middleware in a fixed order, the health, docs and metrics routes, the
 * components' routers, static files, and problem+json for every error.
 *
 * @example
 * ```ts
 * const app = createHttpApp(deps);
 * const res = await app.request("/v1/health", { headers: { host: "127.0.0.1" } });
 * ```
 */
export function createHttpApp(deps: HttpAppDeps): OpenAPIHono<HttpEnv> {
  const { config, log, metrics } = deps;
  const requests = metrics.counter("tabagent_http_requests_total", "HTTP requests by route and status", [
    "method",
    "route",
    "status",
  ]);
  const duration = metrics.histogram("tabagent_http_request_duration_seconds", "HTTP request latency by route", [
    "method",
    "route",
  ]);
  metrics.gauge(
    "tabagent_component_state",
    "1 for each component's current state",
    ["component", "state"],
    (gauge) => {
      gauge.series.clear();
      for (const status of deps.lifecycle.statuses()) gauge.set({ component: status.name, state: status.state }, 1);
    },
  );

  const app = createRouter();
  app.onError(handleError);
  const documented = () =>
    app.openAPIRegistry.definitions.flatMap((definition) => definition.type === "route" ? [definition.route] : []);
  app.notFound(notFoundHandler(allowedMethods(() => app.routes, documented)));
  const recorder = new RequestRecorder({ log, requests, duration });
  app.use(requestContext(recorder));
  // Before the security checks, so their refusals on /api/* reach Ollama clients as {"error": ...}.
  app.use("/api/*", ollamaErrorShape());
  const admission = new RequestAdmission({
    allowedHosts: config.allowedHosts,
    bindHost: config.host,
    allowedOrigins: config.allowedOrigins,
    token: deps.token,
    anonymousRoutes: deps.anonymousRoutes,
    maxBodyBytes: config.maxBodyBytes,
    bodyLimits: deps.bodyLimits ?? ROUTE_BODY_LIMITS,
    timeoutMs: config.requestTimeoutMs,
  });
  app.use(requestGuard(admission));

  const health = new HealthBody({ lifecycle: deps.lifecycle, version: deps.version, mode: config.mode });
  app.route("/", healthRoutes(health));
  app.openapi(metricsRoute, (c) => c.text(metrics.render(), 200, { "content-type": PROMETHEUS_CONTENT_TYPE }));
  for (const router of deps.routers ?? []) app.route("/", router);
  mountDocs(app, { version: deps.version, nodeModules: deps.nodeModules });
  if (deps.serveStaticFiles) app.use("/*", serveStatic({ root: config.staticDir }));
  serveHealthFast(app, { admission, recorder, health, routes: fastRoutesOf(deps.routers ?? []) });
  return app;
}
