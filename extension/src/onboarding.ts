/**
 * The page opened on install: pairs through the native host (`hello`). When the host is missing it
 * shows `tabagent install-host` with a copy button and polls until the host answers.
 */
import browser from "webextension-polyfill";
import { commandBlock, h, setChildren } from "./lib/dom.ts";
import type { Connection } from "./lib/native.ts";

const POLL_MS = 2000;
const box = document.getElementById("pairing")!;

function show(connection: Connection): void {
  box.dataset.state = connection.state;
  switch (connection.state) {
    case "connected":
      setChildren(
        box,
        h("p", { className: "ok" }, `Paired with TabAgent ${connection.version} at ${connection.url}.`),
        h("p", {}, "Open the side panel from the toolbar button (or Alt+Shift+Y) and start chatting."),
      );
      return;
    case "host_missing":
      setChildren(
        box,
        h("p", {}, "One step left: register TabAgent's native host with your browser. Run this in a terminal:"),
        commandBlock(connection.command),
        h("p", { className: "muted" }, "This page notices by itself when it is done."),
      );
      return;
    case "server_down":
      setChildren(
        box,
        h("p", {}, "The host is installed but the server did not start. Start it in a terminal:"),
        commandBlock(connection.command),
        connection.detail ? h("p", { className: "muted" }, connection.detail) : null,
      );
      return;
    default:
      setChildren(box, h("p", {}, "Looking for your TabAgent server…"));
  }
}

async function poll(): Promise<void> {
  const connection = await browser.runtime.sendMessage({ type: "connect", force: true }) as Connection;
  show(connection);
  if (connection.state !== "connected") setTimeout(poll, POLL_MS);
}

poll();
