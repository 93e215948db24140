/** The connection banner: connected, starting, or exactly what to run when the server or host is missing. */
import { commandBlock, h, setChildren } from "../lib/dom.ts";
import type { Connection } from "../lib/native.ts";
import type { PanelContext, PanelSection } from "./context.ts";

function describe(connection: Connection): { text: string; command?: string; detail?: string; tone: string } {
  switch (connection.state) {
    case "connected":
      return { text: `Connected to TabAgent ${connection.version}`.trim(), tone: "ok" };
    case "starting":
      return { text: "Starting the TabAgent server…", detail: connection.detail, tone: "busy" };
    case "host_missing":
      return {
        text: "The TabAgent native host is not installed. Run this once in a terminal, then come back:",
        command: connection.command,
        detail: connection.detail,
        tone: "error",
      };
    case "server_down":
      return {
        text: "The TabAgent server is not running. Start it in a terminal:",
        command: connection.command,
        detail: connection.detail,
        tone: "error",
      };
    case "unpaired":
      return { text: "Not paired with a TabAgent server yet.", detail: connection.detail, tone: "busy" };
  }
}

/** The status section. */
export const statusSection: PanelSection = {
  id: "status",
  mount(context: PanelContext) {
    const box = h("div", { className: "status", id: "status", role: "status", "aria-live": "polite" });
    context.regions.status.append(box);
    const retry = h("button", { type: "button", className: "retry", onclick: () => reconnect(context) }, "Retry");
    context.on("connection", (connection) => {
      const view = describe(connection);
      box.dataset.state = connection.state;
      box.dataset.tone = view.tone;
      setChildren(
        box,
        h("p", { className: "status-text" }, view.text),
        view.command ? commandBlock(view.command) : null,
        view.detail && connection.state !== "connected" ? h("p", { className: "status-detail" }, view.detail) : null,
        connection.state !== "connected" && connection.state !== "starting" ? retry : null,
      );
    });
  },
};

/** Pairs again (forcing a new `hello`). */
export async function reconnect(context: PanelContext): Promise<void> {
  context.setConnection({ state: "starting" });
  context.setConnection(await context.env.connect(true));
}
