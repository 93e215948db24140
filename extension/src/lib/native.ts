/**
 * The native-messaging protocol as the extension speaks it, and the reassembly of replies the
 * host had to split: Chrome refuses a host→browser message over 1 MiB, so the host sends such a
 * frame as numbered `chunk` frames carrying slices of its JSON text.
 */
import { z } from "zod";

/** The host's name, as `tabagent install-host` registers it. */
export const HOST_NAME = "dev.tabagent.host";

/** The command that registers the host, shown when it is missing. */
export const INSTALL_HOST_COMMAND = "tabagent install-host";
/** The command that starts the server, shown when it is not running. */
export const SERVE_COMMAND = "tabagent serve";

const ErrorSchema = z.object({
  code: z.string(),
  title: z.string().optional(),
  detail: z.string().optional(),
  command: z.string().optional(),
});

/** Any frame the host sends (after reassembly). */
export const HostFrameSchema = z.object({
  id: z.union([z.string(), z.number()]).optional(),
  ok: z.boolean().optional(),
  result: z.unknown().optional(),
  progress: z.object({ state: z.string(), detail: z.string().optional() }).optional(),
  response: z.object({ status: z.number(), headers: z.record(z.string(), z.string()) }).optional(),
  data: z.string().optional(),
  end: z.boolean().optional(),
  error: ErrorSchema.optional(),
  chunk: z.object({ index: z.number().int().min(0), count: z.number().int().min(1), data: z.string() }).optional(),
});
/** A host frame. */
export type HostFrame = z.infer<typeof HostFrameSchema>;

/** What `hello` answers. */
export const HelloResultSchema = z.object({
  url: z.string().url(),
  token: z.string().nullable(),
  version: z.string(),
  started: z.boolean().optional(),
});
/** The `hello` result. */
export type HelloResult = z.infer<typeof HelloResultSchema>;

/**
 * Joins `chunk` frames back into the frame they came from. Chunks of one id arrive in order
 * (one pipe), but frames of different ids may interleave.
 */
export class FrameAssembler {
  #parts = new Map<string, string[]>();

  /** Returns the complete frame, or null while chunks are still missing. Throws on a malformed sequence. */
  push(frame: HostFrame): HostFrame | null {
    if (!frame.chunk) return frame;
    const key = String(frame.id);
    const { index, count, data } = frame.chunk;
    const parts = this.#parts.get(key) ?? [];
    if (index !== parts.length || index >= count) {
      this.#parts.delete(key);
      throw new Error(`native chunk ${index}/${count} out of order for ${key}`);
    }
    parts.push(data);
    if (parts.length < count) {
      this.#parts.set(key, parts);
      return null;
    }
    this.#parts.delete(key);
    return HostFrameSchema.parse(JSON.parse(parts.join("")));
  }
}

/** The connection the panel works with. */
export type Connection =
  | { state: "connected"; url: string; token: string | null; version: string; via: "native" | "settings" }
  | { state: "starting"; detail?: string }
  | { state: "host_missing"; command: string; detail?: string }
  | { state: "server_down"; command: string; detail?: string }
  | { state: "unpaired"; detail?: string };

/** Settings kept in `chrome.storage.local` (never the host's token). */
export const SettingsSchema = z.object({
  serverUrl: z.string().default(""),
  serverToken: z.string().default(""),
  autoStart: z.boolean().default(true),
  /** Send every request through the native host (for machines whose policy blocks fetch to loopback). */
  relayOnly: z.boolean().default(false),
  defaultModel: z.string().default(""),
  memory: z.boolean().default(false),
  temperature: z.number().min(0).max(2).default(0.7),
  maxTokens: z.number().int().min(1).max(32768).default(512),
  theme: z.enum(["system", "light", "dark"]).default("system"),
});
/** The panel's settings. */
export type Settings = z.infer<typeof SettingsSchema>;

/** Reads settings from a stored object, filling defaults and dropping what does not validate. */
export function parseSettings(stored: unknown): Settings {
  const parsed = SettingsSchema.safeParse(stored ?? {});
  return parsed.success ? parsed.data : SettingsSchema.parse({});
}
