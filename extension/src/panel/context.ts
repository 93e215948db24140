/**
 * What every panel section shares: the environment (extension or web app), the API client, the
 * connection, settings, the chat being shown, and a small event bus. Sections talk through it and
 * never import each other, so adding a section is one new module plus one line in `sections.ts`.
 */
import { ApiClient, type ChatMessage, type Model, type Transport } from "../lib/api.ts";
import type { Connection, Settings } from "../lib/native.ts";

/** Where a section puts its DOM. */
export type Region = "status" | "toolbar" | "drawer" | "main" | "context" | "composer";

/** Readable page text, as the content script extracts it. */
export interface PageText {
  title: string;
  url: string;
  text: string;
}

/** What differs between the extension panel and the web app. */
export interface PanelEnvironment {
  kind: "extension" | "web";
  /** Pairs (or re-pairs, with `force`) and returns the connection. */
  connect(force?: boolean): Promise<Connection>;
  /** Called with every later connection change (the service worker's broadcasts). */
  onConnection(listener: (connection: Connection) => void): void;
  /** A transport for the current connection; the native relay when fetch cannot reach the server. */
  transport(connection: Connection & { state: "connected" }, settings: Settings): Transport;
  loadSettings(): Promise<Settings>;
  saveSettings(settings: Settings): Promise<void>;
  /** The active tab's readable text (extension only). */
  pageText?(): Promise<PageText>;
  /** Prompts queued by the context menu (extension only). */
  onPendingPrompt?(listener: (prompt: { text: string; send: boolean }) => void): void;
}

/** Events sections exchange. */
export interface PanelEvents {
  connection: Connection;
  model: string;
  /** A conversation was opened (`id` null: a new chat). */
  conversation: { id: string | null; title: string; messages: ChatMessage[] };
  /** The stored conversation list changed (a turn was saved, a rename, a delete). */
  conversations: void;
  /** Text to place in the composer, sent at once when `send`. */
  compose: { text: string; send: boolean };
  /** Extra chunk fields from a chat stream (`tabagent.*`) for sections that show them. */
  chatExtra: Record<string, unknown>;
  settings: Settings;
  /** The chat models the server listed (downloaded or not), after each refresh of the picker. */
  models: Model[];
}

/** Context a section adds in front of a question (page text, …). */
export interface PromptContribution {
  messages: ChatMessage[];
  /** What was included, shown under the question. */
  summary: string;
}

type Handler<T> = (value: T) => void;

/** The shared state and bus. */
export class PanelContext {
  connection: Connection = { state: "unpaired" };
  api: ApiClient | null = null;
  model = "";
  /** Called before each question is sent (its conversation exists by then); each may add system messages. */
  readonly promptContributors: ((question: string, turn: { conversationId: string }) => Promise<
    PromptContribution | null
  >)[] = [];
  #handlers = new Map<keyof PanelEvents, Handler<unknown>[]>();

  constructor(
    readonly env: PanelEnvironment,
    public settings: Settings,
    readonly regions: Record<Region, HTMLElement>,
  ) {}

  /** Subscribes to an event. */
  on<K extends keyof PanelEvents>(event: K, handler: Handler<PanelEvents[K]>): void {
    const list = this.#handlers.get(event) ?? [];
    list.push(handler as Handler<unknown>);
    this.#handlers.set(event, list);
  }

  /** Publishes an event to every subscriber. */
  emit<K extends keyof PanelEvents>(event: K, value: PanelEvents[K]): void {
    for (const handler of this.#handlers.get(event) ?? []) handler(value);
  }

  /** Applies a connection: builds the API client when connected. */
  setConnection(connection: Connection): void {
    this.connection = connection;
    this.api = connection.state === "connected" ? new ApiClient(this.env.transport(connection, this.settings)) : null;
    this.emit("connection", connection);
  }

  /** Saves settings and tells the sections. */
  async updateSettings(patch: Partial<Settings>): Promise<void> {
    this.settings = { ...this.settings, ...patch };
    await this.env.saveSettings(this.settings);
    this.emit("settings", this.settings);
  }
}

/** A part of the panel. */
export interface PanelSection {
  id: string;
  mount(context: PanelContext): void;
}
