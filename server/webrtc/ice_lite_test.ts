import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createSocket, type Socket } from "node:dgram";
import { classes, Connection, Message, methods } from "werift";
import {
  answersFromCheckedAddress,
  followBrowser,
  isLoopback,
  localAddresses,
  sessionLevelIceLite,
} from "./ice_lite.ts";

const CLIENT_UFRAG = "cli1";
const CLIENT_PWD = "client-password-0123456789";

/** A UDP socket on loopback standing in for one of a browser's candidates. */
async function clientSocket(): Promise<Socket & AsyncDisposable> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return Object.assign(socket, {
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  });
}

function nextDatagram(socket: Socket, predicate: (data: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve) => {
    const listener = (data: Buffer) => {
      if (!predicate(data)) return;
      socket.off("message", listener);
      resolve(data);
    };
    socket.on("message", listener);
  });
}

/** Sends a binding request (nominating unless `nominate` is false) and waits for the answer. */
async function check(socket: Socket, server: Connection, port: number, nominate = true): Promise<void> {
  const request = new Message(methods.BINDING, classes.REQUEST)
    .setAttribute("USERNAME", `${server.localUsername}:${CLIENT_UFRAG}`)
    .setAttribute("PRIORITY", 1853759231)
    .setAttribute("ICE-CONTROLLING", 12345678901234567890n);
  if (nominate) request.setAttribute("USE-CANDIDATE", null);
  request.addMessageIntegrity(Buffer.from(server.localPassword, "utf8")).addFingerprint();
  const response = nextDatagram(socket, (data) => data.subarray(8, 20).equals(request.transactionId));
  socket.send(request.bytes, port, "127.0.0.1");
  await response;
}

async function liteServer(): Promise<{ server: Connection; port: number } & AsyncDisposable> {
  // Only the loopback candidate, whatever interfaces the machine has.
  const server = new Connection(false, {
    iceLite: true,
    useIpv4: false,
    useIpv6: false,
    additionalHostAddresses: ["127.0.0.1"],
  });
  server.setRemoteParams({ iceLite: false, usernameFragment: CLIENT_UFRAG, password: CLIENT_PWD });
  await server.gatherCandidates();
  const port = server.localCandidates.find((c) => c.host === "127.0.0.1")!.port;
  void server.connect().catch(() => {}); // a lite agent's connect waits for the first nomination
  return { server, port, [Symbol.asyncDispose]: () => server.close() };
}

Deno.test("a lite agent is connected on the first valid check from this machine, before any nomination", async () => {
  await using lite = await liteServer();
  assert.ok(followBrowser(lite.server, { connectOnFirstCheck: new Set() }));
  await using first = await clientSocket();
  await using second = await clientSocket();
  await check(first, lite.server, lite.port, false);
  assert.equal(lite.server.nominated?.remoteAddr[1], first.address().port);
  // A later check without nomination does not move it.
  await check(second, lite.server, lite.port, false);
  assert.equal(lite.server.nominated?.remoteAddr[1], first.address().port);
  const arrived = nextDatagram(first, (data) => data.toString() === "dtls");
  await lite.server.send(Buffer.from("dtls"));
  assert.equal((await arrived).toString(), "dtls");
});

Deno.test("without connectOnFirstCheck (a peer elsewhere), the agent waits for the nomination", async () => {
  await using lite = await liteServer();
  assert.ok(followBrowser(lite.server));
  await using peer = await clientSocket();
  await check(peer, lite.server, lite.port, false);
  assert.equal(lite.server.nominated === undefined, true, "not connected before the nomination");
  await check(peer, lite.server, lite.port);
  assert.equal(lite.server.nominated?.remoteAddr[1], peer.address().port);
});

Deno.test("a lite agent sends where the controlling agent nominated last", async () => {
  await using lite = await liteServer();
  assert.ok(followBrowser(lite.server, { connectOnFirstCheck: new Set() }));
  await using first = await clientSocket();
  await using second = await clientSocket();
  await check(first, lite.server, lite.port);
  assert.equal(lite.server.nominated?.remoteAddr[1], first.address().port);
  // The browser moves to a better pair and prunes the first: data must follow it.
  await check(second, lite.server, lite.port);
  assert.equal(lite.server.nominated?.remoteAddr[1], second.address().port);
  const arrived = nextDatagram(second, (data) => data.toString() === "dtls");
  await lite.server.send(Buffer.from("dtls"));
  assert.equal((await arrived).toString(), "dtls");
});

Deno.test("without followBrowser, werift's lite agent keeps its first nominated pair for good", async () => {
  await using lite = await liteServer();
  await using first = await clientSocket();
  await using second = await clientSocket();
  await check(first, lite.server, lite.port);
  await check(second, lite.server, lite.port);
  assert.equal(lite.server.nominated?.remoteAddr[1], first.address().port);
});

Deno.test("followBrowser leaves a full agent alone", () => {
  const full = new Connection(true, { iceLite: false });
  assert.equal(followBrowser(full), false);
});

Deno.test("a check is answered only when the answer leaves from the checked address", () => {
  const on = (host: string) => ({ localCandidate: { host } });
  // This machine has 192.0.2.2 and fd00::2; 192.0.2.7 is another machine.
  const answers = answersFromCheckedAddress(new Set(["127.0.0.1", "192.0.2.2", "fd00::2"]));
  assert.ok(answers(null, ["127.0.0.1", 5000], on("127.0.0.1")));
  assert.ok(answers(null, ["192.0.2.2", 5000], on("192.0.2.2")));
  assert.ok(answers(null, ["fd00::2", 5000], on("fd00::2")));
  assert.ok(answers(null, ["::1", 5000], on("::1")));
  assert.ok(answers(null, ["192.0.2.7", 5000], on("192.0.2.2")));
  // werift's sockets listen on the wildcard address: these answers would leave from another one.
  assert.equal(answers(null, ["192.0.2.2", 5000], on("127.0.0.1")), false);
  assert.equal(answers(null, ["127.0.0.1", 5000], on("192.0.2.2")), false);
  assert.equal(answers(null, ["192.0.2.7", 5000], on("127.0.0.1")), false);
  assert.ok(isLoopback("::ffff:127.0.0.1"));
  assert.ok(localAddresses().includes("127.0.0.1"));
  assert.equal(isLoopback("10.0.0.1"), false);
});

Deno.test("a=ice-lite moves from the media section to the session", () => {
  const sdp = [
    "v=0",
    "o=- 1 0 IN IP4 0.0.0.0",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "a=ice-ufrag:abcd",
    "a=ice-lite",
    "a=setup:active",
    "",
  ].join("\r\n");
  const moved = sessionLevelIceLite(sdp).split("\r\n");
  assert.equal(moved.indexOf("a=ice-lite"), 4);
  assert.equal(moved.filter((line) => line === "a=ice-lite").length, 1);
  assert.equal(moved.at(-1), "");
  assert.equal(sessionLevelIceLite("v=0\r\nm=application 9 x y\r\n"), "v=0\r\nm=application 9 x y\r\n");
});
