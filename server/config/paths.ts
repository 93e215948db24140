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

/** Joins path segments with the platform's separator. */
export function joinPath(platform: typeof Deno.build.os, ...parts: string[]): string {
  return parts.join(platform === "windows" ? "\\" : "/");
}
