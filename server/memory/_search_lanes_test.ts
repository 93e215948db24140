import assert from "node:assert/strict";
import { type LaneAnswer, type LaneSearch, SearchLanes, serveSearchLanes } from "./_search_lanes.ts";

const decoder = new TextDecoder();
const text = (answer: LaneAnswer | null) => answer && "body" in answer ? decoder.decode(answer.body) : answer;

/** Two lanes of 64 bytes served on this thread: answers echo the search, "boom" throws, "big" overflows. */
function smallLanes(): SearchLanes {
  const lanes = new SearchLanes(2, 64);
  serveSearchLanes(
    lanes.buffer,
    (search: LaneSearch) => {
      if (search.query === "boom") throw new Error("no such column: boom");
      if (search.query === "big") return new Uint8Array(65);
      return new TextEncoder().encode(`${search.query}|${search.limit}|${search.conversationId ?? "-"}`);
    },
    undefined,
    2,
    64,
  );
  return lanes;
}

Deno.test("a lane carries the search there and the body back; an error or an oversized answer says so", async () => {
  const lanes = smallLanes();
  assert.equal(text(await lanes.ask({ query: "héron", limit: 3 })), "héron|3|-");
  assert.equal(text(await lanes.ask({ query: "kite", limit: 1, conversationId: "conv_a" })), "kite|1|conv_a");
  assert.deepEqual(await lanes.ask({ query: "boom", limit: 1 }), { error: "no such column: boom" });
  assert.deepEqual(await lanes.ask({ query: "big", limit: 1 }), { tooLarge: true });
  // Every lane is free again after its answer.
  const again = await Promise.all([
    lanes.ask({ query: "a", limit: 1 }),
    lanes.ask({ query: "b", limit: 2 }),
  ]);
  assert.deepEqual(again.map(text), ["a|1|-", "b|2|-"]);
});

Deno.test("a search that finds no free lane, or does not fit one, is refused (the caller posts it instead)", async () => {
  const lanes = smallLanes();
  assert.equal(lanes.ask({ query: "x".repeat(64), limit: 1 }), null);
  const busy = [lanes.ask({ query: "a", limit: 1 }), lanes.ask({ query: "b", limit: 1 })];
  assert.equal(lanes.ask({ query: "c", limit: 1 }), null);
  assert.deepEqual((await Promise.all(busy)).map(text), ["a|1|-", "b|1|-"]);
  assert.equal(text(await lanes.ask({ query: "c", limit: 1 })), "c|1|-");
});

Deno.test("a lane no worker answers stays taken: a late answer cannot land in a reused lane", async () => {
  const lanes = new SearchLanes(1, 64); // nobody serves it
  let settled = false;
  lanes.ask({ query: "a", limit: 1 })!.then(() => settled = true);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(settled, false);
  assert.equal(lanes.ask({ query: "b", limit: 1 }), null);
});

Deno.test("abandoned lanes end their waits without settling them, and take no more searches", async () => {
  const lanes = new SearchLanes(2, 64); // nobody serves it
  let settled = 0;
  for (const query of ["a", "b"]) lanes.ask({ query, limit: 1 })!.then(() => settled++);
  assert.equal(lanes.abandon(), 2); // both waits were held and are released
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(settled, 0); // their owner failed those searches already
  assert.equal(lanes.abandon(), 0);
  const fresh = new SearchLanes(2, 64);
  fresh.abandon();
  assert.equal(fresh.ask({ query: "c", limit: 1 }), null);
});
