/**
 * The server's ICE-lite agent follows the browser's latest nomination.
 *
 * A browser checks every pair it can form with the server's candidates (loopback, each LAN
 * address, IPv4 and IPv6) and puts USE-CANDIDATE on the pair it currently prefers. It often
 * prefers one pair first (the first to answer) and moves to a better one tens of milliseconds
 * later; it then prunes the first pair and drops anything arriving on it as coming from an unknown
 * address. werift's lite agent keeps the first nominated pair for good, so its DTLS handshake and
 * SCTP went to a pair the browser had already dropped: the connection stayed at "connecting" (or
 * its data channels never opened) about one time in two. A lite agent must send where the
 * controlling agent last nominated, as media servers do (mediasoup selects the tuple of the latest
 * USE-CANDIDATE request).
 *
 * @example
 * ```ts
 * for (const transport of pc.iceTransports) followNominations(transport.connection);
 * ```
 * @module
 */
import type { IceConnection } from "werift";

type IncomingCheck = (
  message: { attributesKeys: string[] },
  addr: readonly [string, number],
  protocol: unknown,
) => void;
type Pair = NonNullable<IceConnection["nominated"]>;

/**
 * Makes a lite `connection` switch its selected pair to each pair the controlling agent nominates
 * after the first. `onSwitch` hears each switch. Returns false (and changes nothing) when the agent
 * is not lite or this werift has no incoming-check hook to wrap.
 */
export function followNominations(
  connection: IceConnection,
  onSwitch?: (to: Pair, from: Pair) => void,
): boolean {
  const agent = connection as IceConnection & { checkIncoming?: IncomingCheck };
  const checkIncoming = agent.checkIncoming;
  if (!connection.iceLite || typeof checkIncoming !== "function") return false;
  agent.checkIncoming = function (message, addr, protocol) {
    // The original answers the check and takes the first nomination.
    checkIncoming.call(this, message, addr, protocol);
    if (!message.attributesKeys.includes("USE-CANDIDATE")) return;
    const current = connection.nominated;
    const pair = connection.checkList.find((candidate) =>
      candidate.protocol === protocol && candidate.remoteAddr[0] === addr[0] && candidate.remoteAddr[1] === addr[1]
    );
    if (!current || !pair || pair === current) return;
    current.nominated = false;
    pair.nominated = true;
    connection.nominated = pair;
    onSwitch?.(pair, current);
  };
  return true;
}

/**
 * Moves werift's media-level `a=ice-lite` to the session level, the only place RFC 8839 allows it
 * and the only place Chromium reads it. A browser that misses it takes the server for a full agent:
 * it then puts USE-CANDIDATE on every pair it checks instead of only on its selected, writable
 * one, and waits for checks the server never sends.
 */
export function sessionLevelIceLite(sdp: string): string {
  const lines = sdp.split(/\r?\n/);
  if (!lines.some((line) => line === "a=ice-lite")) return sdp;
  const firstMedia = lines.findIndex((line) => line.startsWith("m="));
  const session = lines.slice(0, firstMedia < 0 ? lines.length : firstMedia);
  const media = firstMedia < 0 ? [] : lines.slice(firstMedia).filter((line) => line !== "a=ice-lite");
  if (!session.includes("a=ice-lite")) {
    const timing = session.findIndex((line) => line.startsWith("t="));
    session.splice(timing < 0 ? session.length : timing + 1, 0, "a=ice-lite");
  }
  return [...session, ...media].join("\r\n");
}
