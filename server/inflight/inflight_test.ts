import assert from "node:assert/strict";
import { InFlight } from "./mod.ts";

Deno.test("InFlight: an entry is found under its key until it is taken, and only once", () => {
  const pending = new InFlight<string>();
  const a = pending.add("a");
  const b = pending.add("b");
  assert(a !== b);
  assert.deepEqual(pending.size, 2);
  assert.deepEqual(pending.get(a), "a");
  assert.deepEqual(pending.take(a), "a");
  assert.deepEqual(pending.take(a), undefined);
  assert.deepEqual(pending.get(a), undefined);
  assert.deepEqual(pending.size, 1);
  assert(pending.delete(b));
  assert.equal(pending.delete(b), false);
  assert.deepEqual(pending.size, 0);
});

Deno.test("InFlight: a key taken once does not find the next entry in its slot", () => {
  const pending = new InFlight<string>();
  const first = pending.add("first");
  pending.take(first);
  const second = pending.add("second"); // reuses the freed slot
  assert(first !== second);
  assert.deepEqual(pending.get(first), undefined);
  assert.equal(pending.delete(first), false);
  assert.deepEqual(pending.get(second), "second");
  assert.deepEqual(pending.size, 1);
});

Deno.test("InFlight: keys that were never given find nothing", () => {
  const pending = new InFlight<string>();
  pending.add("x");
  for (const key of [0, 1, -1, 0.5, NaN, Infinity, 2 ** 60, Number.MAX_SAFE_INTEGER]) {
    assert.deepEqual(pending.get(key), undefined, String(key));
    assert.equal(pending.delete(key), false, String(key));
  }
  assert.deepEqual(pending.size, 1);
});

Deno.test("InFlight: entries() lists what is in flight and tolerates removal while iterating", () => {
  const pending = new InFlight<number>();
  const keys = Array.from({ length: 100 }, (_, i) => pending.add(i));
  for (let i = 0; i < 100; i += 3) pending.take(keys[i]);
  const seen: number[] = [];
  for (const [key, value] of pending.entries()) {
    assert.deepEqual(key, keys[value]);
    seen.push(value);
    if (value % 2 === 0) pending.delete(key); // as a deadline sweep does
  }
  assert.deepEqual(seen, Array.from({ length: 100 }, (_, i) => i).filter((i) => i % 3 !== 0));
  assert.deepEqual([...pending.values()], seen.filter((i) => i % 2 !== 0));
  assert.deepEqual(pending.size, seen.filter((i) => i % 2 !== 0).length);
  pending.clear();
  assert.deepEqual(pending.size, 0);
  assert.deepEqual([...pending.values()], []);
});

Deno.test("InFlight: keys stay unique through many uses of the same slots", () => {
  const pending = new InFlight<number>();
  const given = new Set<number>();
  const live: number[] = [];
  for (let i = 0; i < 50_000; i++) {
    const key = pending.add(i);
    assert.equal(given.has(key), false);
    given.add(key);
    live.push(key);
    if (live.length > 8) assert.deepEqual(typeof pending.take(live.shift()!), "number");
  }
  assert.deepEqual(pending.size, 8);
  assert.deepEqual([...pending.values()].sort((a, b) => a - b), Array.from({ length: 8 }, (_, i) => 49_992 + i));
});

/** Bytes V8's scavenges promoted while `testing/churn.ts` ran with `registry` (`inflight` or `set`). */
async function promotedByChurn(registry: "inflight" | "set"): Promise<number> {
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--v8-flags=--trace-gc-nvp,--max-semi-space-size=1",
      new URL("./testing/churn.ts", import.meta.url).pathname,
      registry,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(code, 0);
  let promoted = 0, scavenges = 0;
  for (const line of new TextDecoder().decode(stdout).split("\n")) {
    const at = line.indexOf("GC: {");
    if (at === -1) continue;
    const gc = JSON.parse(line.slice(at + 4)) as { gc: string; promoted: number };
    if (gc.gc !== "s") continue;
    scavenges++;
    promoted += gc.promoted;
  }
  assert(scavenges > 20, `only ${scavenges} scavenges: the churn did not run, or V8's trace changed`);
  return promoted;
}

Deno.test("InFlight: removed entries are not promoted by young-generation collections, unlike a Set's", async () => {
  // The reason the module exists (see its doc): a Set's rehashed tables kept ~80 MB of removed
  // entries alive into the old generation here, the registry well under 1 MB.
  const [inFlight, set] = await Promise.all([promotedByChurn("inflight"), promotedByChurn("set")]);
  assert(inFlight < 1_000_000, `InFlight: ${inFlight} bytes promoted`);
  assert(set > 10 * inFlight, `the Set control promoted only ${set} bytes (InFlight ${inFlight})`);
});
