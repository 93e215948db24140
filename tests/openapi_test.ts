/**
 * End-to-end: the OpenAPI document lists every status the routes really answer. Each documented
 * operation of a real server is called the ways a generic client (or schemathesis's coverage
 * phase) would: without the token, with a foreign Host, with a body over the limit, with a
 * malformed body and malformed parameters; every status that comes back must be documented for
 * that operation.
 */
import assert from "node:assert/strict";
import { ROUTE_BODY_LIMITS } from "../server/config/mod.ts";
import { startServer } from "./_server.ts";

const MAX_BODY_BYTES = 4096;
const METHODS = ["get", "post", "put", "patch", "delete"] as const;

interface Operation {
  security?: unknown[];
  requestBody?: unknown;
  parameters?: { in: string; name: string }[];
  responses: Record<string, unknown>;
}

/** One request over a raw socket, for headers fetch will not send as given (Host); returns the status. */
async function rawStatus(url: string, method: string, path: string, host: string): Promise<number> {
  const { hostname, port } = new URL(url);
  using conn = await Deno.connect({ hostname, port: Number(port) });
  const request = `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`;
  await conn.write(new TextEncoder().encode(request));
  const buffer = new Uint8Array(64);
  let text = "";
  while (!text.includes("\r\n")) {
    const n = await conn.read(buffer);
    if (n === null) break;
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  return Number(text.split(" ")[1]);
}

/** Fills path parameters with values that parse badly or name nothing. */
function concrete(path: string): string {
  return path.replace(/\{[^}]+\}/g, "x");
}

Deno.test("every status a route answers is in the OpenAPI document", async () => {
  await using server = await startServer({
    args: ["--mode", "http", "--no-ml"],
    env: { TABAGENT_MAX_BODY_BYTES: String(MAX_BODY_BYTES) },
  });
  const doc = await (await fetch(`${server.url}/api-doc/openapi.json`)).json();
  const undocumented: string[] = [];
  let calls = 0;
  const check = async (method: string, path: string, op: Operation, init: RequestInit, why: string) => {
    const res = await fetch(`${server.url}${concrete(path)}`, { ...init, method: method.toUpperCase() });
    await res.body?.cancel();
    calls++;
    if (!(String(res.status) in op.responses) && !("default" in op.responses)) {
      undocumented.push(`${method.toUpperCase()} ${path} ${why}: ${res.status}`);
    }
    return res.status;
  };
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const isPublic = Array.isArray(op.security) && op.security.length === 0;
      for (const status of ["403", "500", "504", ...(isPublic ? [] : ["401"])]) {
        assert.ok(status in op.responses, `${method} ${path} documents ${status}`);
      }
      if (op.requestBody) assert.ok("413" in op.responses, `${method} ${path} documents 413`);

      const noToken = await check(method, path, op, {}, "without the token");
      if (!isPublic) assert.deepEqual(noToken, 401, `${method} ${path} without the token`);
      const foreignHost = await rawStatus(server.url, method.toUpperCase(), concrete(path), "attacker.example");
      assert.deepEqual(foreignHost, 403, `${method} ${path} with a foreign Host`);
      assert.ok("403" in op.responses);
      assert.deepEqual(
        await check(method, path, op, { headers: { ...server.auth, origin: "https://attacker.example" } }, "Origin"),
        403,
      );
      if (op.requestBody) {
        // Over the route's own limit where it has one (the memory import), else over --max-body-bytes.
        const limit = ROUTE_BODY_LIMITS.get(path) ?? MAX_BODY_BYTES;
        const big = "x".repeat(limit + 1);
        const headers = { ...server.auth, "content-type": "application/json" };
        assert.deepEqual(await check(method, path, op, { headers, body: big }, "with a body over the limit"), 413);
        await check(method, path, op, { headers, body: '{"x":' }, "with malformed JSON");
        await check(method, path, op, { headers, body: "{}" }, "with an empty object");
      } else if (method === "get") {
        await check(method, path, op, { headers: server.auth }, "with the token");
      }
      if (op.parameters?.some((p) => p.in === "query")) {
        const bad = op.parameters.filter((p) => p.in === "query").map((p) => `${p.name}=%00${"z".repeat(300)}`);
        const url = `${concrete(path)}?${bad.join("&")}`;
        const res = await fetch(`${server.url}${url}`, { method: method.toUpperCase(), headers: server.auth });
        await res.body?.cancel();
        calls++;
        if (!(String(res.status) in op.responses)) {
          undocumented.push(`${method.toUpperCase()} ${path} with bad query: ${res.status}`);
        }
      }
    }
  }
  assert.ok(calls > 50, `only ${calls} calls`);
  assert.deepEqual(undocumented, []);
});

Deno.test("memory import takes the export's records as a JSON array too, as the document describes", async () => {
  await using server = await startServer({ args: ["--mode", "http", "--no-ml"] });
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${server.url}${path}`, { ...init, headers: { ...server.auth, ...init.headers } });
  const created = await api("/v1/memory/conversations", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ title: "exported" }),
  });
  const { id } = await created.json();
  const exported = await (await api("/v1/memory/export")).text();
  const records = exported.trim().split("\n").map((line) => JSON.parse(line));
  assert.ok(records.some((r) => r.record === "conversation" && r.id === id));
  await (await api(`/v1/memory/conversations/${id}`, { method: "DELETE" })).body?.cancel();

  const doc = await (await fetch(`${server.url}/api-doc/openapi.json`)).json();
  const content = doc.paths["/v1/memory/import"].post.requestBody.content;
  assert.deepEqual(Object.keys(content).sort(), ["application/json", "application/x-ndjson"]);
  const res = await api("/v1/memory/import", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(records),
  });
  assert.deepEqual(res.status, 200);
  assert.deepEqual((await res.json()).imported.conversation, 1);
  assert.deepEqual((await (await api(`/v1/memory/conversations/${id}`)).json()).title, "exported");
  const bad = await api("/v1/memory/import", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify([{ nope: 1 }]),
  });
  assert.deepEqual(bad.status, 400);
  await bad.body?.cancel();
});

Deno.test("a documented path asked with another method answers 405, its Allow naming the documented methods", async () => {
  await using server = await startServer({ args: ["--mode", "http", "--no-ml"] });
  const doc = await (await fetch(`${server.url}/api-doc/openapi.json`)).json();
  const wrong: string[] = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
    const documented = METHODS.filter((method) => method in item).map((m) => m.toUpperCase());
    const expected = [...documented, ...(documented.includes("GET") ? ["HEAD"] : [])].sort().join(", ");
    const method = ["PUT", "PATCH", "POST", "DELETE"].find((m) => !documented.includes(m))!;
    const res = await fetch(`${server.url}${concrete(path)}`, { method, headers: server.auth });
    await res.body?.cancel();
    if (res.status !== 405 || res.headers.get("allow") !== expected) {
      wrong.push(`${method} ${path}: ${res.status}, Allow ${res.headers.get("allow")} (want ${expected})`);
    }
  }
  assert.deepEqual(wrong, []);
});

Deno.test("every integer in the OpenAPI document states the bounds the server enforces", async () => {
  await using server = await startServer({ args: ["--mode", "http", "--no-ml"] });
  const doc = await (await fetch(`${server.url}/api-doc/openapi.json`)).json();
  const unbounded: string[] = [];
  let integers = 0;
  const visit = (node: unknown, at: string): void => {
    if (Array.isArray(node)) return node.forEach((item, i) => visit(item, `${at}/${i}`));
    if (node === null || typeof node !== "object") return;
    const schema = node as Record<string, unknown>;
    if (schema.type === "integer" || (Array.isArray(schema.type) && schema.type.includes("integer"))) {
      integers++;
      const low = schema.minimum ?? schema.exclusiveMinimum, high = schema.maximum ?? schema.exclusiveMaximum;
      if (typeof low !== "number" || typeof high !== "number") unbounded.push(at);
      else if (high > Number.MAX_SAFE_INTEGER || low < Number.MIN_SAFE_INTEGER) unbounded.push(`${at} (unsafe)`);
    }
    for (const [key, value] of Object.entries(schema)) visit(value, `${at}/${key}`);
  };
  visit(doc, "#");
  assert.ok(integers > 50, `only ${integers} integer schemas`);
  assert.deepEqual(unbounded, []);
});
