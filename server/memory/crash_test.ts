/**
 * Crash safety, for real: a child process writes to memory and is killed with SIGKILL at a random
 * moment, 20 times over the same files. After each kill every acknowledged write must be there, a
 * batch caught mid-write must be there whole or not at all, and once the outbox has run the
 * derived stores must agree with the truth.
 */
import { assert, assertEquals } from "./_assert.ts";
import { openLocalMemory } from "./local.ts";

const WRITER = new URL("./_crash_writer.ts", import.meta.url);
const CONFIG = new URL("../../deno.json", import.meta.url);
const ROUNDS = 20;

type Line =
  | { try: "append"; conversation: string; contents: string[] }
  | { ack: "append"; conversation: string; contents: string[] }
  | { try: string; id?: string }
  | { ack: "create" | "delete"; id: string }
  | { ack: "summary"; conversation: string };

Deno.test("memory: acknowledged writes survive 20 SIGKILLs and the derived stores converge", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tabagent-crash-" });
  const alive = new Map<string, string[]>(); // conversation → acknowledged contents, in order
  const deleted = new Set<string>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
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
      assertEquals(status.signal, "SIGKILL", `round ${round}: the writer exited by itself (${status.code})`);

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

      const memory = await openLocalMemory({ dir: `${dir}/db`, searchWorkers: 0, outbox: false });
      try {
        for (const id of deleted) {
          assertEquals(await memory.getConversation(id).catch((e) => e.code), "not_found", `round ${round}: ${id}`);
        }
        for (const [id, acknowledged] of alive) {
          const stored: string[] = [];
          let cursor: string | undefined;
          do {
            const page = await memory.listMessages(id, { cursor, limit: 500 });
            stored.push(...page.items.map((m) => m.content as string));
            cursor = page.next_cursor ?? undefined;
          } while (cursor);
          assertEquals(stored.slice(0, acknowledged.length), acknowledged, `round ${round}: conversation ${id}`);
          const extra = stored.slice(acknowledged.length);
          // Only the batch in flight at the kill may be there unacknowledged, and then all of it.
          if (extra.length) assertEquals(extra, inFlight, `round ${round}: a torn batch in ${id}`);
          if (extra.length) acknowledged.push(...extra);
        }
        await memory.flush();
        assertEquals(await memory.checkDerived(), [], `round ${round}: derived stores diverged`);
        const stats = await memory.stats();
        assertEquals(stats.outbox_pending, 0);
        assertEquals(stats.pending_embeddings, stats.messages + stats.summaries);
        const someone = [...alive.values()].flat().at(-1);
        if (someone) {
          const hits = await memory.searchMessages({ query: someone });
          assert(hits.some((hit) => hit.message.content === someone), `round ${round}: '${someone}' not searchable`);
        }
      } finally {
        await memory.close();
      }
    }
    const total = [...alive.values()].reduce((sum, contents) => sum + contents.length, 0);
    assert(total > ROUNDS * 10, `only ${total} messages were written: the kills came too early to test much`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
