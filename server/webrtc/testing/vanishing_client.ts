/**
 * Test helper run as its own process: opens a session against the server at `Deno.args[0]` with
 * the token in `Deno.args[1]`, prints the session id, sends a frame now and then, and waits to be
 * killed (a peer that vanishes without a goodbye).
 */
import { connectWeriftClient } from "../_werift_client.ts";

const [url, token] = Deno.args;
const client = await connectWeriftClient(
  (path, init) => fetch(new URL(path, url), init),
  { authorization: `Bearer ${token}` },
);
console.log(client.id);
let seq = 0;
setInterval(() => {
  client.sendFrame({ seq: ++seq, captureTimeMs: Date.now(), width: 8, height: 8, format: "jpeg" }, new Uint8Array(64));
}, 50);
