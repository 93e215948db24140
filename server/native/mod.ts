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
export { type DecodedFrame, encodeFrame, readFrames } from "./framing.ts";
export { NativeHost, type NativeRequest, NativeRequestSchema, type ServerInfo } from "./host.ts";
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
