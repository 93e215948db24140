import { DEFAULT_PORT, MODES } from "../config/mod.ts";

const MAIN = `tabagent — a local-first AI server for your browser

Usage:
  tabagent [command] [options]

Commands:
  serve          Run the server (the default command)
  token          Print the API token clients send as 'Authorization: Bearer <token>'
  install-host   Register the native-messaging host with Chrome, Chromium, Edge and Brave
  doctor         Report hardware (CPU, RAM, GPUs, NPUs) and check the inference backends
  models         List, pull (download) and remove models: models list | pull <org/name> | rm <org/name>
  login          Store a Hugging Face token for gated or private models
  backup <dir>   Write a consistent, checksummed backup of the memory stores into a new folder
  restore <dir>  Verify a backup and swap it in for the memory stores
  memory stats   Counts per store, the embedding backlog and the vector indexes' state
  help <command> Show help for a command

Options:
  -h, --help     Show help
  -V, --version  Print the version

Examples:
  tabagent serve                     # http://127.0.0.1:${DEFAULT_PORT}, every component
  tabagent serve --mode http --port 9000 --no-ml
  tabagent install-host              # once, so the extension can find the server
  curl -H "Authorization: Bearer $(tabagent token)" http://127.0.0.1:${DEFAULT_PORT}/v1/models

Every option can also be set in the environment as TABAGENT_<NAME> (e.g. TABAGENT_PORT=9000);
flags win over the environment.`;

const SERVE = `tabagent serve — run the server

Usage:
  tabagent serve [options]

Options:
  -m, --mode <mode>            ${MODES.join(" | ")} (default: all)
      --host <host>            Address to bind (default: 127.0.0.1)
  -p, --port <port>            Port, 0 for any free one (default: ${DEFAULT_PORT})
      --data-dir <dir>         Root of all data (default: per platform, e.g. ~/.local/share/TabAgent)
      --db-path <dir>          Memory databases (default: <data-dir>/tabagent_db)
      --model-cache-path <dir> Downloaded models (default: <data-dir>/models)
      --static-dir <dir>       Files served at / in modes web and all (default: the built extension/dist)
      --log-level <level>      debug | info | warn | error (default: info)
      --log-format <format>    auto | text | json: auto is readable text on a terminal, JSON lines otherwise
      --no-ml                  Do not start the Python ML service
      --ml-workers <n>         Local Python ML worker processes (default: 1; 0 with --ml-worker: remote only)
      --ml-worker <host:port>  Also use this remote ML worker (repeatable; TLS + token off loopback)
      --ml-dispatch <policy>   least-loaded | round-robin (default: least-loaded)
      --no-auth                No API token (refused unless bound to loopback)
      --origin <origin>        Also allow this CORS origin (repeatable)
      --allowed-host <name>    Also accept this Host header (repeatable)
      --allow-anonymous-local  Serve Ollama's chat, generate, embed, tags, show, ps and version routes
                               without the token (loopback only; never memory, pull, delete or files)
      --memory-backend <kind>  local | grpc: how components reach memory (default: local)
      --memory-grpc-address <a>
                               Where the memory gRPC service listens: unix:<path> or 127.0.0.1:<port>
                               (default: unix:<data-dir>/memory.sock)
      --parallel <n>           Requests one chat model generates at once, decoded together (default: 4)
      --prompt-cache <n>       Idle conversations per chat model whose prompt state is kept, so their next
                               turn skips the history (default: 4; fewer if the memory budget is short)
      --weaver <mode>          rules | model | off: how the knowledge graph is extracted from your messages
                               (default: rules; model uses --weaver-model with JSON-schema output)
      --weaver-model <id>      The GGUF chat model the model path extracts with
                               (default: HuggingFaceTB/SmolLM2-135M-Instruct-GGUF)
      --weaver-merge-threshold <x>
                               Name-embedding similarity at which entities merge (0.5-1, default: 0.85)
      --llama-addon <path>     A llama-addon.node built here (deno run -A scripts/llama_native.ts), or
                               'prebuilt' (default: the one setup built, if any, else prebuilt); the
                               prebuilt binding serves if it cannot load
      --llama-threads <n>      llama.cpp threads per chat model, instead of the policy that tabagent
                               doctor shows (default: from cores and the machine's load)

Modes:
  all      everything (default)     web     HTTP API + static files + tab video (WebRTC)
  http     HTTP API only            webrtc  WebRTC signaling and sessions
  native   Chrome native-messaging host on stdin/stdout

Examples:
  tabagent serve --port 9000 --log-level debug
  TABAGENT_ORIGINS=http://localhost:5173 tabagent serve --mode http`;

const TOKEN = `tabagent token — print the API token

Usage:
  tabagent token [--data-dir <dir>]

The token is created at first start and kept with mode 0600 in <data-dir>/api_token.

Example:
  curl -H "Authorization: Bearer $(tabagent token)" http://127.0.0.1:${DEFAULT_PORT}/metrics`;

const INSTALL_HOST = `tabagent install-host — register the native-messaging host

Usage:
  tabagent install-host [--browser <name>]... [--uninstall]

Browsers: chrome, chromium, edge, brave (default: all of them).
Writes the host manifest 'dev.tabagent.host.json' into each browser's NativeMessagingHosts folder;
--uninstall removes it again.

Examples:
  tabagent install-host
  tabagent install-host --browser chromium --uninstall`;

const DOCTOR = `tabagent doctor — check this machine for local inference

Usage:
  tabagent doctor [--data-dir <dir>] [--model-cache-path <dir>] [--port <port>] [--no-ml] [--llama-addon <path>]
                  [--llama-threads <n>]

Prints CPU, memory, GPUs with VRAM, NPUs and usable acceleration, the threads and memory budget
the server will use, then checks that llama.cpp and ONNX Runtime load and lists cached models.
It also starts the Python ML service once (time to SERVING, versions) and shows the ML state of a
server running on --port (workers, restarts, an open breaker). Exit code 1 when a check fails.

Example:
  tabagent doctor`;
const MODELS = `tabagent models — list, pull and remove models

Usage:
  tabagent models list [--json]
  tabagent models pull <org/name>[:QUANT]... [--revision <rev>] [--include <glob>]... [--connections <n>]
  tabagent models rm <org/name>...
  tabagent models verify [<org/name>...]

If a server is running (at --host/--port, default 127.0.0.1:${DEFAULT_PORT}, or --server <url>), the
command asks it, with the token from <data-dir>/api_token: the server's downloads, progress and
cache are the ones you see. With no server running, or with --local, it works on the model cache
directly (<data-dir>/models, or --model-cache-path).

pull downloads from the Hugging Face Hub (HF_ENDPOINT, default https://huggingface.co) with 8
parallel connections per file (--connections), verifies every file's sha256 (or git blob id), and
resumes where an interrupted pull stopped. Ctrl-C cancels; run the same command again to resume.
Catalog models fetch their listed files; GGUF repos fetch one quantisation (default Q4_K_M, or
:QUANT); others fetch every file but alternative-framework weights (--include to choose).
A progress bar is shown on a terminal, plain progress lines otherwise.
verify re-hashes every file of the named models (default: every downloaded model) against the
sha256 recorded when it was pulled, lists damaged or missing files, and marks such a model
incomplete so the next pull fetches them again; it exits 1 when any file is wrong.

Options:
      --local                  Work on the cache directly, even if a server runs
      --server <url>           Server to talk to (default http://<host>:<port>)
  -r, --revision <rev>         Branch, tag or commit (default: the catalog's pin, else main)
      --include <glob>         Files to fetch (repeatable), e.g. 'onnx/*' or '*.gguf'
  -c, --connections <n>        Parallel Range requests per file, 1–32 (default 8)
      --json                   list: print JSON (the /v1/models shape)
      --data-dir <dir>         Root of all data
      --model-cache-path <dir> Downloaded models (default: <data-dir>/models)

Examples:
  tabagent models pull Qwen/Qwen2.5-0.5B-Instruct-GGUF
  tabagent models pull bartowski/SmolLM2-360M-Instruct-GGUF:Q8_0
  tabagent models pull sentence-transformers/all-MiniLM-L6-v2 --include 'onnx/model.onnx' --include '*.json'
  tabagent models list
  tabagent models rm Qwen/Qwen2.5-0.5B-Instruct-GGUF`;

const LOGIN = `tabagent login — store a Hugging Face token

Usage:
  tabagent login [--no-verify] [--remove]

Reads the token from the terminal without echoing it (or from stdin when piped), checks it with the
Hub (HF_ENDPOINT/api/whoami-v2) unless --no-verify, and stores it with mode 0600 in
<data-dir>/hf_token. The token is never printed or logged. HF_TOKEN in the environment wins over
the stored one. The token is sent only to the Hub itself, never to the download CDN it redirects to.

Options:
      --no-verify   Store without asking the Hub (e.g. offline)
      --remove      Delete the stored token

Examples:
  tabagent login
  echo "$MY_HF_TOKEN" | tabagent login`;
const BACKUP = `tabagent backup — back up the memory stores

Usage:
  tabagent backup <dir> [--data-dir <dir>] [--db-path <dir>]

Writes all seven memory databases as one consistent snapshot into <dir> (new or empty), with
manifest.json holding each file's size and SHA-256. When a server is running it makes the backup
(writes pause for the moment the copy takes); otherwise the files are read directly.

Example:
  tabagent backup ~/tabagent-backups/$(date +%F)`;

const RESTORE = `tabagent restore — restore the memory stores from a backup

Usage:
  tabagent restore <dir> [--data-dir <dir>] [--db-path <dir>]

Verifies the manifest and every checksum first; a damaged backup is refused and nothing changes.
Then the live files are swapped for the backup's (the previous ones are kept in <db-path>/.previous).
A running server does the swap itself, pausing memory requests for the moment it takes.

Example:
  tabagent restore ~/tabagent-backups/2025-01-31`;

const MEMORY = `tabagent memory — look into the memory stores

Usage:
  tabagent memory stats [--json] [--data-dir <dir>] [--db-path <dir>]

Shows how many conversations, messages, kept pages (documents), facts, tool results, … the memory
holds, how many items still wait to be embedded (by kind) and the outbox backlog, and for each
embedding model its vector index: vectors stored, indexed, open in the server or saved, and how
many changes it has still to catch up. A running server answers itself; otherwise the store files
are read read-only (nothing is created or changed). --json prints every figure as one JSON object.

Example:
  tabagent memory stats --json | jq .pending_embeddings`;

/** Help text for a topic (a command), or the main help. Null for an unknown topic. */
export function helpText(topic?: string): string | null {
  switch (topic) {
    case undefined:
      return MAIN;
    case "serve":
      return SERVE;
    case "token":
      return TOKEN;
    case "install-host":
      return INSTALL_HOST;
    case "doctor":
      return DOCTOR;
    case "models":
      return MODELS;
    case "login":
      return LOGIN;
    case "backup":
      return BACKUP;
    case "restore":
      return RESTORE;
    case "memory":
      return MEMORY;
    default:
      return null;
  }
}
