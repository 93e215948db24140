/**
 * Builds usearch's Node binding from the installed package's own sources (`node_modules/usearch`:
 * binding.gyp, javascript/lib.cpp, include/, numkong/) with one method added to `CompiledIndex`,
 * `changeExpansionSearch(ef)` (see `server/memory/index/usearch_native.ts` for why), into the
 * machine's TabAgent cache. Setup runs it; where it fails the prebuilt binding serves.
 *
 * The package's sources are copied to a scratch folder and lib.cpp is patched there (two
 * insertions, each checked, and the method appended: a usearch whose lib.cpp no longer matches fails the build rather than
 * building something else); node-gyp is npm's bundled one, pointed at the installed Node's headers
 * (offline it cannot download them). About two minutes on two cores, mostly numkong's kernels.
 *
 *   deno run -A scripts/usearch_native.ts      # prints the binding's path; g++, make and node needed
 * @module
 */
import { runAtLowestPriority } from "./low_priority.ts";
import { pathExists } from "../server/fs/mod.ts";
import { usearchNativeDir, usearchNativeStamp, usearchVersion } from "../server/memory/index/usearch_native.ts";

const NODE_MODULES = decodeURIComponent(new URL("../node_modules/", import.meta.url).pathname);

/** The edits to lib.cpp: after each anchor, the text to insert. */
export const LIB_PATCHES: { after: string; insert: string }[] = [
  {
    after: "    Napi::Value Search(Napi::CallbackInfo const& ctx);\n",
    insert: "    void ChangeExpansionSearch(Napi::CallbackInfo const& ctx);\n",
  },
  {
    after: '            InstanceMethod("search", &CompiledIndex::Search),\n',
    insert: '            InstanceMethod("changeExpansionSearch", &CompiledIndex::ChangeExpansionSearch),\n',
  },
];

/** The method's definition, appended to lib.cpp. */
const CHANGE_EXPANSION_SEARCH = `
void CompiledIndex::ChangeExpansionSearch(Napi::CallbackInfo const& ctx) {
    if (ctx.Length() != 1 || !ctx[0].IsNumber() || ctx[0].As<Napi::Number>().DoubleValue() < 1) {
        Napi::TypeError::New(ctx.Env(), "\`changeExpansionSearch\` expects a positive number").ThrowAsJavaScriptException();
        return;
    }
    native_->change_expansion_search(napi_argument_to_size(ctx[0]));
}
`;

/** lib.cpp with the method added; throws when an anchor is missing. */
export function patchLibCpp(source: string): string {
  let patched = source;
  for (const { after, insert } of LIB_PATCHES) {
    const at = patched.indexOf(after);
    if (at < 0) throw new Error(`usearch's lib.cpp changed: '${after.trim()}' not found`);
    patched = patched.slice(0, at + after.length) + insert + patched.slice(at + after.length);
  }
  return patched + CHANGE_EXPANSION_SEARCH;
}

const run = runAtLowestPriority;

async function npmPrefix(): Promise<string> {
  const { stdout } = await new Deno.Command("npm", { args: ["prefix", "-g"], stdout: "piped", stderr: "null" })
    .output();
  return new TextDecoder().decode(stdout).trim();
}

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (entry.isDirectory) await copyTree(`${from}/${entry.name}`, `${to}/${entry.name}`);
    else if (entry.isFile) await Deno.copyFile(`${from}/${entry.name}`, `${to}/${entry.name}`);
  }
}

/** Builds the binding unless a current one is there; returns its path. */
export async function buildUsearchNative(note: (message: string) => void = () => {}): Promise<string> {
  const version = usearchVersion();
  const dir = usearchNativeDir(version);
  const binding = `${dir}/usearch.node`;
  const stamp = usearchNativeStamp(version);
  if (await pathExists(binding) && await Deno.readTextFile(`${dir}/stamp`).catch(() => "") === stamp) return binding;
  const scratch = await Deno.makeTempDir({ prefix: "tabagent-usearch-build-" });
  try {
    const source = `${NODE_MODULES}usearch`;
    for (const part of ["binding.gyp", "javascript/lib.cpp"]) {
      await Deno.mkdir(`${scratch}/${part.split("/").slice(0, -1).join("/") || "."}`, { recursive: true });
      await Deno.copyFile(`${source}/${part}`, `${scratch}/${part}`);
    }
    await copyTree(`${source}/include`, `${scratch}/include`);
    await copyTree(`${source}/numkong`, `${scratch}/numkong`);
    await Deno.writeTextFile(
      `${scratch}/javascript/lib.cpp`,
      patchLibCpp(await Deno.readTextFile(`${source}/javascript/lib.cpp`)),
    );
    // binding.gyp asks Node for node-addon-api's paths from the build folder
    await Deno.mkdir(`${scratch}/node_modules`);
    await Deno.symlink(`${NODE_MODULES}node-addon-api`, `${scratch}/node_modules/node-addon-api`);
    const prefix = await npmPrefix();
    const args = [`${prefix}/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js`, "rebuild", "-j", "2"];
    if (await pathExists(`${prefix}/include/node/node.h`)) args.push(`--nodedir=${prefix}`);
    note(`building usearch ${version}'s binding with changeExpansionSearch (once; ~2 min on 2 cores)`);
    await run("node", args, scratch);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.copyFile(`${scratch}/build/Release/usearch.node`, `${binding}.tmp`);
    await Deno.rename(`${binding}.tmp`, binding);
    await Deno.writeTextFile(`${dir}/stamp`, stamp);
    return binding;
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
}

if (import.meta.main) console.log(await buildUsearchNative((message) => console.error(message)));
