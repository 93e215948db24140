/**
 * Keeps werift's DTLS handshake from acting twice on a retransmitted flight.
 *
 * A browser retransmits its last handshake flight when the answer is slow to come: Chromium waits
 * only about 50 ms on loopback, and werift computes its key exchange in JavaScript, which takes
 * longer than that on a busy machine. werift then handles the retransmitted ServerHello flight as a
 * new one: it builds a second ClientKeyExchange with a fresh key, so its keys no longer match the
 * browser's, which had finished the handshake on the first. The browser shows "connected", every
 * record after that fails to decrypt, and the data channels never open. (As DTLS server werift
 * does the same with a retransmitted ClientHello.) DTLS numbers handshake messages (`message_seq`),
 * so a message seen once is dropped here; werift's own timer still retransmits its flight if the
 * browser really missed it.
 *
 * @example
 * ```ts
 * for (const transport of pc.dtlsTransports) ignoreRetransmittedHandshakes(transport);
 * ```
 * @module
 */
import type { RTCDtlsTransport } from "werift";

type Handshake = { message_seq: number };
type Socket = { onHandleHandshakes: (assembled: Handshake[]) => Promise<void> };

/**
 * Wraps the handshake handler of `transport`'s DTLS socket once werift creates it (when the
 * transport starts connecting). `onDropped` hears each dropped message's sequence number.
 */
export function ignoreRetransmittedHandshakes(
  transport: RTCDtlsTransport,
  onDropped?: (messageSeq: number) => void,
): void {
  const wrap = () => {
    const socket = transport.dtls as unknown as Socket | undefined;
    if (!socket || typeof socket.onHandleHandshakes !== "function") return;
    const handle = socket.onHandleHandshakes;
    const seen = new Set<number>();
    socket.onHandleHandshakes = (assembled) => {
      const fresh = assembled.filter((handshake) => {
        if (seen.has(handshake.message_seq)) {
          onDropped?.(handshake.message_seq);
          return false;
        }
        seen.add(handshake.message_seq);
        return true;
      });
      return fresh.length ? handle(fresh) : Promise.resolve();
    };
  };
  // werift creates the socket synchronously right after announcing "connecting", and nothing of
  // the handshake can arrive before the next task.
  const subscription = transport.onStateChange.subscribe((state) => {
    if (state !== "connecting") return;
    subscription.unSubscribe();
    queueMicrotask(wrap);
  });
}
