/** `deno task build` without a local `denort` fails clearly instead of trying the network. */
import assert from "node:assert/strict";

const BUILD = new URL("../scripts/build.ts", import.meta.url).pathname;

Deno.test("build without DENORT_BIN explains what is missing", async () => {
  const env = Deno.env.toObject();
  delete env.DENORT_BIN;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", BUILD],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  assert.match(new TextDecoder().decode(out.stderr), /DENORT_BIN/);
});

Deno.test("build with a DENORT_BIN that does not exist says so", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", BUILD],
    env: { DENORT_BIN: "/nonexistent/denort" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  assert.match(new TextDecoder().decode(out.stderr), /not a readable file/);
});
