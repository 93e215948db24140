/**
 * Adds and removes entries the way a server's requests in flight do (eight at a time, each holding
 * ~0.5 kB), through an {@link InFlight} or (argument `set`) through a `Set`, for `inflight_test.ts`
 * to count what V8's young-generation collections promote (`--trace-gc-nvp` on stdout).
 * @module
 */
import { InFlight } from "../mod.ts";

const useSet = Deno.args[0] === "set";
const set = new Set<object>();
const registry = new InFlight<object>();
const ring: (object | number | null)[] = new Array(8).fill(null);
// Long-lived garbage first, so that the registry reaches the old generation as a server's does.
for (let i = 0; i < 200; i++) new Array(10_000).fill({});
for (let i = 0; i < 200_000; i++) {
  const entry = { payload: new Array(64).fill(i) };
  const at = i % ring.length;
  const oldest = ring[at];
  if (useSet) {
    if (oldest !== null) set.delete(oldest as object);
    set.add(entry);
    ring[at] = entry;
  } else {
    if (oldest !== null) registry.delete(oldest as number);
    ring[at] = registry.add(entry);
  }
}
