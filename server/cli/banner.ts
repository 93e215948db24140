/**
 * What `tabagent serve` tells the person at the terminal: the URL, the docs, the web app's pairing
 * link, and the models on disk (or the exact pull command when there are none).
 * @module
 */

/**
 * The web app's pairing link: the token rides in the fragment (`#token=…`), which browsers never
 * send to the server, so it stays out of request logs. Null where no web app is served.
 */
export function pairingUrl(url: string, mode: string, token: string | null): string | null {
  if (mode !== "all" && mode !== "web") return null;
  const base = url.replace("//0.0.0.0:", "//127.0.0.1:").replace("//[::]:", "//[::1]:");
  return token ? `${base}/#token=${encodeURIComponent(token)}` : `${base}/`;
}

/** What the banner shows. */
export interface BannerInfo {
  version: string;
  mode: string;
  url: string;
  pairingUrl: string | null;
  /** Models on disk. */
  models: { id: string; sizeBytes: number }[];
  /** A model to suggest pulling when there are none. */
  suggestedModel: string;
}

function size(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${Math.max(1, Math.round(bytes / 1e6))} MB`;
}

/**
 * The start-up banner for a person at a terminal: where the API and docs are, the web app's
 * pairing link, the models on disk or the exact command to get one, and how to add the extension.
 */
export function formatBanner(info: BannerInfo, color = false): string {
  const bold = (s: string) => (color ? `\x1b[1m${s}\x1b[0m` : s);
  const dim = (s: string) => (color ? `\x1b[2m${s}\x1b[0m` : s);
  const row = (label: string, value: string) => `  ${label.padEnd(10)}${value}`;
  const lines = ["", `  ${bold(`TabAgent ${info.version}`)} is running ${dim(`(mode ${info.mode})`)}`, ""];
  lines.push(row("API", `${info.url}/v1`));
  lines.push(row("Docs", `${info.url}/api-doc`));
  if (info.pairingUrl) lines.push(row("Web app", `${bold(info.pairingUrl)}  ${dim("← open to chat in any browser")}`));
  if (info.models.length) {
    info.models.forEach((model, i) =>
      lines.push(row(i === 0 ? "Models" : "", `${model.id} ${dim(`(${size(model.sizeBytes)})`)}`))
    );
  } else {
    lines.push(row("Models", `none yet: ${bold(`tabagent models pull ${info.suggestedModel}`)}`));
  }
  lines.push(row("Extension", `run ${bold("tabagent install-host")} once, then open the TabAgent side panel`));
  lines.push(row("Stop", "Ctrl+C"), "");
  return lines.join("\n");
}
