/**
 * Chrome native messaging: frames (4-byte little-endian length + UTF-8 JSON), the host that
 * answers the extension in mode `native`, and `install-host`'s manifests for Chrome, Chromium,
 * Edge and Brave.
 *
 * @example
 * ```ts
 * const frame = encodeFrame({ type: "ping" });
 * for await (const decoded of readFrames(Deno.stdin.readable)) console.error(decoded);
 * ```
 * @module
 */
export {
  clientUrl,
  locateServer,
  pidAlive,
  readServerRecord,
  SERVER_RECORD_FILE,
  type ServerRecord,
  ServerRecordComponent,
  ServerRecordSchema,
  spawnDetached,
} from "./discovery.ts";
export { type DecodedFrame, encodeFrame, encodeReply, readFrames } from "./framing.ts";
export {
  NativeHost,
  type NativeHostOptions,
  type NativeRequest,
  NativeRequestSchema,
  RELAY_METHODS,
  type ServerInfo,
} from "./host.ts";
export {
  type Browser,
  BROWSERS,
  buildManifest,
  HOST_NAME,
  type HostInstallResult,
  type HostManifest,
  installHost,
  launcherScript,
  manifestDir,
} from "./manifest.ts";
