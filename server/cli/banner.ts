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
