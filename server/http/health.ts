import { createRoute, z } from "@hono/zod-openapi";
import { COMPONENT_STATES, type Lifecycle } from "../lifecycle/mod.ts";
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

/** The health resource. */
export function healthRoutes(options: { lifecycle: Lifecycle; version: string; mode: string }) {
  const { lifecycle, version, mode } = options;
  const started = performance.now();
  return createRouter().openapi(healthRoute, (c) => {
    const components = lifecycle.statuses();
    const status = lifecycle.overall(components);
    const body = {
      status,
      version,
      mode,
      uptime_s: Math.round(performance.now() - started) / 1000,
      components,
    };
    return c.json(body, status === "ready" || status === "degraded" ? 200 : 503);
  });
}
