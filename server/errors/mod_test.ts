import assert from "node:assert/strict";
import { z } from "zod";
import { validationError } from "./mod.ts";

function explained(schema: z.ZodType, value: unknown) {
  const parsed = schema.safeParse(value);
  assert.ok(!parsed.success);
  return validationError("request body", parsed.error.issues).extensions.errors;
}

Deno.test("a failed union names the fields of the alternative the value came closest to", () => {
  const content = z.object({
    content: z.union([z.string(), z.array(z.object({ type: z.literal("text"), text: z.string() }))]),
  });
  // An array with a bad part: the array alternative, not "expected string".
  assert.deepEqual(explained(content, { content: [{ type: "image_url" }] }), [
    { field: "content.0.type", message: 'Invalid input: expected "text"' },
    { field: "content.0.text", message: "Invalid input: expected string, received undefined" },
  ]);
  // Neither model nor name: the first alternative's missing field.
  const named = z.union([z.object({ model: z.string() }), z.object({ name: z.string() })]);
  assert.deepEqual(explained(named, {}), [{
    field: "model",
    message: "Invalid input: expected string, received undefined",
  }]);
  // Plain issues are reported as they are.
  assert.deepEqual(explained(z.object({ n: z.number() }), { n: "1" }), [{
    field: "n",
    message: "Invalid input: expected number, received string",
  }]);
});
