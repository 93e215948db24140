/**
 * The panel as a web app served at `/`: same origin as the API. Pairing works as Jupyter's does:
 * `tabagent serve` prints `http://…/#token=…`; the fragment never reaches the server, the page
 * keeps the token in sessionStorage (this tab only) and strips it from the address bar.
 */
import { fetchTransport } from "../lib/api.ts";
import { parseSettings } from "../lib/native.ts";
import { adoptTokenFromFragment, TOKEN_KEY } from "../lib/pairing.ts";
import type { PanelEnvironment } from "./context.ts";

const SETTINGS_KEY = "tabagent.settings";

/** The web app environment. */
export function webEnvironment(): PanelEnvironment {
  const token = adoptTokenFromFragment(location, sessionStorage, history);
  const origin = location.origin;
  return {
    kind: "web",
    async connect() {
      const current = sessionStorage.getItem(TOKEN_KEY) ?? token;
      try {
        const health = await (await fetch(`${origin}/v1/health`)).json() as { version?: string };
        const probe = await fetch(`${origin}/v1/models`, {
          headers: current ? { authorization: `Bearer ${current}` } : {},
        });
        await probe.body?.cancel();
        if (probe.status === 401) {
          return {
            state: "unpaired",
            detail: "Open the pairing link that 'tabagent serve' printed (it ends in #token=…), " +
              "or run 'tabagent token' and add #token=<token> to this address.",
          };
        }
        return { state: "connected", url: origin, token: current, version: health.version ?? "", via: "settings" };
      } catch (error) {
        return { state: "server_down", command: "tabagent serve", detail: (error as Error).message };
      }
    },
    onConnection() {},
    transport: (connection) => fetchTransport(connection.url, connection.token),
    loadSettings() {
      try {
        return Promise.resolve(parseSettings(JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? "{}")));
      } catch {
        return Promise.resolve(parseSettings({}));
      }
    },
    saveSettings(settings) {
      // The web app has no use for a server URL or token in settings: it is the server's own page.
      localStorage.setItem(SETTINGS_KEY, JSON.stringify({ ...settings, serverToken: "" }));
      return Promise.resolve();
    },
  };
}
