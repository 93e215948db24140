import { DEFAULT_PORT, MODES } from "../config/mod.ts";

const MAIN = `tabagent — a local-first AI server for your browser

Usage:
  tabagent [command] [options]

Commands:
  serve          Run the server (the default command)
  token          Print the API token clients send as 'Authorization: Bearer <token>'
  install-host   Register the native-messaging host with Chrome, Chromium, Edge and Brave
  doctor         Report hardware (CPU, RAM, GPUs, NPUs) and check the inference backends
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
      --static-dir <dir>       Files served at / in modes web and all
      --log-level <level>      debug | info | warn | error (default: info)
      --no-ml                  Do not start the Python ML service
      --no-auth                No API token (refused unless bound to loopback)
      --origin <origin>        Also allow this CORS origin (repeatable)
      --allowed-host <name>    Also accept this Host header (repeatable)

Modes:
  all      web + webrtc (default)   web     HTTP API + static files
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
  tabagent doctor [--data-dir <dir>] [--model-cache-path <dir>]

Prints CPU, memory, GPUs with VRAM, NPUs and usable acceleration, the threads and memory budget
the server will use, then checks that llama.cpp and ONNX Runtime load and lists cached models.
Exit code 1 when a check fails.

Example:
  tabagent doctor`;

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
    default:
      return null;
  }
}
