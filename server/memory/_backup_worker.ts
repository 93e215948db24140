/**
 * Copies each store with `VACUUM INTO` on its own read-only connection, off the main event loop.
 * The caller holds writes back until this finishes, so the copies form one consistent cut.
 */
/// <reference lib="deno.worker" />
import { openStoreReadOnly } from "./stores.ts";

self.onmessage = (event: MessageEvent<{ sourceDir: string; dir: string; files: string[] }>) => {
  const { sourceDir, dir, files } = event.data;
  try {
    for (const file of files) {
      const db = openStoreReadOnly(`${sourceDir}/${file}`);
      try {
        db.prepare("VACUUM INTO ?").run(`${dir}/${file}`);
      } finally {
        db.close();
      }
    }
    self.postMessage({});
  } catch (error) {
    self.postMessage({ error: error instanceof Error ? error.message : String(error) });
  }
};
