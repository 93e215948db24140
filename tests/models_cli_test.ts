/**
 * `tabagent models pull` as real processes against the loopback Hub stub: a `kill -9` mid-download
 * resumes without fetching finished chunks again, and two processes pulling one file fetch it once.
 */
import assert from "node:assert/strict";
import { pseudoRandomBytes, startHubStub } from "./hub_stub/mod.ts";
import { runCli } from "./_server.ts";

const MAIN = new URL("../server/main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const ID = "org/big-GGUF";
const FILE = "big-q4_k_m.gguf";
const CONTENT = pseudoRandomBytes(6 * 1024 * 1024 + 4321, 11);

function pull(dataDir: string, hubUrl: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, MAIN, "models", "pull", ID, "--local", "--data-dir", dataDir],
    env: { HF_ENDPOINT: hubUrl, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function savedBytes(statePath: string): Promise<number> {
  try {
    const state = JSON.parse(await Deno.readTextFile(statePath));
    return state.done.reduce((sum: number, n: number) => sum + n, 0);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof SyntaxError) return 0;
    throw error;
  }
}

Deno.test("kill -9 during a pull, then pull again: only the missing chunks are fetched", async () => {
  await using hub = await startHubStub({ repos: [{ id: ID, files: [{ path: FILE, content: CONTENT, lfs: true }] }] });
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-kill-" });
  try {
    const dest = `${dataDir}/models/org--big-GGUF/${FILE}`;
    hub.faults.bytesPerSecond = 256 * 1024; // per connection: the pull takes a few seconds
    // Each write of the pull's state file is an event here: the kill comes after 1 MiB is saved.
    using watcher = Deno.watchFs(dataDir);
    const changes = watcher[Symbol.asyncIterator]();
    const first = pull(dataDir, hub.hubUrl);
    while (await savedBytes(`${dest}.partial.json`) < 1024 * 1024) {
      if ((await changes.next()).done) throw new Error("stopped watching before the pull saved 1 MiB");
    }
    first.kill("SIGKILL");
    const status = await first.status;
    assert.equal(status.signal, "SIGKILL");
    await first.stdout.cancel();
    await first.stderr.cancel();
    const saved = await savedBytes(`${dest}.partial.json`);
    assert.ok(saved > 0 && saved < CONTENT.length, `saved ${saved}`);

    hub.faults.bytesPerSecond = undefined;
    hub.resetCounters();
    const second = await pull(dataDir, hub.hubUrl).output();
    assert.equal(second.code, 0, new TextDecoder().decode(second.stderr));
    // Exactly the bytes the saved chunk state lacked were fetched again.
    assert.equal(hub.served.get(FILE), CONTENT.length - saved);
    assert.deepEqual(await Deno.readFile(dest), CONTENT);
    const manifest = JSON.parse(await Deno.readTextFile(`${dataDir}/models/org--big-GGUF/.tabagent-manifest.json`));
    assert.equal(manifest.complete, true);
    assert.equal(manifest.files[0].sha256, hub.sha256Of(ID, FILE));
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("two processes pulling the same model fetch each byte once", async () => {
  await using hub = await startHubStub({ repos: [{ id: ID, files: [{ path: FILE, content: CONTENT, lfs: true }] }] });
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-twice-" });
  try {
    hub.faults.bytesPerSecond = 1024 * 1024;
    const [a, b] = await Promise.all([pull(dataDir, hub.hubUrl).output(), pull(dataDir, hub.hubUrl).output()]);
    assert.equal(a.code, 0, new TextDecoder().decode(a.stderr));
    assert.equal(b.code, 0, new TextDecoder().decode(b.stderr));
    assert.equal(hub.served.get(FILE), CONTENT.length);
    assert.deepEqual(await Deno.readFile(`${dataDir}/models/org--big-GGUF/${FILE}`), CONTENT);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("login checks the token with the Hub, stores it 0600 without printing it, and private pulls use it", async () => {
  await using hub = await startHubStub({
    repos: [{
      id: "org/private",
      private: true,
      files: [{ path: "w.onnx", content: CONTENT.slice(0, 5000), lfs: true }],
    }],
  });
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-login-" });
  const login = async (token: string) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", CONFIG, MAIN, "login", "--data-dir", dataDir],
      env: { HF_ENDPOINT: hub.hubUrl },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(token + "\n"));
    await writer.close();
    const out = await child.output();
    return { code: out.code, text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
  };
  try {
    const wrong = await login("hf_wrongwrongwrongwrong");
    assert.equal(wrong.code, 1);
    assert.ok(!wrong.text.includes("hf_wrongwrongwrongwrong"));
    const right = await login(hub.token);
    assert.equal(right.code, 0, right.text);
    assert.ok(!right.text.includes(hub.token), "the token is never printed");
    const info = await Deno.stat(`${dataDir}/hf_token`);
    assert.equal(info.mode! & 0o777, 0o600);
    const pulled = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", CONFIG, MAIN, "models", "pull", "org/private", "--local", "--data-dir", dataDir],
      env: { HF_ENDPOINT: hub.hubUrl },
      stdin: "null",
    }).output();
    assert.equal(pulled.code, 0, new TextDecoder().decode(pulled.stderr));
    assert.ok(!new TextDecoder().decode(pulled.stderr).includes(hub.token));
    assert.deepEqual(hub.cdnAuthorizations, [], "the CDN never sees the token");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("offline 'models list' shows a GGUF copied into the cache by hand as downloaded, as the server does", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tabagent-list-" });
  try {
    const dir = `${dataDir}/models/HuggingFaceTB--SmolLM2-135M-Instruct-GGUF`;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeFile(`${dir}/smollm2-135m-instruct-q4_1.gguf`, new Uint8Array(1 << 20));
    const table = await runCli(["models", "list", "--local", "--data-dir", dataDir]);
    assert.equal(table.code, 0, table.stderr);
    const row = table.stdout.split("\n").find((line) => line.startsWith("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"));
    assert.ok(row?.endsWith("downloaded"), row);
    const json = await runCli(["models", "list", "--local", "--json", "--data-dir", dataDir]);
    const model = JSON.parse(json.stdout).data.find((m: { id: string }) => m.id.startsWith("HuggingFaceTB/"));
    assert.equal(model.downloaded, true);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
