/// <reference lib="deno.worker" />
/**
 * Worker for the `memory` suite: runs N search clients against the server until a deadline and
 * reports how many searches ran. It is a worker so that the health probe in the main thread does
 * not wait behind the load generators' own response handling.
 * @module
 */
interface Load {
  url: string;
  token: string;
  clients: number;
  until: number;
  queries: string[];
}

self.onmessage = async (event: MessageEvent<Load>) => {
  const { url, token, clients, until, queries } = event.data;
  let searches = 0;
  let next = 0;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (Date.now() < until) {
      const q = queries[next++ % queries.length];
      const res = await fetch(`${url}/v1/memory/search?q=${encodeURIComponent(q)}&limit=10`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`search answered ${res.status}`);
      searches++;
    }
  }));
  self.postMessage({ searches });
};
