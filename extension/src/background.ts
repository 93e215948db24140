/**
 * The service worker: owns the native-messaging port, pairs with the server (`hello`), keeps the
 * connection state, relays HTTP requests over native messaging for panels whose fetch cannot
 * reach loopback, and turns context-menu clicks into panel prompts.
 */
import browser from "webextension-polyfill";
import {
  type Connection,
  FrameAssembler,
  HelloResultSchema,
  HOST_NAME,
  type HostFrame,
  HostFrameSchema,
  INSTALL_HOST_COMMAND,
  parseSettings,
  SERVE_COMMAND,
} from "./lib/native.ts";
import { registerTabVideo } from "./video/background.ts";

type Listener = (frame: HostFrame) => void;

let port: browser.Runtime.Port | null = null;
let nextId = 1;
const listeners = new Map<string, Listener>();
const assembler = new FrameAssembler();
let lastDisconnect: string | null = null;

function nativePort(): browser.Runtime.Port {
  if (port) return port;
  const opened = browser.runtime.connectNative(HOST_NAME);
  lastDisconnect = null;
  opened.onMessage.addListener((message: unknown) => {
    const parsed = HostFrameSchema.safeParse(message);
    if (!parsed.success) return;
    let frame: HostFrame | null;
    try {
      frame = assembler.push(parsed.data);
    } catch (error) {
      console.warn("TabAgent: dropped a bad chunk sequence", error);
      return;
    }
    if (frame) listeners.get(String(frame.id))?.(frame);
  });
  opened.onDisconnect.addListener((p) => {
    lastDisconnect = p.error?.message ?? chrome.runtime.lastError?.message ?? "The native host exited";
    if (port === opened) port = null;
    const pending = [...listeners.values()];
    listeners.clear();
    for (const listener of pending) {
      listener({ ok: false, error: { code: "host_disconnected", detail: lastDisconnect } });
    }
  });
  port = opened;
  return opened;
}

/** Sends one request to the host; `onFrame` sees every frame until it returns true (done). */
function hostRequest(message: Record<string, unknown>, onFrame: (frame: HostFrame) => boolean): () => void {
  const id = `w${nextId++}`;
  listeners.set(id, (frame) => {
    if (onFrame(frame)) listeners.delete(id);
  });
  try {
    nativePort().postMessage({ ...message, id });
  } catch (error) {
    listeners.delete(id);
    onFrame({ ok: false, error: { code: "host_disconnected", detail: (error as Error).message } });
  }
  return () => listeners.delete(id);
}

function isHostMissing(detail: string | undefined): boolean {
  return /not found|forbidden|native messaging host/i.test(detail ?? "");
}

let connection: Connection = { state: "unpaired" };
let connecting: Promise<Connection> | null = null;

async function setConnection(next: Connection): Promise<Connection> {
  connection = next;
  if (next.state === "connected") {
    // Memory only: chrome.storage.session is never written to disk and pages cannot read it.
    await browser.storage.session.set({ server: { url: next.url, token: next.token, version: next.version } });
  }
  browser.runtime.sendMessage({ type: "connection", connection: next }).catch(() => {/* no panel open */});
  return next;
}

async function tryConfigured(): Promise<Connection | null> {
  const settings = parseSettings((await browser.storage.local.get("settings")).settings);
  if (!settings.serverUrl) return null;
  try {
    const response = await fetch(`${settings.serverUrl.replace(/\/+$/, "")}/v1/health`);
    if (!response.ok) return null;
    const health = await response.json() as { version?: string };
    return {
      state: "connected",
      url: settings.serverUrl.replace(/\/+$/, ""),
      token: settings.serverToken || null,
      version: health.version ?? "",
      via: "settings",
    };
  } catch {
    return null; // not reachable either: the native answer explains why
  }
}

function hello(autoStart: boolean): Promise<Connection> {
  return new Promise((resolve) => {
    hostRequest({ type: "hello", auto_start: autoStart }, (frame) => {
      if (frame.progress) {
        setConnection({ state: "starting", detail: frame.progress.detail });
        return false;
      }
      if (frame.ok) {
        const result = HelloResultSchema.safeParse(frame.result);
        resolve(
          result.success
            ? { state: "connected", ...result.data, via: "native" }
            : { state: "server_down", command: SERVE_COMMAND, detail: "The host answered without a server URL" },
        );
        return true;
      }
      const detail = frame.error?.detail;
      if (frame.error?.code === "host_disconnected" && isHostMissing(detail)) {
        resolve({ state: "host_missing", command: INSTALL_HOST_COMMAND, detail });
      } else {
        resolve({ state: "server_down", command: frame.error?.command ?? SERVE_COMMAND, detail });
      }
      return true;
    });
  });
}

/** Pairs with the server: native `hello` first, then the configured URL. */
async function stillUp(current: Connection & { state: "connected" }): Promise<boolean> {
  try {
    const response = await fetch(`${current.url}/v1/health`, { signal: AbortSignal.timeout(2000) });
    await response.body?.cancel();
    return response.status < 500 || response.status === 503;
  } catch {
    return false; // gone, or fetch is blocked: ask the host again
  }
}

function connect(force: boolean): Promise<Connection> {
  connecting ??= (async () => {
    if (!force && connection.state === "connected" && await stillUp(connection)) return connection;
    if (force && port) {
      // A fresh host process: it re-reads its registration and the server record.
      const old = port;
      port = null;
      old.disconnect();
    }
    const settings = parseSettings((await browser.storage.local.get("settings")).settings);
    let result = await hello(settings.autoStart);
    if (result.state !== "connected") result = (await tryConfigured()) ?? result;
    return await setConnection(result);
  })().finally(() => (connecting = null));
  return connecting;
}

browser.runtime.onMessage.addListener((message: unknown) => {
  const m = message as { type?: string; force?: boolean };
  if (m.type === "connect") return connect(m.force === true);
  if (m.type === "connection") return undefined; // our own broadcast
  return undefined;
});

// The relay: a panel sends {rid, method, path, headers, body}; frames come back tagged with rid.
browser.runtime.onConnect.addListener((panel) => {
  if (panel.name !== "relay") return;
  const cancels = new Map<string, () => void>();
  panel.onMessage.addListener((message: unknown) => {
    const m = message as { rid: string; method: string; path: string; headers?: Record<string, string>; body?: string };
    if (typeof m.rid !== "string") return;
    const cancel = hostRequest({
      type: "request",
      method: m.method,
      path: m.path,
      headers: m.headers ?? {},
      ...(m.body !== undefined ? { body: m.body } : {}),
    }, (frame) => {
      panel.postMessage({ ...frame, rid: m.rid });
      const done = frame.end === true || frame.ok === false;
      if (done) cancels.delete(m.rid);
      return done;
    });
    cancels.set(m.rid, cancel);
  });
  panel.onDisconnect.addListener(() => {
    for (const cancel of cancels.values()) cancel();
  });
});

const MENU_ACTIONS: Record<string, { title: string; prompt: (text: string) => string }> = {
  "tabagent-explain": { title: "Explain with TabAgent", prompt: (t) => `Explain this:\n\n${t}` },
  "tabagent-summarise": { title: "Summarise with TabAgent", prompt: (t) => `Summarise this:\n\n${t}` },
  "tabagent-translate": {
    title: "Translate to English with TabAgent",
    prompt: (t) => `Translate this into English:\n\n${t}`,
  },
  "tabagent-ask": { title: "Ask TabAgent about this…", prompt: (t) => `About this text:\n\n${t}\n\n` },
};

browser.runtime.onInstalled.addListener(async (details) => {
  await chrome.sidePanel.setPanelBehavior({ openPanelOnActionClick: true }).catch(() => {});
  await browser.contextMenus.removeAll();
  for (const [id, action] of Object.entries(MENU_ACTIONS)) {
    browser.contextMenus.create({ id, title: action.title, contexts: ["selection"] });
  }
  if (details.reason === "install") await browser.tabs.create({ url: browser.runtime.getURL("onboarding.html") });
});

chrome.contextMenus.onClicked.addListener((info, tab) => {
  const action = MENU_ACTIONS[String(info.menuItemId)];
  if (!action || !info.selectionText) return;
  // open() must run inside the click's user gesture: call it before any await.
  if (tab?.windowId !== undefined) chrome.sidePanel.open({ windowId: tab.windowId }).catch(() => {});
  const send = !String(info.menuItemId).endsWith("-ask");
  browser.storage.session.set({
    pendingPrompt: { text: action.prompt(info.selectionText.slice(0, 20_000)), send, at: Date.now() },
  });
});

// Tab video: the panel's start/stop become a tab-capture stream streamed by the offscreen document.
registerTabVideo(async () => {
  const current = await connect(false);
  return current.state === "connected" ? { url: current.url, token: current.token } : null;
});
