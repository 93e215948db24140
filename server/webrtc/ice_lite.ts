/**
 * How the server's ICE-lite agent (werift) picks the pair it sends on, for browsers.
 *
 * A browser checks every pair it can form with the server's candidates (loopback, each LAN
 * address, IPv4 and IPv6) and puts USE-CANDIDATE on the pair it currently prefers. It often
 * prefers one pair first and moves to a better one tens of milliseconds later; it then prunes the
 * first pair and drops anything arriving on it as coming from an unknown address. werift's lite
 * agent keeps the first nominated pair for good, so its DTLS handshake and SCTP went to a pair the
 * browser had already dropped: the connection stayed at "connecting" (or its data channels never
 * opened) about one time in two. Here the agent behaves as media servers' lite agents do
 * (mediasoup's `IceServer`):
 *
 * - it moves to each pair the browser nominates after the first;
 * - for a browser on this machine, it does not answer a check it could only answer from another
 *   address than the one checked: werift binds every candidate's socket to the wildcard address,
 *   and the kernel sends to one of this machine's addresses from that same address, so the
 *   "127.0.0.1" candidate answers a LAN address from that LAN address, and the reverse. The browser
 *   ignores such an answer, but the pair would look valid here;
 * - for a browser on this machine, it is connected on the first valid check, on that check's pair,
 *   instead of waiting for the browser's nomination, which the browser sends only on a later ping
 *   (50–130 ms on loopback). The pairs left are symmetric, so the first valid one carries DTLS.
 *   For a browser elsewhere the route decides where an answer leaves from, so there the agent
 *   waits for the nomination, as werift does.
 *
 * @example
 * ```ts
 * const local = new Set(localAddresses());
 * const pc = new RTCPeerConnection({ iceLite: true, iceFilterStunResponse: answersFromCheckedAddress(local) });
 * for (const transport of pc.iceTransports) followBrowser(transport.connection, { connectOnFirstCheck: local });
 * ```
 * @module
 */
import { CandidatePairState, type IceConnection } from "werift";

type IncomingCheck = (
  message: { attributesKeys: string[] },
  addr: readonly [string, number],
  protocol: unknown,
) => void;
type Pair = NonNullable<IceConnection["nominated"]>;
type Lite = IceConnection & { checkIncoming?: IncomingCheck; checkComplete?: (pair: Pair) => void };

/** Whether `address` is a loopback address (IPv4, IPv6 or IPv4-mapped). */
export function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === "::1" || /^::ffff:127\./i.test(address);
}

/** This machine's addresses, loopback included. */
export function localAddresses(): string[] {
  return Deno.networkInterfaces().map((i) => i.address);
}

/** Whether a peer at `remote` is on this machine, given its `local` addresses. */
function onThisMachine(remote: string, local: ReadonlySet<string>): boolean {
  return isLoopback(remote) || local.has(remote);
}

/**
 * Makes a filter for werift's `iceFilterStunResponse` that answers a check only when the answer
 * leaves from the address the client checked. `local` is this machine's addresses.
 */
export function answersFromCheckedAddress(local: ReadonlySet<string>) {
  return (_message: unknown, addr: readonly [string, number], protocol: { localCandidate?: { host: string } }) => {
    const checked = protocol.localCandidate?.host;
    if (checked === undefined) return true;
    // To this machine the kernel answers from the peer's own address (loopback: any loopback one).
    if (onThisMachine(addr[0], local)) return addr[0] === checked || (isLoopback(addr[0]) && isLoopback(checked));
    // Another machine reaches a loopback candidate only through something odd; never answer there.
    return !isLoopback(checked);
  };
}

/**
 * Makes a lite `connection` follow each nomination of the controlling agent and, for a peer whose
 * address is in `connectOnFirstCheck` (or loopback), connect on its first valid check. `onSwitch`
 * hears each move to another pair. Returns false (and changes nothing) when the agent is not lite
 * or this werift lacks the hooks wrapped here.
 */
export function followBrowser(
  connection: IceConnection,
  options: { connectOnFirstCheck?: ReadonlySet<string>; onSwitch?: (to: Pair, from: Pair) => void } = {},
): boolean {
  const { connectOnFirstCheck, onSwitch } = options;
  const agent = connection as Lite;
  const checkIncoming = agent.checkIncoming;
  const checkComplete = agent.checkComplete;
  if (!connection.iceLite || typeof checkIncoming !== "function" || typeof checkComplete !== "function") return false;
  agent.checkIncoming = function (message, addr, protocol) {
    // The original has answered the check; it records the pair and takes a first nomination.
    checkIncoming.call(this, message, addr, protocol);
    const pair = connection.checkList.find((candidate) =>
      candidate.protocol === protocol && candidate.remoteAddr[0] === addr[0] && candidate.remoteAddr[1] === addr[1]
    );
    if (!pair) return;
    const current = connection.nominated;
    if (!current) {
      if (!connectOnFirstCheck || !onThisMachine(addr[0], connectOnFirstCheck)) return;
      // The first valid check from this machine: the pair works both ways, so start on it.
      pair.nominated = true;
      pair.updateState(CandidatePairState.SUCCEEDED);
      checkComplete.call(agent, pair);
      return;
    }
    if (!message.attributesKeys.includes("USE-CANDIDATE") || pair === current) return;
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
