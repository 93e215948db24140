/**
 * Crash safety, for real: a child process writes to memory and is killed with SIGKILL at a random
 * moment, 20 times over the same files. After each kill every acknowledged write must be there, a
 * batch caught mid-write must be there whole or not at all, and once the outbox has run the
 * derived stores must agree with the truth.
 */
import assert from "node:assert/strict";
import { openLocalMemory } from "./local.ts";

const WRITER = new URL("./testing/crash_writer.ts", import.meta.url);
const CONFIG = new URL("../../deno.json", import.meta.url);
const ROUNDS = 20;

type Line =
  | { try: "append"; conversation: string; contents: string[] }
  | { ack: "append"; conversation: string; contents: string[] }
  | { try: string; id?: string }
  | { ack: "create" | "delete"; id: string }
  | { ack: "summary"; conversation: string };

/** Runs the writer over `dir` and kills it with SIGKILL after a random number of acknowledged operations. */
async function runUntilKilled(dir: string, round: number): Promise<Line[]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG.pathname, WRITER.pathname, `${dir}/db`, String(round)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: Line[] = [];
  let rest = "";
  let acks = 0;
  const killAfter = 20 + Math.floor(Math.random() * 400); // acknowledged operations before the kill
  const killed = Promise.withResolvers<void>();
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const part of parts) {
        const line = JSON.parse(part) as Line;
        lines.push(line);
        if ("ack" in line && ++acks === killAfter) {
          // A random extra delay puts the kill at any point of the next writes or outbox steps.
          setTimeout(() => {
            child.kill("SIGKILL");
            killed.resolve();
          }, Math.random() * 5);
        }
      }
    }
  })();
  const status = await child.status;
  await reading;
  await killed.promise;
  assert.deepEqual(status.signal, "SIGKILL", `round ${round}: the writer exited by itself (${status.code})`);
  return lines;
}

/** Applies a round's acknowledgements to `alive` and `deleted`; returns the batch in flight at the kill. */
function acknowledge(lines: Line[], alive: Map<string, string[]>, deleted: Set<string>): string[] {
  let inFlight: string[] = [];
  for (const line of lines) {
    if ("ack" in line) {
      if (line.ack === "create") alive.set(line.id, []);
      if (line.ack === "delete") {
        alive.delete(line.id);
        deleted.add(line.id);
      }
      if (line.ack === "append") {
        const l = line as { conversation: string; contents: string[] };
        alive.get(l.conversation)!.push(...l.contents);
        inFlight = [];
      }
    } else if (line.try === "append") inFlight = (line as { contents: string[] }).contents;
    else inFlight = [];
  }
  return inFlight;
}

/** Every acknowledged write is there, a torn batch is whole or absent, and the derived stores agree. */
async function checkStores(
  dir: string,
  round: number,
  state: { alive: Map<string, string[]>; deleted: Set<string>; inFlight: string[] },
): Promise<void> {
  const { alive, deleted, inFlight } = state;
  const memory = await openLocalMemory({ dir: `${dir}/db`, searchWorkers: 0, outbox: false });
  try {
    for (const id of deleted) {
      assert.deepEqual(await memory.getConversation(id).catch((e) => e.code), "not_found", `round ${round}: ${id}`);
    }
    for (const [id, acknowledged] of alive) {
      const stored: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await memory.listMessages(id, { cursor, limit: 500 });
        stored.push(...page.items.map((m) => m.content as string));
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
      assert.deepEqual(stored.slice(0, acknowledged.length), acknowledged, `round ${round}: conversation ${id}`);
      const extra = stored.slice(acknowledged.length);
      // Only the batch in flight at the kill may be there unacknowledged, and then all of it.
      if (extra.length) assert.deepEqual(extra, inFlight, `round ${round}: a torn batch in ${id}`);
      if (extra.length) acknowledged.push(...extra);
    }
    await memory.flush();
    assert.deepEqual(await memory.checkDerived(), [], `round ${round}: derived stores diverged`);
    const stats = await memory.stats();
    assert.deepEqual(stats.outbox_pending, 0);
    assert.deepEqual(stats.pending_embeddings, stats.messages + stats.summaries);
    const someone = [...alive.values()].flat().at(-1);
    if (someone) {
      const hits = await memory.searchMessages({ query: someone });
      assert.ok(hits.some((hit) => hit.message.content === someone), `round ${round}: '${someone}' not searchable`);
    }
  } finally {
    await memory.close();
  }
}

Deno.test("memory: acknowledged writes survive 20 SIGKILLs and the derived stores converge", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-crash-" });
  const alive = new Map<string, string[]>(); // conversation → acknowledged contents, in order
  const deleted = new Set<string>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const inFlight = acknowledge(await runUntilKilled(dir, round), alive, deleted);
      await checkStores(dir, round, { alive, deleted, inFlight });
    }
    const total = [...alive.values()].reduce((sum, contents) => sum + contents.length, 0);
    assert.ok(total > ROUNDS * 10, `only ${total} messages were written: the kills came too early to test much`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
