/**
 * `deno task build`: `deno compile` to `dist/tabagent`, one binary with the docs assets and web
 * files inside. `deno compile` needs its runtime (`denort`), which it downloads by default; where
 * that is impossible, point `DENORT_BIN` at a local copy. Without one this fails with a clear
 * message instead of a network error.
 *
 * The payload stays lean: other platforms' native packages and dev-only packages are excluded.
 * @module
 */
import { SERVER_V8_FLAGS } from "../server/config/mod.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");

const denort = Deno.env.get("DENORT_BIN");
if (!denort) {
  console.error(
    "build: deno compile needs its runtime 'denort', which it downloads from the internet, and no download is " +
      "possible here. Set DENORT_BIN to a local denort binary for Deno " + Deno.version.deno +
      " (e.g. DENORT_BIN=/opt/denort deno task build).",
  );
  Deno.exit(1);
}
try {
  const info = await Deno.stat(denort);
  if (!info.isFile) throw new Error("not a file");
} catch {
  console.error(`build: DENORT_BIN=${denort} is not a readable file`);
  Deno.exit(1);
}

const platform = `${Deno.build.os === "windows" ? "win" : Deno.build.os === "darwin" ? "mac" : "linux"}-${
  Deno.build.arch === "x86_64" ? "x64" : "arm64"
}`;
const ortOs = { linux: "linux", darwin: "darwin", windows: "win32" }[Deno.build.os as "linux"] ?? Deno.build.os;

async function listDir(path: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(path)) names.push(entry.name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return names;
}

const excludes: string[] = [];
for (const name of await listDir(`${ROOT}/node_modules/@node-llama-cpp`)) {
  // `-cuda-ext` bundles its own CUDA runtime (357 MB); GPU users have CUDA, and `-cuda` uses theirs.
  if (!name.startsWith(platform) || name.endsWith("-cuda-ext")) excludes.push(`node_modules/@node-llama-cpp/${name}`);
}
for (const name of await listDir(`${ROOT}/node_modules/onnxruntime-node/bin/napi-v6`)) {
  if (name !== ortOs) excludes.push(`node_modules/onnxruntime-node/bin/napi-v6/${name}`);
}
const pkg = JSON.parse(await Deno.readTextFile(`${ROOT}/package.json`));
for (const dev of Object.keys(pkg.devDependencies ?? {})) excludes.push(`node_modules/${dev}`);
for (const name of await listDir(`${ROOT}/node_modules/@esbuild`)) excludes.push(`node_modules/@esbuild/${name}`);

/**
 * Worker entry modules (files named `_*worker.ts` under `server/`): each is started from a URL at run time, which
 * `deno compile` does not follow, so every one is included by name.
 */
async function workerModules(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(`${ROOT}/${dir}`)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) found.push(...await workerModules(path));
    else if (/^_.*worker\.ts$/.test(entry.name)) found.push(path);
  }
  return found.sort();
}
const workers = await workerModules("server");

const target = Deno.build.os === "windows" ? "dist/tabagent.exe" : "dist/tabagent";
const args = [
  "compile",
  "-A",
  `--v8-flags=${SERVER_V8_FLAGS}`,
  "--output",
  target,
  "--include",
  "extension/dist",
  "--include",
  "node_modules/swagger-ui-dist/swagger-ui.css",
  "--include",
  "node_modules/swagger-ui-dist/swagger-ui-bundle.js",
  "--include",
  "node_modules/redoc/bundles/redoc.standalone.js",
  "--include",
  "node_modules/@scalar/api-reference/dist/browser/standalone.js",
  ...workers.flatMap((path) => ["--include", path]),
  ...excludes.flatMap((path) => ["--exclude", path]),
  "server/main.ts",
];
console.error(
  `build: deno ${
    args.slice(0, 4).join(" ")
  } … (${workers.length} worker modules included, ${excludes.length} paths excluded)`,
);
const { code } = await new Deno.Command(Deno.execPath(), {
  args,
  cwd: ROOT,
  env: { DENORT_BIN: denort },
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (code === 0) console.error(`build: wrote ${target}`);
Deno.exit(code);
