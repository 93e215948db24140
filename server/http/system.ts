/** `GET /v1/system`: hardware, inference backends, loaded models and the scheduler's queues. */
import { createRoute, z } from "@hono/zod-openapi";
import type { HardwareInfo } from "../hardware/mod.ts";
import type { ModelOrchestrator } from "../inference/orchestrator/mod.ts";
import { BEARER_SECURITY, createRouter } from "./router.ts";

const SystemSchema = z.object({
  hardware: z.record(z.string(), z.unknown()).describe("CPU, memory, GPUs, NPUs, acceleration, recommendations"),
  inference: z.record(z.string(), z.unknown()).describe("Backends, loaded models (state, sequences), scheduler"),
  onnx_execution_providers: z.array(z.record(z.string(), z.unknown())),
}).openapi("System");

const route = createRoute({
  method: "get",
  path: "/v1/system",
  tags: ["system"],
  summary: "Hardware and inference state",
  security: BEARER_SECURITY,
  responses: { 200: { description: "The system", content: { "application/json": { schema: SystemSchema } } } },
});

/** The system resource. */
export function systemRoutes(deps: { orchestrator: ModelOrchestrator; hardware: HardwareInfo }) {
  return createRouter().openapi(route, (c) => {
    const memory = Deno.systemMemoryInfo();
    const hardware = {
      ...deps.hardware,
      memory: { totalBytes: memory.total, availableBytes: memory.available },
    };
    return c.json({
      hardware: hardware as unknown as Record<string, unknown>,
      inference: deps.orchestrator.status() as unknown as Record<string, unknown>,
      onnx_execution_providers: deps.orchestrator.providers as unknown as Record<string, unknown>[],
    }, 200);
  });
}
