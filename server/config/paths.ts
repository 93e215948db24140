/** Per-platform data locations. Pure: takes the platform and environment, so every OS is testable. */

/** Where TabAgent keeps its data on each platform, before any override. */
export function defaultDataDir(
  platform: typeof Deno.build.os,
  env: Readonly<Record<string, string | undefined>>,
): string {
  const home = env.HOME ?? env.USERPROFILE ?? ".";
  switch (platform) {
    case "darwin":
      return `${home}/Library/Application Support/TabAgent`;
    case "windows": {
      const appData = env.APPDATA ?? `${home}\\AppData\\Roaming`;
      return `${appData}\\TabAgent`;
    }
    default: {
      const xdg = env.XDG_DATA_HOME;
      return `${xdg && xdg.startsWith("/") ? xdg : `${home}/.local/share`}/TabAgent`;
    }
  }
}

/**
 * Where TabAgent keeps what it builds on this machine (native bindings, their sources), outside
 * the repository and the data dir: `$XDG_CACHE_HOME/tabagent` (`~/.cache/tabagent`),
 * `%LOCALAPPDATA%\tabagent` on Windows.
 */
export function defaultBuildCacheDir(
  platform: typeof Deno.build.os,
  env: (name: string) => string | undefined,
): string {
  if (platform === "windows") return `${env("LOCALAPPDATA") ?? env("USERPROFILE")}\\tabagent`;
  return `${env("XDG_CACHE_HOME") ?? `${env("HOME")}/.cache`}/tabagent`;
}

/** Joins path segments with the platform's separator. */
export function joinPath(platform: typeof Deno.build.os, ...parts: string[]): string {
  return parts.join(platform === "windows" ? "\\" : "/");
}
