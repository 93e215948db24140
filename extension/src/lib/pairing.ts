/** Where the web app keeps its token: this tab's sessionStorage only. */
export const TOKEN_KEY = "tabagent.token";

/**
 * Takes `#token=…` from the address bar into `storage` and removes it from the URL and history
 * (Jupyter-style pairing: the fragment never reaches the server). Returns the token now stored.
 */
export function adoptTokenFromFragment(
  location: { hash: string; pathname: string; search: string },
  storage: { getItem(key: string): string | null; setItem(key: string, value: string): void },
  history: { replaceState(data: unknown, unused: string, url: string): void },
): string | null {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    storage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return storage.getItem(TOKEN_KEY);
}
