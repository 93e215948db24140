import assert from "node:assert/strict";
import { MEMORY_MAX_QUERY_LENGTH, MEMORY_MAX_SEARCH_LIMIT } from "../config/mod.ts";
import { plainSearchOptions, SearchOptionsSchema } from "./types.ts";

/** The fields with a value (zod keeps a key given as undefined; nothing reads the difference). */
const valued = (value: unknown) =>
  value && Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));

Deno.test("plainSearchOptions accepts only what SearchOptionsSchema accepts, and gives what it parses", () => {
  const long = "x".repeat(MEMORY_MAX_QUERY_LENGTH);
  const usual: unknown[] = [
    { query: "train lyon" },
    { query: "train", limit: 10 },
    { query: "t", limit: 1, match: "any" },
    { query: long, limit: MEMORY_MAX_SEARCH_LIMIT, conversationId: "conv_x", match: "all" },
    { query: "train", limit: undefined, conversationId: undefined, match: undefined },
    { query: "train", extra: "dropped" },
  ];
  const others: unknown[] = [
    null,
    "train",
    [],
    {},
    { query: "" },
    { query: long + "x" },
    { query: 5 },
    { query: "a", limit: 0 },
    { query: "a", limit: MEMORY_MAX_SEARCH_LIMIT + 1 },
    { query: "a", limit: 1.5 },
    { query: "a", limit: "5" },
    { query: "a", limit: Number.NaN },
    { query: "a", limit: Infinity },
    { query: "a", limit: null },
    { query: "a", conversationId: "" },
    { query: "a", conversationId: "c".repeat(201) },
    { query: "a", conversationId: 7 },
    { query: "a", match: "some" },
    { query: "a", match: null },
  ];
  for (const input of usual) {
    const plain = plainSearchOptions(input);
    assert.ok(plain, JSON.stringify(input));
    assert.deepEqual(plain, valued(SearchOptionsSchema.parse(input)), JSON.stringify(input));
  }
  for (const input of others) {
    const plain = plainSearchOptions(input);
    const parsed = SearchOptionsSchema.safeParse(input);
    if (plain !== undefined) assert.deepEqual(plain, valued(parsed.data), JSON.stringify(input));
    else assert.equal(parsed.success, false, `refused in place but valid: ${JSON.stringify(input)}`);
  }
});
