/**
 * `deno task build:extension`: bundles the extension's TypeScript with esbuild into
 * `extension/dist/` (load it unpacked from there) and writes `extension/dist.zip` for the store.
 * The same `dist/` is the web app the server serves at `/` (its `index.html` comes from `web/`),
 * so the browser UI exists once.
 *
 *   deno run -A extension/build.ts [--out DIR] [--no-zip] [--dev]
 * @module
 */
import * as esbuild from "esbuild";
import { parseArgs } from "node:util";
import { crc32, deflateRawSync } from "node:zlib";

const HERE = decodeURIComponent(new URL("./", import.meta.url).pathname).replace(/\/$/, "");
const ROOT = HERE.replace(/\/extension$/, "");

/** Injected with `chrome.scripting.executeScript`, which needs one classic script. */
const CLASSIC_ENTRIES = ["content"];

/**
 * Every `src/*.ts` is an entry (a page's script, the service worker, an offscreen document):
 * built as ES modules that share chunks, except the classic scripts above.
 */
function moduleEntries(): string[] {
  const names: string[] = [];
  for (const entry of Deno.readDirSync(`${HERE}/src`)) {
    if (!entry.isFile || !entry.name.endsWith(".ts") || entry.name.endsWith("_test.ts")) continue;
    const name = entry.name.slice(0, -3);
    if (!CLASSIC_ENTRIES.includes(name)) names.push(name);
  }
  return names.sort();
}

/** What a build produced. */
export interface BuildResult {
  outDir: string;
  zipPath: string | null;
  files: string[];
}

/**
 * Builds the extension into `outDir` (default `extension/dist`) and, unless `zip` is false, a
 * store zip beside it.
 */
export async function buildExtension(
  options: { outDir?: string; zip?: boolean; minify?: boolean } = {},
): Promise<BuildResult> {
  const outDir = options.outDir ?? `${HERE}/dist`;
  await Deno.remove(outDir, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await Deno.mkdir(outDir, { recursive: true });
  const common: esbuild.BuildOptions = {
    bundle: true,
    minify: options.minify ?? true,
    sourcemap: "linked",
    target: ["chrome120"],
    logLevel: "warning",
    legalComments: "none",
    nodePaths: [`${ROOT}/node_modules`],
    absWorkingDir: ROOT,
  };
  try {
    await esbuild.build({
      ...common,
      entryPoints: Object.fromEntries(moduleEntries().map((name) => [name, `${HERE}/src/${name}.ts`])),
      format: "esm",
      splitting: true,
      outdir: outDir,
      chunkNames: "chunks/[name]-[hash]",
    });
    await esbuild.build({
      ...common,
      entryPoints: Object.fromEntries(CLASSIC_ENTRIES.map((name) => [name, `${HERE}/src/${name}.ts`])),
      format: "iife",
      outdir: outDir,
    });
  } finally {
    await esbuild.stop();
  }
  for await (const entry of Deno.readDir(`${HERE}/static`)) {
    if (entry.isFile) await Deno.copyFile(`${HERE}/static/${entry.name}`, `${outDir}/${entry.name}`);
  }
  // The web app's entry page: same bundle, served by the server at `/`.
  await Deno.copyFile(`${ROOT}/web/index.html`, `${outDir}/index.html`);
  const files = await listFiles(outDir);
  let zipPath: string | null = null;
  if (options.zip ?? true) {
    zipPath = `${outDir.replace(/\/$/, "")}.zip`;
    // The store package leaves out source maps and the web app page.
    const packed = files.filter((f) => !f.endsWith(".map") && f !== "index.html");
    const entries = await Promise.all(
      packed.map(async (name) => ({ name, data: await Deno.readFile(`${outDir}/${name}`) })),
    );
    await Deno.writeFile(zipPath, zipArchive(entries));
  }
  return { outDir, zipPath, files };
}

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(`${dir}/${prefix}`)) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) out.push(...await listFiles(dir, rel));
    else if (entry.isFile) out.push(rel);
  }
  return out.sort();
}

/** A minimal deflate zip (what the Chrome Web Store accepts), with a fixed timestamp so builds repeat. */
export function zipArchive(entries: { name: string; data: Uint8Array }[]): Uint8Array {
  const encoder = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  const DOS_TIME = 0;
  const DOS_DATE = (1 << 5) | 1 | ((2020 - 1980) << 9);
  for (const entry of entries) {
    const name = encoder.encode(entry.name);
    const compressed = new Uint8Array(deflateRawSync(entry.data));
    const crc = crc32(entry.data) >>> 0;
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, 8, true);
    lv.setUint16(10, DOS_TIME, true);
    lv.setUint16(12, DOS_DATE, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, compressed.length, true);
    lv.setUint32(22, entry.data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const central = new Uint8Array(46 + name.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(10, 8, true);
    cv.setUint16(12, DOS_TIME, true);
    cv.setUint16(14, DOS_DATE, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, compressed.length, true);
    cv.setUint32(24, entry.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    central.set(name, 46);
    locals.push(local, compressed);
    centrals.push(central);
    offset += local.length + compressed.length;
  }
  const centralSize = centrals.reduce((n, c) => n + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, centralSize, true);
  ev.setUint32(16, offset, true);
  const all = [...locals, ...centrals, end];
  const out = new Uint8Array(all.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of all) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { out: { type: "string" }, "no-zip": { type: "boolean" }, dev: { type: "boolean" } },
    strict: true,
  });
  const began = performance.now();
  const result = await buildExtension({ outDir: values.out, zip: !values["no-zip"], minify: !values.dev });
  console.error(
    `build:extension: ${result.files.length} files in ${result.outDir}${result.zipPath ? `, ${result.zipPath}` : ""} (${
      Math.round(performance.now() - began)
    } ms)`,
  );
}
