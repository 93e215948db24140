/**
 * `deno task install`: puts a `tabagent` command on PATH through a `deno install -g` shim.
 *
 *   deno run -A scripts/install.ts [--root DIR] [--uninstall]
 *
 * `deno install` writes a shim that runs `deno` by name; when Deno came from `npx` there is no
 * `deno` on PATH, so a copy of this Deno binary goes beside the shim and the shim calls it by path.
 * @module
 */
import { parseArgs } from "node:util";
import { SERVER_V8_FLAGS } from "../server/config/mod.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
const { values } = parseArgs({
  args: Deno.args,
  options: { root: { type: "string" }, uninstall: { type: "boolean", default: false } },
  strict: true,
});
const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
const installRoot = values.root ?? Deno.env.get("DENO_INSTALL_ROOT") ?? `${home}/.deno`;
const binDir = `${installRoot}/bin`;
const windows = Deno.build.os === "windows";
const shim = `${binDir}/tabagent${windows ? ".cmd" : ""}`;

async function deno(args: string[]): Promise<void> {
  const { success, code } = await new Deno.Command(Deno.execPath(), { args, stdout: "inherit", stderr: "inherit" })
    .output();
  if (!success) {
    console.error(`install: 'deno ${args.join(" ")}' failed with exit code ${code}`);
    Deno.exit(1);
  }
}

if (values.uninstall) {
  await deno(["uninstall", "-g", "--root", installRoot, "tabagent"]);
  Deno.exit(0);
}

await deno([
  "install",
  "-g",
  "-A",
  "-f",
  `--v8-flags=${SERVER_V8_FLAGS}`,
  "-n",
  "tabagent",
  "--root",
  installRoot,
  "--config",
  `${ROOT}/deno.json`,
  `${ROOT}/server/main.ts`,
]);

if (!windows) {
  // Pin the Deno that installed us, so the shim works without `deno` on PATH.
  const pinned = `${binDir}/tabagent-deno`;
  await Deno.copyFile(Deno.execPath(), `${pinned}.tmp`);
  await Deno.chmod(`${pinned}.tmp`, 0o755);
  await Deno.rename(`${pinned}.tmp`, pinned);
  const text = await Deno.readTextFile(shim);
  await Deno.writeTextFile(shim, text.replace(/^exec deno /m, `exec '${pinned}' `));
}

const onPath = (Deno.env.get("PATH") ?? "").split(windows ? ";" : ":").includes(binDir);
console.error(`install: 'tabagent' installed at ${shim}`);
if (!onPath) console.error(`install: add it to PATH:  export PATH="${binDir}:$PATH"`);
console.error("install: next, run 'tabagent install-host' once so the extension can find the server");
