/// <reference lib="deno.worker" />
/**
 * Worker for the `memory` suite: N search clients against the server, switched on and off by the
 * suite so that loaded and idle health probes can alternate within a round. It is a worker so that
 * the health probe in the main thread does not wait behind the load generators' own response
 * handling.
 *
 * Messages in: `{kind: "setup", url, token, clients, queries}` (answered `{kind: "ready"}`),
 * `{kind: "resume"}` (answered at once), `{kind: "pause"}` (answered once every search in flight
 * has finished, with the count so far). A failed search fails the worker.
 * @module
 */
interface Setup {
  kind: "setup";
  url: string;
  token: string;
  clients: number;
  queries: string[];
}

type Command = Setup | { kind: "resume" } | { kind: "pause" };

let setup: Setup | undefined;
let running = false;
let clients: Promise<void>[] = [];
let searches = 0;
let next = 0;

async function client(load: Setup): Promise<void> {
  while (running) {
    const q = load.queries[next++ % load.queries.length];
    const res = await fetch(`${load.url}/v1/memory/search?q=${encodeURIComponent(q)}&limit=10`, {
      headers: { authorization: `Bearer ${load.token}` },
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`search answered ${res.status}`);
    searches++;
  }
}

self.onmessage = async (event: MessageEvent<Command>) => {
  const command = event.data;
  if (command.kind === "setup") {
    setup = command;
    self.postMessage({ kind: "ready" });
  } else if (command.kind === "resume") {
    if (!setup) throw new Error("resume before setup");
    running = true;
    const load = setup;
    clients = Array.from({ length: load.clients }, () => client(load));
    self.postMessage({ kind: "resumed" });
  } else {
    running = false;
    await Promise.all(clients);
    self.postMessage({ kind: "paused", searches });
  }
};
