import assert from "node:assert/strict";
import { createLogger } from "../log/mod.ts";
import { MlService } from "../ml/mod.ts";
import type { EncodedFrame } from "./frame_protocol.ts";
import { mlFaceDetector } from "./ml_detector.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");

async function realMl() {
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-webrtc-ml-test-" });
  const ml = new MlService({
    workers: 1,
    remote: [],
    python: `${ROOT}/python-ml/.venv/bin/python`,
    packageDir: `${ROOT}/python-ml`,
    dataDir,
    modelCachePath: `${dataDir}/models`,
    token: "test-token",
    log: createLogger({ level: "error", sink: () => {} }),
    threads: 1,
  });
  await ml.start();
  return {
    ml,
    async [Symbol.asyncDispose]() {
      await ml.stop(3_000);
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

function frame(seq: number, data: Uint8Array): EncodedFrame {
  return { seq, captureTimeMs: Date.now(), width: 512, height: 512, format: "jpeg", data } as EncodedFrame;
}

Deno.test({
  name: "a session's frames go through one ML frame stream, one face each, and the stream is freed on close",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using t = await realMl();
    const image = await Deno.readFile(`${ROOT}/tests/.fixtures/astronaut.png`);
    const detector = mlFaceDetector(t.ml);
    assert.ok(detector.available);
    const direct = await detector.detect(frame(1, image), new AbortController().signal);
    const session = detector.session!();
    const signal = new AbortController().signal;
    for (let seq = 1; seq <= 3; seq++) {
      const found = await session.detect(frame(seq, image), signal);
      assert.equal(found.detections.length, 1);
      assert.equal(found.model, "mediapipe/face_detection_short_range");
      assert.ok(Math.abs(found.detections[0].box.x - direct.detections[0].box.x) < 0.02);
      assert.equal(t.ml.workers[0].inFlight, 1, "one stream holds the worker while the session lives");
    }
    session.close();
    // The cancelled call releases the worker once its results end.
    await t.ml.detect({ image }, "faces");
    assert.deepEqual(t.ml.workers[0].inFlight, 0);
  },
});

Deno.test({
  name: "an aborted frame cancels the stream, and the next frame opens a new one",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using t = await realMl();
    const image = await Deno.readFile(`${ROOT}/tests/.fixtures/astronaut.png`);
    const session = mlFaceDetector(t.ml).session!();
    const abort = new AbortController();
    const pending = session.detect(frame(1, image), abort.signal);
    abort.abort(new Error("session closed"));
    await assert.rejects(pending, /session closed/);
    const found = await session.detect(frame(2, image), new AbortController().signal);
    assert.equal(found.detections.length, 1);
    session.close();
  },
});
