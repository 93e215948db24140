import assert from "node:assert/strict";
import {
  CHUNK_PAYLOAD_BYTES,
  encodeFrame,
  type FrameChannel,
  FrameReassembler,
  FrameSender,
  MAX_FRAME_BYTES,
  MAX_MESSAGE_BYTES,
  MAX_PENDING_FRAMES,
  parseChunk,
} from "./frame_protocol.ts";

const header = (seq: number) => ({ seq, captureTimeMs: 1234.5, width: 1280, height: 720, format: "jpeg" as const });
const bytes = (n: number, fill = 0) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + fill) & 0xff);

Deno.test("a frame is cut into messages of at most 16 KiB and put back together in any order", () => {
  const data = bytes(CHUNK_PAYLOAD_BYTES * 3 + 17);
  const messages = encodeFrame(header(7), data);
  assert.equal(messages.length, 4);
  assert.ok(messages.every((m) => m.byteLength <= MAX_MESSAGE_BYTES));
  const reassembler = new FrameReassembler();
  assert.equal(reassembler.push(messages[2]), undefined);
  assert.equal(reassembler.push(messages[0]), undefined);
  assert.equal(reassembler.push(messages[0]), undefined); // a duplicate changes nothing
  assert.equal(reassembler.push(messages[3]), undefined);
  const frame = reassembler.push(messages[1])!;
  assert.deepEqual({ ...frame, data: undefined }, { ...header(7), data: undefined });
  assert.deepEqual(frame.data, data);
  assert.equal(reassembler.stats.frames, 1);
  assert.equal(reassembler.pendingFrames, 0);
});

Deno.test("a frame missing a chunk is given up when a newer one completes; late chunks are ignored", () => {
  const reassembler = new FrameReassembler();
  const first = encodeFrame(header(1), bytes(CHUNK_PAYLOAD_BYTES * 2));
  const second = encodeFrame(header(2), bytes(CHUNK_PAYLOAD_BYTES + 1, 9));
  reassembler.push(first[0]); // first[1] is lost
  reassembler.push(second[0]);
  assert.equal(reassembler.push(second[1])?.seq, 2);
  assert.equal(reassembler.stats.lost, 1);
  assert.equal(reassembler.push(first[1]), undefined);
  assert.equal(reassembler.stats.late, 1);
  assert.equal(reassembler.pendingFrames, 0);
});

Deno.test("at most MAX_PENDING_FRAMES partial frames are held, whatever the sender does", () => {
  const reassembler = new FrameReassembler();
  for (let seq = 1; seq <= 100; seq++) reassembler.push(encodeFrame(header(seq), bytes(CHUNK_PAYLOAD_BYTES * 2))[0]);
  assert.equal(reassembler.pendingFrames, MAX_PENDING_FRAMES);
  assert.equal(reassembler.stats.lost, 100 - MAX_PENDING_FRAMES);
});

Deno.test("bad headers are refused with a reason and counted, never thrown", () => {
  const good = encodeFrame(header(3), bytes(100))[0];
  const mutate = (offset: number, value: number) => {
    const copy = good.slice();
    copy[offset] = value;
    return copy;
  };
  const oversized = new Uint8Array(MAX_MESSAGE_BYTES + 1);
  oversized.set(good.subarray(0, 26));
  const cases: [Uint8Array, string][] = [
    [good.subarray(0, 10), "malformed"], // shorter than the header
    [good.subarray(0, 26), "malformed"], // header, no payload
    [mutate(0, 2), "malformed"], // version
    [mutate(1, 7), "malformed"], // format
    [mutate(5, 9), "malformed"], // chunk count disagrees with the size
    [good.subarray(0, 90), "malformed"], // payload shorter than declared
    [oversized, "oversized"],
  ];
  const zeroWidth = good.slice();
  new DataView(zeroWidth.buffer).setUint16(18, 0);
  cases.push([zeroWidth, "malformed"]);
  const hugeTotal = good.slice();
  new DataView(hugeTotal.buffer).setUint32(22, MAX_FRAME_BYTES + 1);
  cases.push([hugeTotal, "oversized"]);
  const rejected: string[] = [];
  const reassembler = new FrameReassembler({ onReject: (reason) => rejected.push(reason) });
  for (const [message, reason] of cases) {
    const parsed = parseChunk(message);
    assert.equal(parsed.ok, false);
    if (!parsed.ok) assert.equal(parsed.reason, reason);
    assert.equal(reassembler.push(message), undefined);
  }
  assert.deepEqual(rejected, cases.map(([, reason]) => reason));
  assert.equal(reassembler.stats.malformed + reassembler.stats.oversized, cases.length);
  assert.equal(reassembler.push(good)?.seq, 3);
});

Deno.test("encodeFrame refuses what the receiver would refuse", () => {
  assert.throws(() => encodeFrame({ ...header(1), width: 0 }, bytes(10)), RangeError);
  assert.throws(() => encodeFrame({ ...header(-1) }, bytes(10)), RangeError);
  assert.throws(() => encodeFrame(header(1), new Uint8Array(0)), RangeError);
  assert.throws(() => encodeFrame(header(1), new Uint8Array(MAX_FRAME_BYTES + 1)), RangeError);
});

class FakeBufferChannel implements FrameChannel {
  bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  readyState = "open";
  sent: Uint8Array[] = [];
  send(data: Uint8Array) {
    this.sent.push(data);
    this.bufferedAmount += data.byteLength;
  }
}

Deno.test("a sender under backpressure keeps one waiting frame, the newest, and sends it when the buffer drains", () => {
  const channel = new FakeBufferChannel();
  const sender = new FrameSender(channel, { highWaterBytes: 40_000 });
  assert.equal(channel.bufferedAmountLowThreshold, 20_000);
  assert.ok(sender.send(header(1), bytes(50_000))); // goes out: the buffer was empty
  assert.equal(sender.send(header(2), bytes(1000)), false); // buffer above high water: waits
  assert.equal(sender.send(header(3), bytes(1000)), false); // replaces 2
  assert.equal(sender.stats.dropped, 1);
  assert.equal(sender.drain(), false);
  channel.bufferedAmount = 0; // the channel sent its buffer ("bufferedamountlow")
  assert.ok(sender.drain());
  assert.equal(sender.waiting, false);
  const seqs = channel.sent.map((m) => parseChunk(m)).map((p) => p.ok ? p.header.seq : -1);
  assert.deepEqual([...new Set(seqs)], [1, 3]);
  assert.deepEqual(sender.stats, { sent: 2, dropped: 1 });
  channel.readyState = "closed";
  assert.equal(sender.send(header(4), bytes(10)), false);
  assert.equal(sender.stats.dropped, 2);
});
