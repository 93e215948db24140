/**
 * End to end, the real server: the knowledge-graph weaver turns a conversation into entities,
 * relations and versioned facts over HTTP (through the gRPC DatabaseService too), with the rule
 * path and with the model path on the real SmolLM2 GGUF.
 */
import assert from "node:assert/strict";
import { ENTITY_TYPES } from "../server/memory/weaver/schema.ts";
import { SMOLLM2_MODEL } from "./_models.ts";
import { startServer, type TestServer } from "./_server.ts";

const MODELS = new URL("./.fixtures/models", import.meta.url).pathname;

function client(server: TestServer) {
  return async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { ...server.auth, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, type: res.headers.get("content-type") ?? "", json: text ? JSON.parse(text) : null };
  };
}

type Api = ReturnType<typeof client>;
type Json = Record<string, unknown>;

/** Appends one user message, then lets the clock move on so the next one is strictly later. */
async function say(api: Api, conversation: string, content: string): Promise<Json> {
  const { status, json } = await api("POST", `/v1/memory/conversations/${conversation}/messages`, {
    messages: [{ role: "user", content }],
  });
  assert.deepEqual(status, 201);
  const at = Date.parse(json.items[0].created_at);
  while (Date.now() <= at) await new Promise((resolve) => setTimeout(resolve, 1));
  return json.items[0];
}

async function entityNamed(api: Api, name: string): Promise<Json> {
  const { json } = await api("GET", "/v1/memory/graph/entities?limit=500");
  const found = json.items.find((e: Json) => e.name === name);
  assert.ok(found, `no entity ${name} among ${json.items.map((e: Json) => e.name)}`);
  return found;
}

Deno.test("weaver over HTTP and gRPC: Ada's move retires Berlin, as_of answers the past, neighbours and paths, duplicates merge", async () => {
  await using server = await startServer({
    args: ["--mode", "http", "--no-ml", "--model-cache-path", MODELS, "--memory-backend", "grpc", "--weaver", "rules"],
  });
  const api = client(server);
  const { json: conversation } = await api("POST", "/v1/memory/conversations", { title: "about me" });
  const first = await say(api, conversation.id, "My name is Ada. I work at Initech in Berlin.");
  assert.deepEqual((await api("POST", "/v1/memory/graph/weave")).json.woven, 1);
  const beforeMove = new Date().toISOString();
  while (Date.now() <= Date.parse(beforeMove)) await new Promise((resolve) => setTimeout(resolve, 1));
  const second = await say(api, conversation.id, "I moved to Paris");
  const woven = await api("POST", "/v1/memory/graph/weave");
  assert.deepEqual([woven.status, woven.json.mode, woven.json.backlog, woven.json.woven], [200, "rules", 0, 2]);

  const ada = await entityNamed(api, "Ada");
  const initech = await entityNamed(api, "Initech");
  const paris = await entityNamed(api, "Paris");
  assert.deepEqual([ada.type, initech.type, paris.type], ["person", "organization", "place"]);

  const { json: facts } = await api("GET", `/v1/memory/facts?entity_id=${ada.id}`);
  const berlinFact = facts.items.find((f: Json) => f.object === "Berlin");
  const parisFact = facts.items.find((f: Json) => f.object === "Paris");
  assert.deepEqual([berlinFact.source_id, parisFact.source_id], [first.id, second.id]);
  assert.deepEqual([berlinFact.valid_to, berlinFact.superseded_by], [parisFact.valid_from, parisFact.id]);
  assert.deepEqual(parisFact.valid_to, null);

  const objects = async (query: string) =>
    (await api("GET", `/v1/memory/facts?entity_id=${ada.id}&${query}`)).json.items.map((f: Json) => f.object).sort();
  assert.deepEqual(await objects(`as_of=${encodeURIComponent(beforeMove)}`), ["Ada", "Berlin", "Initech"]);
  assert.deepEqual(await objects("current=true"), ["Ada", "Initech", "Paris"]);

  const { json: around } = await api("GET", `/v1/memory/graph/entities/${ada.id}/neighbors?depth=1`);
  assert.deepEqual(around.neighbors.map((n: Json) => (n.entity as Json).name).sort(), ["Initech", "Paris"]);
  const { json: path } = await api("GET", `/v1/memory/graph/path?from=${initech.id}&to=${paris.id}`);
  assert.deepEqual([path.found, path.length, path.entities.map((e: Json) => e.name)], [true, 2, [
    "Initech",
    "Ada",
    "Paris",
  ]]);

  // duplicates: by name on the way in, by MiniLM similarity of names in the background
  await say(api, conversation.id, "Bob works at Initech Inc. too.");
  await say(api, conversation.id, "I visited NYC in May.");
  await say(api, conversation.id, "Grace lives in New York City.");
  await api("POST", "/v1/memory/graph/weave");
  const { json: all } = await api("GET", "/v1/memory/graph/entities?limit=500");
  const names = all.items.map((e: Json) => e.name);
  assert.deepEqual(names.filter((n: string) => n.startsWith("Initech")), ["Initech"]);
  assert.deepEqual(names.filter((n: string) => n === "NYC" || n === "New York City"), ["NYC"]);
  const nyc = await entityNamed(api, "NYC");
  const { json: nycAround } = await api("GET", `/v1/memory/graph/entities/${nyc.id}/neighbors`);
  assert.deepEqual(nycAround.neighbors.map((n: Json) => (n.entity as Json).name), ["Grace"]);

  // the weaver's mode is in its status and in health
  const { json: status } = await api("GET", "/v1/memory/graph/status");
  assert.deepEqual([status.mode, status.extractors, status.last_error], ["rules", { rules: 5 }, null]);
  const health = await (await fetch(`${server.url}/v1/health`)).json();
  assert.deepEqual(health.components.find((c: Json) => c.name === "memory").detail, "weaver: rules");

  // bad input is refused with problem+json
  for (
    const [method, path, body] of [
      ["GET", "/v1/memory/facts?as_of=last%20tuesday"],
      ["GET", "/v1/memory/facts?current=maybe"],
      ["GET", `/v1/memory/graph/path?from=${ada.id}`],
      ["GET", `/v1/memory/graph/path?from=${ada.id}&to=${paris.id}&max_depth=99`],
      ["GET", `/v1/memory/graph/entities/${ada.id}/neighbors?depth=0`],
      ["POST", "/v1/memory/graph/consolidate", { threshold: 5 }],
      ["POST", "/v1/memory/graph/consolidate", { threshold: "high" }],
    ] as [string, string, unknown?][]
  ) {
    const refused = await api(method, path, body);
    assert.deepEqual([refused.status, refused.type], [400, "application/problem+json"], `${method} ${path}`);
  }
  const missing = await api("GET", `/v1/memory/graph/path?from=${ada.id}&to=ent_999999`);
  assert.deepEqual([missing.status, missing.type], [404, "application/problem+json"]);
  const { json: doc } = await api("GET", "/api-doc/openapi.json");
  for (const route of ["/v1/memory/graph/path", "/v1/memory/graph/status", "/v1/memory/graph/weave"]) {
    assert.ok(route in doc.paths, route);
  }
});

Deno.test("weaver model path: the real SmolLM2 GGUF extracts through the orchestrator with JSON-schema output into the store", async () => {
  await using server = await startServer({
    args: [
      "--mode",
      "http",
      "--no-ml",
      "--model-cache-path",
      MODELS,
      "--weaver",
      "model",
      "--weaver-model",
      SMOLLM2_MODEL,
    ],
  });
  const api = client(server);
  const { json: conversation } = await api("POST", "/v1/memory/conversations", {});
  const said = await say(api, conversation.id, "My name is Ada. I work at Initech in Berlin.");
  const { status, json } = await api("POST", "/v1/memory/graph/weave");
  assert.deepEqual(status, 200);
  // woven by the model: an answer that failed the schema would have fallen back to the rules
  assert.deepEqual([json.mode, json.model, json.extractors, json.last_error], [
    "model",
    SMOLLM2_MODEL,
    { [`model:${SMOLLM2_MODEL}`]: 1 },
    null,
  ]);
  assert.ok(json.entities > 0, `the model's extraction left nothing in the store: ${JSON.stringify(json)}`);
  const { json: entities } = await api("GET", "/v1/memory/graph/entities?limit=500");
  // what landed kept the schema's types (the model's quality is not the point: the wiring is)
  assert.ok(entities.items.length > 0);
  for (const entity of entities.items) {
    assert.ok((ENTITY_TYPES as readonly string[]).includes(entity.type), entity.type);
  }
  const { json: facts } = await api("GET", "/v1/memory/facts");
  for (const fact of facts.items) {
    assert.deepEqual([fact.source_id, fact.metadata.extractor], [said.id, `model:${SMOLLM2_MODEL}`]);
  }
  const health = await (await fetch(`${server.url}/v1/health`)).json();
  assert.deepEqual(health.components.find((c: Json) => c.name === "memory").detail, `weaver: model (${SMOLLM2_MODEL})`);
});

Deno.test("weaver model path without its model: messages stay queued and the failure shows in status and health", async () => {
  const missing = "nobody/missing-model-GGUF";
  await using server = await startServer({
    args: ["--mode", "http", "--no-ml", "--model-cache-path", MODELS, "--weaver", "model", "--weaver-model", missing],
  });
  const api = client(server);
  const { json: conversation } = await api("POST", "/v1/memory/conversations", {});
  await say(api, conversation.id, "My name is Ada.");
  const { status, json } = await api("POST", "/v1/memory/graph/weave");
  assert.deepEqual([status, json.backlog, json.woven, json.entities], [200, 1, 0, 0]);
  assert.ok(json.last_error?.includes(missing), json.last_error);
  const health = await (await fetch(`${server.url}/v1/health`)).json();
  const memory = health.components.find((c: Json) => c.name === "memory");
  assert.deepEqual(memory.state, "ready");
  assert.ok(memory.detail.startsWith(`weaver: model (${missing}), failing:`), memory.detail);
});
