/** `GET /v1/ml`: the ML service's workers (state, pid, restarts, load), for dashboards and tests. */
import { createRoute, z } from "@hono/zod-openapi";
import type { MlService } from "../ml/mod.ts";
import { BEARER_SECURITY, createRouter } from "./router.ts";

const MlStatusSchema = z.object({
  state: z.string(),
  detail: z.string().optional(),
  workers: z.array(z.object({
    name: z.string(),
    kind: z.enum(["local", "remote"]),
    address: z.string(),
    state: z.enum(["starting", "ready", "restarting", "broken", "stopped"]),
    pid: z.number().nullable(),
    restarts: z.number(),
    inFlight: z.number(),
    lastError: z.string().nullable(),
    since: z.string(),
  })),
}).openapi("MlStatus");

const route = createRoute({
  method: "get",
  path: "/v1/ml",
  tags: ["system"],
  summary: "ML service workers",
  security: BEARER_SECURITY,
  responses: { 200: { description: "Workers", content: { "application/json": { schema: MlStatusSchema } } } },
});

/** The ML status resource. */
export function mlRoutes(deps: { ml: MlService }) {
  return createRouter().openapi(route, (c) => {
    const health = deps.ml.health();
    return c.json({ state: health.state, detail: health.detail, workers: deps.ml.statuses() }, 200);
  });
}
