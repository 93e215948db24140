/**
 * The security rules on `/api/*` through `app.request()`: the token, Host and Origin checks answer in
 * Ollama's `{"error"}` shape, and `--allow-anonymous-local` opens only the listed routes.
 */
import assert from "node:assert/strict";
import { TabAgentError } from "../../errors/mod.ts";
import { createRouter } from "../mod.ts";
import { testHttpApp } from "../testing/http_app.ts";
import { OLLAMA_ANONYMOUS_ROUTES } from "./mod.ts";

const TOKEN = "t".repeat(40);
const H = { host: "127.0.0.1:8765" };

/** Answers every Ollama route with which one it was, so only the middleware decides. */
function echoRoutes() {
  const router = createRouter();
  for (const route of ["POST /api/chat", "GET /api/tags", "POST /api/pull", "DELETE /api/delete"]) {
    const [method, path] = route.split(" ");
    router.on(method, path, (c) => c.json({ route }));
  }
  router.get("/api/boom", () => {
    throw new TabAgentError("not_found", 'model "x" not found, try pulling it first');
  });
  return router;
}

function makeApp(anonymousRoutes: readonly string[] = []) {
  return testHttpApp({
    config: { allowedOrigins: ["chrome-extension://pageassist"], maxBodyBytes: 1024, requestTimeoutMs: 5000 },
    token: TOKEN,
    routers: [echoRoutes()],
    anonymousRoutes,
  });
}

async function ollamaError(res: Response, status: number): Promise<string> {
  assert.equal(res.status, status);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  const body = await res.json();
  assert.deepEqual(Object.keys(body), ["error"]);
  return body.error;
}

Deno.test("/api/* needs the token and refuses in Ollama's {error} shape", async () => {
  const app = makeApp();
  assert.match(await ollamaError(await app.request("/api/tags", { headers: H }), 401), /Authorization: Bearer/);
  const wrong = await app.request("/api/tags", { headers: { ...H, authorization: "Bearer nope" } });
  assert.match(await ollamaError(wrong, 401), /not valid/);
  const ok = await app.request("/api/tags", { headers: { ...H, authorization: `Bearer ${TOKEN}` } });
  assert.deepEqual(await ok.json(), { route: "GET /api/tags" });
  const auth = { authorization: `Bearer ${TOKEN}` };
  assert.match(
    await ollamaError(await app.request("/api/boom", { headers: { ...H, ...auth } }), 404),
    /^model "x" not found/,
  );
  assert.match(await ollamaError(await app.request("/api/nothing", { headers: { ...H, ...auth } }), 404), /No route/);
  // The docs stay public and keep problem+json elsewhere.
  assert.equal((await app.request("/api-doc/openapi.json", { headers: H })).status, 200);
  assert.equal(
    (await app.request("/v1/models", { headers: H })).headers.get("content-type"),
    "application/problem+json",
  );
});

Deno.test("Host and Origin checks apply to /api/* too; an allowed extension origin gets CORS", async () => {
  const app = makeApp();
  const auth = { authorization: `Bearer ${TOKEN}` };
  assert.match(
    await ollamaError(await app.request("/api/tags", { headers: { host: "evil.example", ...auth } }), 403),
    /Host/,
  );
  const page = await app.request("/api/tags", { headers: { ...H, ...auth, origin: "https://evil.example" } });
  assert.match(await ollamaError(page, 403), /--origin/);
  const extension = await app.request("/api/tags", {
    headers: { ...H, ...auth, origin: "chrome-extension://pageassist" },
  });
  assert.equal(extension.status, 200);
  assert.equal(extension.headers.get("access-control-allow-origin"), "chrome-extension://pageassist");
});

Deno.test("--allow-anonymous-local opens only the listed routes", async () => {
  const app = makeApp(OLLAMA_ANONYMOUS_ROUTES);
  const chat = await app.request("/api/chat", { method: "POST", headers: H, body: "{}" });
  assert.deepEqual(await chat.json(), { route: "POST /api/chat" });
  assert.deepEqual(await (await app.request("/api/tags", { headers: H })).json(), { route: "GET /api/tags" });
  assert.equal((await app.request("/api/tags", { method: "HEAD", headers: H })).status, 200);
  await ollamaError(await app.request("/api/pull", { method: "POST", headers: H, body: "{}" }), 401);
  await ollamaError(await app.request("/api/delete", { method: "DELETE", headers: H, body: "{}" }), 401);
  assert.equal((await app.request("/v1/models", { headers: H })).status, 401);
  assert.equal((await app.request("/v1/memory/conversations", { headers: H })).status, 401);
  // Still no way in for a web page.
  const page = await app.request("/api/tags", { headers: { ...H, origin: "https://evil.example" } });
  await ollamaError(page, 403);
});
