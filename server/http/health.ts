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
 * The health body. Probes call it often (and a load balancer or the extension may poll it while
 * the server is busy), so it is assembled from cached JSON: everything but the uptime is
 * re-serialised only when a component's state, detail or `since` changed. Serialising it on every
 * call was the largest cost of a health request in a CPU profile; building a key string to notice
 * changes was the largest allocation after that. Shared by the route and the fast path in
 * `_fast_health.ts`, so both send the same document.
 */
export class HealthBody {
  #lifecycle: Lifecycle;
  #started = performance.now();
  #head: string;
  #cached: ComponentStatus[] = [];
  #overall: OverallState = "starting";
  #prefix = "";
  #suffix = "";
  /** The HTTP status of the last {@link render}: 200 when ready or degraded, else 503. */
  status = 503;

  constructor(options: { lifecycle: Lifecycle; version: string; mode: string }) {
    this.#lifecycle = options.lifecycle;
    this.#head = `,"version":${JSON.stringify(options.version)},"mode":${JSON.stringify(options.mode)},"uptime_s":`;
  }

  /** The current body (JSON text of {@link HealthSchema}); sets {@link status} to go with it. */
  render(): string {
    const components = this.#lifecycle.statuses();
    const overall = this.#lifecycle.overall(components);
    if (this.#prefix === "" || overall !== this.#overall || changed(components, this.#cached)) {
      this.#cached = components;
      this.#overall = overall;
      this.#prefix = `{"status":"${overall}"${this.#head}`;
      this.#suffix = `,"components":${JSON.stringify(components)}}`;
      this.status = overall === "ready" || overall === "degraded" ? 200 : 503;
    }
    const uptime = Math.round(performance.now() - this.#started) / 1000;
    return this.#prefix + uptime + this.#suffix;
  }
}

/** The health resource: `GET /v1/health` answering {@link HealthBody}. */
export function healthRoutes(options: { lifecycle: Lifecycle; version: string; mode: string } | HealthBody) {
  const health = options instanceof HealthBody ? options : new HealthBody(options);
  return createRouter().openapi(healthRoute, (c) => {
    const body = health.render();
    return c.body(body, health.status as 200 | 503, { "content-type": "application/json" }) as never;
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
