/**
 * The HTTP front door: a Hono app with OpenAPI-described routes, the security middleware, docs,
 * metrics and static files, and the listener component. It owns no state: resources come in as
 * routers built over the components `app.ts` created.
 *
 * @example
 * ```ts
 * const app = createHttpApp({ config, version, log, lifecycle, metrics, token, nodeModules });
 * lifecycle.add(new HttpServer({ app, host: config.host, port: config.port, log }));
 * ```
 * @module
 */
export { createHttpApp, type HttpAppDeps } from "./app.ts";
export { HttpServer } from "./server.ts";
export { chatRoutes, type ChatRoutesDeps } from "./chat.ts";
export { completionRoutes } from "./completions.ts";
export { embeddingRoutes } from "./embeddings.ts";
export { memoryRoutes } from "./memory.ts";
export { modelRoutes, type ModelRoutesDeps } from "./models.ts";
export { systemRoutes } from "./system.ts";
export { webrtcRoutes } from "./webrtc.ts";
export { mlRoutes } from "./ml.ts";
export { tokenizeRoutes } from "./tokenize.ts";
export { visionRoutes } from "./vision.ts";
export { OLLAMA_ANONYMOUS_ROUTES, ollamaRoutes } from "./ollama/mod.ts";
export { BEARER_SECURITY, createRouter, type HttpEnv } from "./router.ts";
export { problem, PROBLEM_CONTENT_TYPE, problemResponse, ProblemSchema } from "./problem.ts";
export { isPublicPath } from "./middleware.ts";
export { contentTypeFor, safeJoin } from "./static.ts";
