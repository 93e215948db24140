import assert from "node:assert/strict";
import { FrameAssembler, parseSettings } from "./native.ts";

Deno.test("chunk frames are joined back into the frame they came from", () => {
  const original = { id: 7, ok: true, result: { text: "é".repeat(10) } };
  const json = JSON.stringify(original);
  const assembler = new FrameAssembler();
  const cut = [json.slice(0, 5), json.slice(5, 20), json.slice(20)];
  assert.equal(assembler.push({ id: 7, chunk: { index: 0, count: 3, data: cut[0] } }), null);
  assert.equal(assembler.push({ id: 8, ok: true, result: 1 })?.result, 1);
  assert.equal(assembler.push({ id: 7, chunk: { index: 1, count: 3, data: cut[1] } }), null);
  assert.deepEqual(assembler.push({ id: 7, chunk: { index: 2, count: 3, data: cut[2] } }), original);
  assert.throws(() => assembler.push({ id: 9, chunk: { index: 1, count: 2, data: "x" } }), /out of order/);
});

Deno.test("settings fill defaults and survive junk", () => {
  assert.equal(parseSettings(undefined).autoStart, true);
  assert.equal(parseSettings({ temperature: 9 }).temperature, 0.7);
  assert.equal(parseSettings({ theme: "dark" }).theme, "dark");
});
