import assert from "node:assert/strict";
import { Event, type RTCDtlsTransport } from "werift";
import { ignoreRetransmittedHandshakes } from "./dtls_retransmissions.ts";

Deno.test("a retransmitted handshake message reaches werift's handler once", async () => {
  // The transport's own state event, with a socket standing in for the one werift creates when
  // the handshake starts (a real handshake cannot be made to retransmit on cue).
  const handled: number[][] = [];
  type Socket = { onHandleHandshakes: (assembled: { message_seq: number }[]) => Promise<void> };
  const stand = { onStateChange: new Event<[string]>(), dtls: undefined as Socket | undefined };
  const transport = stand as unknown as RTCDtlsTransport;
  const dropped: number[] = [];
  ignoreRetransmittedHandshakes(transport, (seq) => dropped.push(seq));
  stand.dtls = {
    onHandleHandshakes: (assembled: { message_seq: number }[]) => {
      handled.push(assembled.map((h) => h.message_seq));
      return Promise.resolve();
    },
  };
  stand.onStateChange.execute("connecting");
  await Promise.resolve();
  const socket = stand.dtls;
  // ServerHello … ServerHelloDone, then the browser's retransmission of the same flight, then Finished.
  for (const seq of [1, 2, 3, 4, 5]) await socket.onHandleHandshakes([{ message_seq: seq }]);
  for (const seq of [1, 2, 3, 4, 5]) await socket.onHandleHandshakes([{ message_seq: seq }]);
  await socket.onHandleHandshakes([{ message_seq: 6 }]);
  assert.deepEqual(handled, [[1], [2], [3], [4], [5], [6]]);
  assert.deepEqual(dropped, [1, 2, 3, 4, 5]);
});
