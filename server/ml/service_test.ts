import assert from "node:assert/strict";
import { TabAgentError } from "../errors/mod.ts";
import { createLogger } from "../log/mod.ts";
import { MlService, type MlServiceOptions } from "./service.ts";
import { BREAKER_CRASHES, RESTART_MAX_MS, restartDelay } from "./_worker_base.ts";
import type { LocalWorker } from "./worker.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const PYTHON = `${ROOT}/python-ml/.venv/bin/python`;

/** The TabAgentError `fn` rejects with. */
async function failure(fn: () => Promise<unknown>): Promise<TabAgentError> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof TabAgentError, String(error));
    return error;
  }
  throw new Error("expected a rejection");
}

async function service(options: Partial<MlServiceOptions> = {}) {
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-ml-test-" });
  const logs: string[] = [];
  const ml = new MlService({
    workers: 1,
    remote: [],
    python: PYTHON,
    packageDir: `${ROOT}/python-ml`,
    dataDir,
    modelCachePath: `${dataDir}/models`,
    token: "test-token",
    log: createLogger({ level: "debug", sink: (line) => logs.push(line) }),
    threads: 1,
    ...options,
  });
  return {
    ml,
    logs,
    async [Symbol.asyncDispose]() {
      await ml.stop(3_000);
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** A test over a started service with `options`: its Python children outlive Deno's op and resource sanitizers. */
function serviceTest(
  name: string,
  options: Partial<MlServiceOptions>,
  fn: (t: Awaited<ReturnType<typeof service>>) => Promise<void>,
): void {
  Deno.test({
    name,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      await using t = await service(options);
      await t.ml.start();
      await fn(t);
    },
  });
}

Deno.test("restart delays grow exponentially with jitter, capped", () => {
  assert.deepEqual(restartDelay(1, () => 0), 50);
  assert.deepEqual(restartDelay(1, () => 1), 100);
  assert.deepEqual(restartDelay(4, () => 1), 800);
  assert.ok(restartDelay(30, () => 1) <= RESTART_MAX_MS);
  const spread = new Set(Array.from({ length: 20 }, () => restartDelay(3)));
  assert.ok(spread.size > 1, "jitter spreads restarts");
});

serviceTest("a supervised worker serves, logs through the server's logger, and stops", {}, async (t) => {
  assert.deepEqual(t.ml.health().state, "ready");
  const worker = t.ml.workers[0] as LocalWorker;
  const { pid } = await t.ml.run((client) => client.ping());
  assert.deepEqual(pid, worker.pid);
  const listening = t.logs.map((l) => JSON.parse(l)).find((r) => r.msg === "listening");
  assert.ok(listening, "Python's own log line reached the server's log");
  assert.deepEqual(listening.component, "");
  assert.deepEqual(listening.worker, "ml-0");
  // Model management: load a built-in .tflite, see it listed, unload it everywhere.
  const face = "mediapipe/face_detection_short_range";
  const info = await t.ml.run((client) => client.loadModel({ model: face, kind: "MODEL_KIND_TFLITE" }));
  assert.deepEqual([info.model, info.loaded, info.source], [face, true, "package mediapipe"]);
  const listed = await t.ml.run((client) => client.listModels());
  assert.ok(listed.some((m) => m.model === face && m.loaded));
  // LiteRT: the face detector on a blank 128x128 image: its two outputs, and no face scores high.
  const blank = new Float32Array(128 * 128 * 3).fill(-1);
  const run = await t.ml.runTflite({
    model: face,
    inputs: [{ dtype: "float32", shape: [1, 128, 128, 3], data: new Uint8Array(blank.buffer) }],
  });
  assert.deepEqual(run.outputs.map((o) => o.shape).sort(), [[1, 896, 1], [1, 896, 16]]);
  const logits = run.outputs.find((o) => o.shape[2] === 1)!;
  const scores = new Float32Array(logits.data.buffer, logits.data.byteOffset, 896);
  assert.ok(scores.every((logit) => 1 / (1 + Math.exp(-logit)) < 0.5), "no face on a blank image");
  const wrong = await failure(() =>
    t.ml.runTflite({ model: face, inputs: [{ dtype: "float32", shape: [1, 2], data: new Uint8Array(8) }] })
  );
  assert.deepEqual(wrong.code, "validation_failed");
  assert.deepEqual(await t.ml.unload(face), true);
  assert.deepEqual(await t.ml.unload(face), false);
  await t.ml.stop(3_000);
  assert.deepEqual(worker.state, "stopped");
  assert.deepEqual(worker.pid, null);
});

serviceTest("a hung worker: the call hits its deadline; cancellation reaches Python", {}, async (t) => {
  const worker = t.ml.workers[0] as LocalWorker;
  worker.signal("SIGSTOP");
  try {
    const error = await failure(() => t.ml.run((client) => client.ping(undefined, { deadlineMs: 300 })));
    assert.deepEqual(error.code, "timeout", error.message);
  } finally {
    worker.signal("SIGCONT");
  }
  // An aborted signal cancels the call at once, with `cancelled`.
  const controller = new AbortController();
  worker.signal("SIGSTOP");
  try {
    const call = t.ml.run((client) => client.ping(undefined, { signal: controller.signal }));
    controller.abort();
    assert.deepEqual((await failure(() => call)).code, "cancelled");
  } finally {
    worker.signal("SIGCONT");
  }
  await t.ml.run((client) => client.ping());
});

serviceTest("stop: a worker that does not exit on SIGTERM is killed after the grace period", {}, async (t) => {
  const worker = t.ml.workers[0] as LocalWorker;
  const pid = worker.pid!;
  worker.signal("SIGSTOP"); // a stopped process cannot act on SIGTERM
  await t.ml.stop(800);
  assert.deepEqual(worker.state, "stopped");
  assert.ok(t.logs.some((l) => l.includes("ignored SIGTERM; killing it")));
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch((error) => {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  });
  assert.ok(!/^\d+ \(.*\) [RSDT]/.test(stat), "the worker process is gone");
});

serviceTest("SIGKILL mid-call fails that call with unavailable, then the worker restarts and serves", {}, async (t) => {
  const worker = t.ml.workers[0] as LocalWorker;
  const before = worker.pid;
  worker.signal("SIGSTOP"); // holds the call inside Python
  const call = t.ml.run((client) => client.ping());
  while (worker.inFlight === 0) await worker.changed(10);
  worker.signal("SIGKILL");
  assert.deepEqual((await failure(() => call)).code, "unavailable");
  while (worker.state !== "ready" || worker.pid === before) await worker.changed(30_000);
  const { pid } = await t.ml.run((client) => client.ping());
  assert.ok(pid !== before, "a new process serves");
  assert.deepEqual(worker.status().restarts, 1);
});

serviceTest("detect() and the frame stream find the astronaut's face, one result per frame in order", {}, async (t) => {
  const image = await Deno.readFile(`${ROOT}/tests/.fixtures/astronaut.png`);
  const single = await t.ml.detect({ image }, "faces");
  assert.deepEqual(single.detections.length, 1);
  assert.deepEqual(single.detections[0].landmarks.length, 6);
  const stream = await t.ml.detectStream();
  for (let id = 1; id <= 3; id++) stream.send({ id, image, tasks: ["faces"] });
  stream.end();
  const results = [];
  for await (const result of stream) results.push(result);
  assert.deepEqual(results.map((r) => r.frameId), [1, 2, 3]);
  for (const result of results) {
    assert.deepEqual(result.detections.length, 1);
    assert.ok(Math.abs(result.detections[0].box.x - single.detections[0].box.x) < 0.02);
  }
  assert.deepEqual(t.ml.workers[0].inFlight, 0);
  const bad = await failure(() => t.ml.detect({ image: new TextEncoder().encode("not an image") }, "faces"));
  assert.deepEqual(bad.code, "unsupported_media_type");
});

serviceTest(
  "a worker that keeps crashing opens the breaker: degraded, and calls fail fast",
  { python: "/bin/false" },
  async (t) => {
    const worker = t.ml.workers[0];
    while (worker.state !== "broken") await worker.changed(30_000);
    const health = t.ml.health();
    assert.deepEqual(health.state, "degraded");
    assert.ok(health.detail?.includes("breaker open"), health.detail);
    assert.ok(worker.status().restarts >= BREAKER_CRASHES);
    const error = await failure(() => t.ml.run((client) => client.ping()));
    assert.deepEqual(error.code, "unavailable");
  },
);

serviceTest(
  "two workers share the load: least-loaded spreads concurrent calls, round-robin alternates",
  { workers: 2 },
  async (t) => {
    while (t.ml.workers.some((w) => w.state !== "ready")) {
      await t.ml.workers.find((w) => w.state !== "ready")!.changed(30_000);
    }
    const pids = await Promise.all(Array.from({ length: 16 }, () => t.ml.run((client) => client.ping())));
    assert.deepEqual(new Set(pids.map((p) => p.pid)).size, 2);
    await using rr = await service({ workers: 2, dispatch: "round-robin" });
    await rr.ml.start();
    while (rr.ml.workers.some((w) => w.state !== "ready")) {
      await rr.ml.workers.find((w) => w.state !== "ready")!.changed(30_000);
    }
    const sequence = [];
    for (let i = 0; i < 4; i++) sequence.push((await rr.ml.run((client) => client.ping())).pid);
    assert.ok(
      sequence[0] !== sequence[1] && sequence[0] === sequence[2] && sequence[1] === sequence[3],
      String(sequence),
    );
  },
);

/**
 * A worker someone else runs (`python -m tabagent_ml` with `args`), alive while its stdin is open;
 * resolves with the address it listens on.
 */
async function standaloneWorker(args: string[], token: string) {
  const child = new Deno.Command(PYTHON, {
    args: ["-m", "tabagent_ml", ...args, "--lifeline", "stdin"],
    cwd: `${ROOT}/python-ml`,
    env: { TABAGENT_ML_TOKEN: token, PYTHONPATH: `${ROOT}/python-ml` },
    stdin: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes('"listening"')) text += (await reader.read()).value ?? "";
  reader.releaseLock();
  return { child, address: /"address": "([^"]+)"/.exec(text)![1] };
}

Deno.test({
  name: "a remote worker on loopback is used with the token, and refused without it",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { child, address } = await standaloneWorker(["--address", "127.0.0.1:0"], "remote-token");
    try {
      {
        await using t = await service({ workers: 0, remote: [address], token: "remote-token" });
        await t.ml.start();
        assert.deepEqual(t.ml.statuses()[0].kind, "remote");
        assert.deepEqual((await t.ml.run((client) => client.ping())).pid, child.pid);
      }
      {
        await using t = await service({ workers: 0, remote: [address], token: "wrong" });
        await t.ml.start();
        const error = await failure(() => t.ml.run((client) => client.ping()));
        assert.deepEqual(error.code, "upstream_failed");
      }
    } finally {
      await child.stdin.close();
      await child.status;
    }
  },
});

/** This machine's first non-loopback IPv4 address, if it has one. */
function lanAddress(): string | undefined {
  return Deno.networkInterfaces().find((i) => i.family === "IPv4" && !i.address.startsWith("127."))?.address;
}

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
}

Deno.test({
  name: "a remote worker off loopback is reached over TLS with a private CA and the token",
  ignore: lanAddress() === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const ip = lanAddress()!;
    const dir = await Deno.makeTempDir({ prefix: "tabagent-ml-tls-" });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    await openssl(dir, "req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=ca");
    await openssl(dir, "req", ...ec, "-keyout", "key.pem", "-out", "req.csr", "-subj", "/CN=worker");
    await Deno.writeTextFile(`${dir}/san.ext`, `subjectAltName=DNS:ml-worker.test,IP:${ip}\n`);
    await openssl(
      dir,
      ..."x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 1 -extfile san.ext"
        .split(" "),
    );
    const { child, address } = await standaloneWorker(
      ["--address", `${ip}:0`, "--tls-cert", `${dir}/cert.pem`, "--tls-key", `${dir}/key.pem`],
      "tls-token",
    );
    try {
      {
        await using t = await service({
          workers: 0,
          remote: [address],
          token: "tls-token",
          remoteCa: await Deno.readFile(`${dir}/ca.pem`),
          remoteTlsName: "ml-worker.test",
        });
        await t.ml.start();
        assert.deepEqual(t.ml.health().state, "ready", t.ml.health().detail);
        assert.deepEqual((await t.ml.run((client) => client.ping())).pid, child.pid);
      }
      {
        // Without the CA the certificate is not trusted: the worker never becomes ready.
        await using t = await service({
          workers: 0,
          remote: [address],
          token: "tls-token",
          remoteTlsName: "ml-worker.test",
        });
        await t.ml.start();
        assert.ok(t.ml.health().state !== "ready");
      }
    } finally {
      await child.stdin.close();
      await child.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
