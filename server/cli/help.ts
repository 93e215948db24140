import { DEFAULT_PORT, MODES } from "../config/mod.ts";

const MAIN = `tabagent — a local-first AI server for your browser

Usage:
  tabagent [command] [options]

Commands:
  serve          Run the server (the default command)
  token          Print the API token clients send as 'Authorization: Bearer <token>'
  install-host   Register the native-messaging host with Chrome, Chromium, Edge and Brave
  backup <dir>   Write a consistent, checksummed backup of the memory stores into a new folder
  restore <dir>  Verify a backup and swap it in for the memory stores
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
      --memory-backend <kind>  local | grpc: how components reach memory (default: local)
      --memory-grpc-address <a>
                               Where the memory gRPC service listens: unix:<path> or 127.0.0.1:<port>
                               (default: unix:<data-dir>/memory.sock)

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
    case "backup":
      return BACKUP;
    case "restore":
      return RESTORE;
    default:
      return null;
  }
}
