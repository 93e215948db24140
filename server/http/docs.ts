/**
 * API documentation: the OpenAPI 3.1 document generated from the route schemas, and three
 * viewers (Swagger UI, ReDoc, Scalar) whose assets come from local npm packages, so the docs
 * work offline.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { Hono } from "hono";
import { TabAgentError } from "../errors/mod.ts";
import { contentTypeFor } from "./static.ts";
import type { HttpEnv } from "./router.ts";

/** Where each viewer's files live inside `node_modules`, by the name served under `/api-doc/assets/`. */
export const DOC_ASSETS: Record<string, string> = {
  "swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
  "swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
  "redoc.standalone.js": "redoc/bundles/redoc.standalone.js",
  "scalar.js": "@scalar/api-reference/dist/browser/standalone.js",
};

const SPEC_URL = "/api-doc/openapi.json";

function page(title: string, head: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>${head}</head><body>${body}</body></html>`;
}

/** The three viewer pages and the index, by path under `/api-doc/`. */
export const DOC_PAGES: Record<string, string> = {
  "": page(
    "TabAgent API",
    "<style>body{font:16px system-ui;margin:3rem auto;max-width:40rem}</style>",
    `<h1>TabAgent API</h1><p>The API needs <code>Authorization: Bearer &lt;token&gt;</code>; <code>tabagent token</code> prints it.</p>
<ul><li><a href="/api-doc/swagger">Swagger UI</a></li><li><a href="/api-doc/redoc">ReDoc</a></li>
<li><a href="/api-doc/scalar">Scalar</a></li><li><a href="${SPEC_URL}">openapi.json</a></li></ul>`,
  ),
  swagger: page(
    "TabAgent API · Swagger UI",
    `<link rel="stylesheet" href="/api-doc/assets/swagger-ui.css">`,
    `<div id="swagger"></div><script src="/api-doc/assets/swagger-ui-bundle.js"></script>
<script src="/api-doc/assets/swagger-init.js"></script>`,
  ),
  redoc: page(
    "TabAgent API · ReDoc",
    "",
    `<redoc spec-url="${SPEC_URL}"></redoc><script src="/api-doc/assets/redoc.standalone.js"></script>`,
  ),
  scalar: page(
    "TabAgent API · Scalar",
    "",
    // Fonts off: Scalar would fetch them from its CDN, which an offline install cannot reach.
    `<script id="api-reference" data-url="${SPEC_URL}" data-configuration='{"withDefaultFonts":false}'></script><script src="/api-doc/assets/scalar.js"></script>`,
  ),
};

// Inline scripts would need a looser CSP; this one tiny file starts Swagger UI.
const SWAGGER_INIT = `window.ui = SwaggerUIBundle({ url: "${SPEC_URL}", dom_id: "#swagger", deepLinking: true,
  persistAuthorization: true });\n`;

/**
 * Gives every integer schema in `document` the bounds zod enforces on it (a safe integer), where it
 * states none: zod rejects larger numbers, so a client generating values from the document must
 * not send them. Changes `document` in place and returns it.
 */
export function withIntegerBounds<T>(document: T): T {
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== "object") return;
    const schema = node as Record<string, unknown>;
    if (schema.type === "integer" || (Array.isArray(schema.type) && schema.type.includes("integer"))) {
      if (schema.minimum === undefined && schema.exclusiveMinimum === undefined) {
        schema.minimum = Number.MIN_SAFE_INTEGER;
      }
      if (schema.maximum === undefined && schema.exclusiveMaximum === undefined) {
        schema.maximum = Number.MAX_SAFE_INTEGER;
      }
    }
    for (const value of Object.values(schema)) visit(value);
  };
  visit(document);
  return document;
}

/**
 * Mounts `/api-doc/*` on `app`. `nodeModules` is the folder the viewer assets are read from; they
 * are read once and kept in memory.
 */
export function mountDocs(app: OpenAPIHono<HttpEnv>, options: { version: string; nodeModules: URL }): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "The token in the data dir's `api_token` file; `tabagent token` prints it.",
  });
  const config = {
    openapi: "3.1.0",
    info: {
      title: "TabAgent API",
      version: options.version,
      description: "Local-first AI server: OpenAI-compatible chat and embeddings, memory, models.",
    },
    security: [{ bearerAuth: [] }],
  };
  // Built at the first request, once every router is mounted; the routes do not change afterwards.
  let spec: string | undefined;
  app.get(SPEC_URL, (c) => {
    spec ??= JSON.stringify(withIntegerBounds(app.getOpenAPI31Document(config)));
    return c.body(spec, 200, { "content-type": "application/json" });
  });
  const cache = new Map<string, Uint8Array<ArrayBuffer>>();
  const docs = new Hono<HttpEnv>();
  docs.get("/assets/swagger-init.js", (c) => c.body(SWAGGER_INIT, 200, { "content-type": "text/javascript" }));
  docs.get("/assets/:name", async (c) => {
    const name = c.req.param("name");
    const relative = Object.hasOwn(DOC_ASSETS, name) ? DOC_ASSETS[name] : undefined;
    if (!relative) throw new TabAgentError("not_found", `No documentation asset '${name}'`);
    let bytes = cache.get(name);
    if (!bytes) {
      try {
        bytes = await Deno.readFile(new URL(relative, options.nodeModules));
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) {
          throw new TabAgentError(
            "unavailable",
            `Documentation asset ${relative} is not installed; run 'deno task setup'`,
          );
        }
        throw error;
      }
      cache.set(name, bytes);
    }
    return c.body(bytes, 200, { "content-type": contentTypeFor(name), "cache-control": "public, max-age=86400" });
  });
  for (const [name, html] of Object.entries(DOC_PAGES)) {
    docs.get(name === "" ? "/" : `/${name}`, (c) => c.html(html));
  }
  app.route("/api-doc", docs);
}
