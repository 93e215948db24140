import { createRoute, z } from "@hono/zod-openapi";
import { COMPONENT_STATES, type ComponentStatus, type Lifecycle, type OverallState } from "../lifecycle/mod.ts";
import { createRouter } from "./router.ts";

/** `GET /v1/health` body. */
export const HealthSchema = z.object({
  status: z.enum(["starting", "ready", "degraded", "failed", "stopping"]).describe(
    "Overall state: 'ready' when every component is; 'degraded' when a non-critical one is not",
  ),
  version: z.string(),
  mode: z.string(),
  uptime_s: z.number(),
  components: z.array(z.object({
    name: z.string(),
    state: z.enum(COMPONENT_STATES),
    critical: z.boolean(),
    detail: z.string().optional(),
    since: z.string(),
  })),
}).openapi("Health");

const healthRoute = createRoute({
  method: "get",
  path: "/v1/health",
  tags: ["system"],
  summary: "Server and component health",
  description: "Public (no token). 200 when ready or degraded, 503 while starting, stopping or failed.",
  security: [],
  responses: {
    200: { description: "Serving", content: { "application/json": { schema: HealthSchema } } },
    503: { description: "Not serving yet, or any more", content: { "application/json": { schema: HealthSchema } } },
  },
});

/**
 * The health resource. Probes call it often (and a load balancer or the extension may poll it
 * while the server is busy), so the body is assembled from cached JSON: everything but the uptime
 * is re-serialised only when a component's state, detail or `since` changed. Serialising it on
 * every call was the largest cost of a health request in a CPU profile; building a key string to
 * notice changes was the largest allocation after that.
 */
export function healthRoutes(options: { lifecycle: Lifecycle; version: string; mode: string }) {
  const { lifecycle, version, mode } = options;
  const started = performance.now();
  const head = `,"version":${JSON.stringify(version)},"mode":${JSON.stringify(mode)},"uptime_s":`;
  let cached: ComponentStatus[] = [];
  let status: OverallState = "starting";
  let prefix = "";
  let suffix = "";
  return createRouter().openapi(healthRoute, (c) => {
    const components = lifecycle.statuses();
    const overall = lifecycle.overall(components);
    if (prefix === "" || overall !== status || changed(components, cached)) {
      cached = components;
      status = overall;
      prefix = `{"status":"${status}"${head}`;
      suffix = `,"components":${JSON.stringify(components)}}`;
    }
    const uptime = Math.round(performance.now() - started) / 1000;
    return c.body(prefix + uptime + suffix, status === "ready" || status === "degraded" ? 200 : 503, {
      "content-type": "application/json",
    }) as never;
  });
}

function changed(now: ComponentStatus[], before: ComponentStatus[]): boolean {
  if (now.length !== before.length) return true;
  for (let i = 0; i < now.length; i++) {
    const a = now[i], b = before[i];
    if (a.state !== b.state || a.detail !== b.detail || a.since !== b.since || a.name !== b.name) return true;
  }
  return false;
}
