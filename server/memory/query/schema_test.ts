import assert from "node:assert/strict";
import { MEMORY_MAX_EMBEDDING_DIMENSIONS } from "../../config/mod.ts";
import { isQueryVector, MemoryQuerySchema } from "./schema.ts";

Deno.test("isQueryVector: the schema's verdict on a vector, without copying it", () => {
  const candidates: unknown[] = [
    [0.1, -0.2, 0.3],
    [0],
    [],
    [NaN, 1],
    [1, Infinity],
    // float32's range: a vector is stored and compared as float32, where these would be Infinity
    [3.4e38, -3.4e38],
    [2.34e134],
    [-1e39],
    ["0.5"],
    [null],
    "1,2,3",
    undefined,
    new Array(MEMORY_MAX_EMBEDDING_DIMENSIONS).fill(0.5),
    new Array(MEMORY_MAX_EMBEDDING_DIMENSIONS + 1).fill(0.5),
  ];
  for (const vector of candidates) {
    const schema = vector !== undefined && MemoryQuerySchema.safeParse({ query: "x", vector }).success;
    assert.equal(isQueryVector(vector), schema, JSON.stringify(vector)?.slice(0, 40));
  }
});
