import { deepEqual, equal, ok } from "node:assert/strict";
import { clientUrl, locateServer, readServerRecord, SERVER_RECORD_FILE, ServerRecordComponent } from "./discovery.ts";

async function finishedPid(): Promise<number> {
  const child = new Deno.Command("true", { stdout: "null", stderr: "null" }).spawn();
  await child.status;
  return child.pid;
}

Deno.test("the record is written 0600 with a client URL, read back, and removed on a clean stop", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    const record = new ServerRecordComponent({
      dataDir,
      url: () => "http://[::]:43210",
      version: "9.9.9",
      mode: "all",
    });
    await record.start();
    const path = `${dataDir}/${SERVER_RECORD_FILE}`;
    if (Deno.build.os !== "windows") equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const read = await readServerRecord(dataDir);
    deepEqual({ ...read, started_at: "" }, {
      url: "http://[::1]:43210",
      pid: Deno.pid,
      version: "9.9.9",
      mode: "all",
      started_at: "",
    });
    ok(Date.parse(read!.started_at) <= Date.now());
    await record.stop();
    equal(await readServerRecord(dataDir), null);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a record whose process is gone, or a torn file, counts as no server; stop leaves another's record", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    const path = `${dataDir}/${SERVER_RECORD_FILE}`;
    const stale = { url: "http://127.0.0.1:1", pid: await finishedPid(), version: "1", mode: "all", started_at: "x" };
    await Deno.writeTextFile(path, JSON.stringify(stale));
    equal(await readServerRecord(dataDir), null);
    await Deno.writeTextFile(path, '{"url": "http://127.0.0.1:1", "pi');
    equal(await readServerRecord(dataDir), null);
    // A second server replaced the record: the first one's stop must not remove it.
    const other = { ...stale, pid: Deno.pid + 1 };
    await Deno.writeTextFile(path, JSON.stringify(other));
    await new ServerRecordComponent({ dataDir, url: () => "http://127.0.0.1:2", version: "1", mode: "all" }).stop();
    deepEqual(JSON.parse(await Deno.readTextFile(path)), other);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("wildcard binds become loopback URLs; a server on ::1 is found at any port", async () => {
  equal(clientUrl("http://0.0.0.0:8765"), "http://127.0.0.1:8765");
  equal(clientUrl("http://[::]:9000"), "http://[::1]:9000");
  equal(clientUrl("http://[::1]:9000"), "http://[::1]:9000");
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname: "::1", port: 0, onListen() {} }, () => Response.json({ status: "ok" }));
  } catch (error) {
    if (error instanceof Deno.errors.AddrNotAvailable) return; // no IPv6 loopback on this machine
    throw error;
  }
  const dataDir = await Deno.makeTempDir();
  try {
    const record = new ServerRecordComponent({
      dataDir,
      url: () => `http://[::1]:${server.addr.port}`,
      version: "1",
      mode: "http",
    });
    await record.start();
    equal((await locateServer(dataDir))?.url, `http://[::1]:${server.addr.port}`);
    await server.shutdown();
    equal(await locateServer(dataDir, { timeoutMs: 2000 }), null, "a record whose server does not answer is none");
  } finally {
    await server.shutdown();
    await Deno.remove(dataDir, { recursive: true });
  }
});
