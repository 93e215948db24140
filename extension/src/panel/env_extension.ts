/** The panel inside the extension: pairing through the service worker, the native relay, tabs. */
import browser from "webextension-polyfill";
import { fetchTransport, type Transport } from "../lib/api.ts";
import { type Connection, type HostFrame, parseSettings, type Settings } from "../lib/native.ts";
import type { PageText, PanelEnvironment } from "./context.ts";

/** Sends requests through the service worker's native port, building a streaming Response. */
function relayTransport(): Transport {
  let port: browser.Runtime.Port | null = null;
  let next = 1;
  const pending = new Map<string, (frame: HostFrame) => void>();
  const open = () => {
    if (port) return port;
    port = browser.runtime.connect({ name: "relay" });
    port.onMessage.addListener((message: unknown) => {
      const frame = message as HostFrame & { rid: string };
      pending.get(frame.rid)?.(frame);
    });
    port.onDisconnect.addListener(() => {
      port = null;
      for (const listener of pending.values()) listener({ ok: false, error: { code: "relay_closed" } });
      pending.clear();
    });
    return port;
  };
  return async (path, init) => {
    const rid = `r${next++}`;
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, key) => (headers[key] = value));
    const body = typeof init.body === "string" ? init.body : undefined;
    const head = Promise.withResolvers<Response>();
    const encoder = new TextEncoder();
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    let headed = false;
    pending.set(rid, (frame) => {
      if (frame.response && !headed) {
        headed = true;
        head.resolve(new Response(stream, { status: frame.response.status, headers: frame.response.headers }));
      }
      if (frame.data !== undefined) controller.enqueue(encoder.encode(frame.data));
      if (frame.end) {
        pending.delete(rid);
        controller.close();
      }
      if (frame.ok === false) {
        pending.delete(rid);
        const error = new TypeError(frame.error?.detail ?? frame.error?.code ?? "relay failed");
        if (headed) controller.error(error);
        else head.reject(error);
      }
    });
    init.signal?.addEventListener("abort", () => {
      pending.delete(rid);
      try {
        controller.error(new DOMException("Aborted", "AbortError"));
      } catch { /* already closed */ }
      head.reject(new DOMException("Aborted", "AbortError"));
    });
    open().postMessage({ rid, method: init.method ?? "GET", path, headers, body });
    return await head.promise;
  };
}

/** Direct fetch, falling back to the relay for good when loopback fetch is blocked. */
function fallbackTransport(direct: Transport, relay: Transport): Transport {
  let useRelay = false;
  return async (path, init) => {
    if (useRelay) return await relay(path, init);
    try {
      return await direct(path, init);
    } catch (error) {
      if ((error as Error).name === "AbortError") throw error;
      useRelay = true;
      return await relay(path, init);
    }
  };
}

/** The extension environment. */
export function extensionEnvironment(): PanelEnvironment {
  return {
    kind: "extension",
    connect: async (force = false) => await browser.runtime.sendMessage({ type: "connect", force }) as Connection,
    onConnection(listener) {
      browser.runtime.onMessage.addListener((message: unknown) => {
        const m = message as { type?: string; connection?: Connection };
        if (m.type === "connection" && m.connection) listener(m.connection);
        return undefined;
      });
    },
    transport(connection, settings) {
      const direct = fetchTransport(connection.url, connection.token);
      if (connection.via !== "native") return direct;
      return settings.relayOnly ? relayTransport() : fallbackTransport(direct, relayTransport());
    },
    async loadSettings() {
      return parseSettings((await browser.storage.local.get("settings")).settings);
    },
    async saveSettings(settings: Settings) {
      await browser.storage.local.set({ settings });
    },
    async pageText(): Promise<PageText> {
      // The page the user looks at: the active tab, or (when the panel itself is a tab) the last used web tab.
      const tabs = await browser.tabs.query({ lastFocusedWindow: true });
      const own = browser.runtime.getURL("");
      // Without the tabs permission a tab's url shows only where we have access (activeTab, granted sites).
      const pages = tabs.filter((t) =>
        t.id !== undefined && !(t.url ?? "").startsWith(own) &&
        !/^(chrome|edge|about|devtools|chrome-extension|view-source):/.test(t.url ?? "")
      );
      const tab = pages.find((t) => t.active) ?? pages.sort((a, b) => (b.lastAccessed ?? 0) - (a.lastAccessed ?? 0))[0];
      if (!tab?.id) throw new Error("Open a web page in this window first");
      const inject = () => browser.scripting.executeScript({ target: { tabId: tab.id! }, files: ["content.js"] });
      try {
        await inject();
      } catch {
        // No access yet (activeTab covers the tab the panel was opened on): ask for this site.
        if (!tab.url) throw new Error("TabAgent cannot read this tab; click the TabAgent button while on it");
        const origin = new URL(tab.url).origin + "/*";
        if (!await browser.permissions.request({ origins: [origin] }).catch(() => false)) {
          throw new Error("TabAgent needs permission to read this page");
        }
        await inject();
      }
      const [result] = await browser.scripting.executeScript({
        target: { tabId: tab.id },
        func: () => (globalThis as unknown as { __tabagentPage?: unknown }).__tabagentPage,
      });
      return result.result as PageText;
    },
    onPendingPrompt(listener) {
      const take = async () => {
        const { pendingPrompt } = await browser.storage.session.get("pendingPrompt");
        if (!pendingPrompt) return;
        await browser.storage.session.remove("pendingPrompt");
        const prompt = pendingPrompt as { text: string; send: boolean };
        listener({ text: prompt.text, send: prompt.send });
      };
      browser.storage.session.onChanged.addListener((changes) => {
        if (changes.pendingPrompt?.newValue) take();
      });
      take();
    },
  };
}
