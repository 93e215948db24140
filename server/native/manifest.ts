import { TabAgentError } from "../errors/mod.ts";

/** The host's name as Chrome knows it; the extension calls `connectNative` with it. */
export const HOST_NAME = "dev.tabagent.host";

/** Browsers we register with. */
export const BROWSERS = ["chrome", "chromium", "edge", "brave"] as const;
/** A supported browser. */
export type Browser = typeof BROWSERS[number];

/** Chrome's native host manifest. */
export interface HostManifest {
  name: string;
  description: string;
  path: string;
  type: "stdio";
  allowed_origins: string[];
}

/** The per-user folder each browser reads host manifests from, by platform. */
export function manifestDir(
  browser: Browser,
  platform: typeof Deno.build.os,
  env: Readonly<Record<string, string | undefined>>,
): string {
  const home = env.HOME ?? env.USERPROFILE ?? ".";
  if (platform === "darwin") {
    const base = `${home}/Library/Application Support`;
    return {
      chrome: `${base}/Google/Chrome/NativeMessagingHosts`,
      chromium: `${base}/Chromium/NativeMessagingHosts`,
      edge: `${base}/Microsoft Edge/NativeMessagingHosts`,
      brave: `${base}/BraveSoftware/Brave-Browser/NativeMessagingHosts`,
    }[browser];
  }
  if (platform === "windows") {
    // Windows browsers find hosts through the registry; we keep the file beside the data and
    // point the registry key at it (see installHost).
    return `${env.APPDATA ?? `${home}\\AppData\\Roaming`}\\TabAgent\\NativeMessagingHosts\\${browser}`;
  }
  const config = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith("/") ? env.XDG_CONFIG_HOME : `${home}/.config`;
  return {
    chrome: `${config}/google-chrome/NativeMessagingHosts`,
    chromium: `${config}/chromium/NativeMessagingHosts`,
    edge: `${config}/microsoft-edge/NativeMessagingHosts`,
    brave: `${config}/BraveSoftware/Brave-Browser/NativeMessagingHosts`,
  }[browser];
}

/** The registry key a Windows browser reads the manifest path from. */
export function windowsRegistryKey(browser: Browser): string {
  const vendor = {
    chrome: "Google\\Chrome",
    chromium: "Chromium",
    edge: "Microsoft\\Edge",
    brave: "BraveSoftware\\Brave-Browser",
  }[browser];
  return `HKCU\\Software\\${vendor}\\NativeMessagingHosts\\${HOST_NAME}`;
}

/** Builds the manifest for a launcher at `path`, allowing the given extension ids. */
export function buildManifest(path: string, extensionIds: string[]): HostManifest {
  return {
    name: HOST_NAME,
    description: "TabAgent local AI server",
    path,
    type: "stdio",
    allowed_origins: extensionIds.map((id) => `chrome-extension://${id}/`),
  };
}

/**
 * The launcher Chrome runs: a script that starts this program in native mode. Chrome passes the
 * caller's origin first (and on Windows `--parent-window=…`) and cannot pass flags, so the script
 * appends them after Chrome's arguments; `tabagent <origin> [flags]` means `serve --mode native`.
 */
export function launcherScript(command: string[], flags: string[], platform: typeof Deno.build.os): string {
  if (platform === "windows") {
    const quote = (part: string) => `"${part}"`;
    return `@echo off\r\n${command.map(quote).join(" ")} %* ${flags.map(quote).join(" ")}\r\n`;
  }
  const quote = (part: string) => `'${part.replaceAll("'", `'\\''`)}'`;
  return `#!/bin/sh\n# Written by 'tabagent install-host'; Chrome runs this to reach TabAgent.\nexec ${
    command.map(quote).join(" ")
  } "$@" ${flags.map(quote).join(" ")}\n`;
}

/** What install/uninstall did, per browser. */
export interface HostInstallResult {
  browser: Browser;
  manifestPath: string;
  action: "installed" | "removed" | "absent";
}

/**
 * Writes (or with `uninstall` removes) the host manifest for each browser, and the launcher it
 * points to. Writes are atomic (temp file + rename) so a browser never reads half a manifest.
 */
export async function installHost(options: {
  browsers: Browser[];
  uninstall: boolean;
  launcherPath: string;
  command: string[];
  /** Flags for `serve` in native mode (e.g. `--data-dir`), after Chrome's arguments. */
  flags: string[];
  extensionIds: string[];
  platform?: typeof Deno.build.os;
  env: Readonly<Record<string, string | undefined>>;
}): Promise<HostInstallResult[]> {
  const platform = options.platform ?? Deno.build.os;
  const results: HostInstallResult[] = [];
  if (!options.uninstall) {
    await Deno.mkdir(options.launcherPath.replace(/[\\/][^\\/]+$/, ""), { recursive: true });
    await writeAtomic(options.launcherPath, launcherScript(options.command, options.flags, platform), 0o755);
  }
  for (const browser of options.browsers) {
    const dir = manifestDir(browser, platform, options.env);
    const manifestPath = `${dir}/${HOST_NAME}.json`;
    if (options.uninstall) {
      try {
        await Deno.remove(manifestPath);
        results.push({ browser, manifestPath, action: "removed" });
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        results.push({ browser, manifestPath, action: "absent" });
      }
      continue;
    }
    await Deno.mkdir(dir, { recursive: true });
    const manifest = buildManifest(options.launcherPath, options.extensionIds);
    await writeAtomic(manifestPath, JSON.stringify(manifest, null, 2) + "\n", 0o644);
    if (platform === "windows") await registerWindows(browser, manifestPath);
    results.push({ browser, manifestPath, action: "installed" });
  }
  return results;
}

async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const temp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(temp, text, { mode });
  await Deno.rename(temp, path);
}

async function registerWindows(browser: Browser, manifestPath: string): Promise<void> {
  const result = await new Deno.Command("reg", {
    args: ["add", windowsRegistryKey(browser), "/ve", "/t", "REG_SZ", "/d", manifestPath, "/f"],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!result.success) {
    throw new TabAgentError(
      "internal",
      `Could not register the host for ${browser}: ${new TextDecoder().decode(result.stderr)}`,
    );
  }
}
