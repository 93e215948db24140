/// <reference lib="deno.worker" />
/**
 * Worker thread that hashes a `.partial` file while it downloads, so hashing a multi-GB file costs
 * no time after the last byte and no time on the thread that moves bytes.
 * @module
 */
import { PrefixHasher } from "./_hash_core.ts";

type Message =
  | { type: "init"; path: string; size: number; gitSha1: boolean }
  | { type: "advance"; to: number }
  | { type: "finish" };

let hasher: PrefixHasher | undefined;
let target = 0;
let finishing = false;

self.onmessage = (event: MessageEvent<Message>) => {
  const message = event.data;
  try {
    if (message.type === "init") {
      hasher = new PrefixHasher(message.path, message.size, message.gitSha1);
      return;
    }
    if (!hasher) throw new Error("hash worker used before init");
    if (message.type === "advance") {
      target = Math.max(target, message.to);
      hasher.advance(target);
      return;
    }
    finishing = true;
    const digests = hasher.finish();
    hasher.close();
    self.postMessage({ type: "digest", digests });
  } catch (error) {
    self.postMessage({ type: "error", message: error instanceof Error ? error.message : String(error), finishing });
  }
};
