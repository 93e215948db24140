/** `deno task install` gives a working `tabagent` command, even with no `deno` on PATH. */
import assert from "node:assert/strict";

const INSTALL = new URL("../scripts/install.ts", import.meta.url).pathname;

Deno.test("the installed tabagent shim runs without deno on PATH", async () => {
  const root = await Deno.makeTempDir();
  const install = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", INSTALL, "--root", root],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(install.code, 0, new TextDecoder().decode(install.stderr));
  const run = await new Deno.Command(`${root}/bin/tabagent`, {
    args: ["--version"],
    env: { PATH: "/usr/bin:/bin" },
    clearEnv: true,
    stdout: "piped",
  }).output();
  assert.equal(run.code, 0);
  assert.match(new TextDecoder().decode(run.stdout), /^tabagent \d+\.\d+\.\d+/);
  await Deno.remove(root, { recursive: true });
});

Deno.test("every launcher runs the server with the same V8 flags", async () => {
  const { SERVER_V8_FLAGS } = await import("../server/config/mod.ts");
  const tasks = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).tasks;
  for (const task of ["serve", "tabagent"]) {
    assert.match(tasks[task], new RegExp(`--v8-flags=${SERVER_V8_FLAGS}`), `deno task ${task}`);
  }
  const root = await Deno.makeTempDir();
  const install = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", INSTALL, "--root", root],
    stdout: "null",
    stderr: "null",
  }).output();
  assert.equal(install.code, 0);
  assert.match(await Deno.readTextFile(`${root}/bin/tabagent`), new RegExp(`--v8-flags=${SERVER_V8_FLAGS}`));
  await Deno.remove(root, { recursive: true });
});
