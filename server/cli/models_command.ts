/**
 * `tabagent models list|pull|rm` and `tabagent login`. Models commands ask the running server over
 * HTTP when there is one (its downloads and cache are the truth), and work on the cache directly
 * otherwise or with `--local`.
 * @module
 */
import cliProgress from "cli-progress";
import type { Config } from "../config/mod.ts";
import { TabAgentError } from "../errors/mod.ts";
import { createLogger } from "../log/mod.ts";
import {
  createHubClient,
  defaultCatalog,
  HUB_TOKEN_FILE,
  hubOptionsFromEnv,
  isPlausibleHubToken,
  listModels,
  ModelCache,
  type ModelEntry,
  type ModelVerification,
  parseModelId,
  PullJobs,
  type PullProgress,
  removeHubToken,
  storeHubToken,
  verifyModel,
} from "../models/mod.ts";
import type { LoginCommand, ModelsCommand } from "./models_args.ts";

/** `12.3 MB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function serverUrl(command: ModelsCommand, config: Config): string {
  if (command.server) return command.server.replace(/\/+$/, "");
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  return `http://${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${config.port}`;
}

async function findServer(command: ModelsCommand, config: Config): Promise<{ url: string; token: string } | null> {
  if (command.local) return null;
  const url = serverUrl(command, config);
  try {
    const response = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(1500) });
    await response.body?.cancel();
  } catch (error) {
    if (command.server) {
      throw new TabAgentError("unavailable", `No server answers at ${url}: ${(error as Error).message}`);
    }
    return null; // nothing listening: work on the cache directly
  }
  let token = "";
  try {
    token = (await Deno.readTextFile(config.tokenPath)).trim();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return { url, token };
}

async function api(server: { url: string; token: string }, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (server.token) headers.set("authorization", `Bearer ${server.token}`);
  const response = await fetch(`${server.url}${path}`, { ...init, headers });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({ detail: response.statusText }));
    throw new TabAgentError(problem.code ?? "upstream_failed", problem.detail ?? `HTTP ${response.status}`);
  }
  return response;
}

/** A progress display: a bar on a terminal, a line every couple of seconds otherwise. */
function progressView(id: string) {
  const tty = Deno.stderr.isTerminal();
  let bar: InstanceType<typeof cliProgress.SingleBar> | undefined;
  let lastLine = 0;
  const encoder = new TextEncoder();
  const line = (text: string) => Deno.stderr.writeSync(encoder.encode(text + "\n"));
  return {
    update(progress: PullProgress) {
      const rate = `${formatBytes(progress.rate)}/s`;
      const eta = progress.eta_s === null ? "?" : `${Math.ceil(progress.eta_s)}s`;
      if (tty) {
        if (!bar && progress.total > 0) {
          bar = new cliProgress.SingleBar({
            format: `${id} |{bar}| {percentage}% {done}/{all} {rate} eta {etaText}`,
            hideCursor: true,
            stream: process.stderr,
          }, cliProgress.Presets.shades_classic);
          bar.start(progress.total, 0, { done: "0 B", all: formatBytes(progress.total), rate, etaText: eta });
        }
        bar?.update(progress.bytes, {
          done: formatBytes(progress.bytes),
          all: formatBytes(progress.total),
          rate,
          etaText: eta,
        });
        return;
      }
      const now = performance.now();
      if (progress.state === "downloading" && now - lastLine < 2000) return;
      lastLine = now;
      const percent = progress.total ? Math.floor((progress.bytes / progress.total) * 100) : 0;
      line(
        `${id}: ${progress.state} ${formatBytes(progress.bytes)}/${
          formatBytes(progress.total)
        } (${percent}%) ${rate} eta ${eta}`,
      );
    },
    stop() {
      bar?.stop();
    },
  };
}

function splitQuant(spec: string): { id: string; quant?: string } {
  const colon = spec.lastIndexOf(":");
  if (colon === -1) return { id: parseModelId(spec, "model") };
  return { id: parseModelId(spec.slice(0, colon), "model"), quant: spec.slice(colon + 1) || undefined };
}

/** Reads one SSE stream of pull progress to its terminal event. */
async function followSse(response: Response, onProgress: (p: PullProgress) => void): Promise<PullProgress> {
  let buffer = "";
  let last: PullProgress | undefined;
  for await (const text of response.body!.pipeThrough(new TextDecoderStream())) {
    buffer += text;
    let cut: number;
    while ((cut = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (!data) continue;
      last = JSON.parse(data) as PullProgress;
      onProgress(last);
    }
  }
  if (!last) throw new TabAgentError("upstream_failed", "The server closed the progress stream without a word");
  return last;
}

async function pullOne(
  spec: string,
  command: ModelsCommand,
  config: Config,
  server: { url: string; token: string } | null,
  signal: AbortSignal,
): Promise<PullProgress> {
  const { id, quant } = splitQuant(spec);
  const view = progressView(id);
  try {
    const request = {
      id,
      revision: command.revision,
      files: command.include.length ? command.include : undefined,
      quant,
      connections: command.connections,
    };
    if (server) {
      const started = await (await api(server, "/v1/models/pull", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...request, id: undefined, model: id }),
      })).json() as { job: string; progress_url: string };
      const onAbort = () => {
        api(server, started.progress_url, { method: "DELETE" }).catch(() => {}); // best effort: we are exiting
      };
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        const stream = await api(server, started.progress_url, { headers: { accept: "text/event-stream" } });
        return await followSse(stream, (p) => view.update(p));
      } finally {
        signal.removeEventListener("abort", onAbort);
      }
    }
    const log = createLogger({ level: config.logLevel === "debug" ? "debug" : "warn" }).child("models");
    const jobs = new PullJobs({
      cache: new ModelCache(config.modelCachePath),
      hub: () => createHubClient(config.dataDir, Deno.env.toObject()),
      log,
    });
    const job = jobs.start(request);
    job.subscribe((p) => view.update(p));
    const onAbort = () => job.cancel();
    signal.addEventListener("abort", onAbort, { once: true });
    await job.done;
    signal.removeEventListener("abort", onAbort);
    return job.progress();
  } finally {
    view.stop();
  }
}

/** Runs `tabagent models …`; returns the exit code. */
export async function runModelsCommand(command: ModelsCommand, config: Config): Promise<number> {
  const server = await findServer(command, config);
  const out = (text: string) => console.log(text);
  if (command.action === "list") {
    const rows: ModelEntry[] = server
      ? (await (await api(server, "/v1/models")).json()).data
      : await listModels(new ModelCache(config.modelCachePath), defaultCatalog());
    if (command.json) {
      out(JSON.stringify({ object: "list", data: rows }, null, 2));
      return 0;
    }
    const width = Math.max(2, ...rows.map((r) => r.id.length));
    out(`${"ID".padEnd(width)}  ${"TASK".padEnd(14)}  ${"SIZE".padStart(9)}  STATUS`);
    for (const row of rows) {
      const status = row.loaded ? "loaded" : row.downloaded ? "downloaded" : row.in_catalog ? "available" : "partial";
      const size = row.downloaded ? formatBytes(row.size) : `~${formatBytes(row.size)}`;
      out(`${row.id.padEnd(width)}  ${(row.task ?? "-").padEnd(14)}  ${size.padStart(9)}  ${status}`);
    }
    if (!server) console.error(`(no server running: read ${config.modelCachePath} directly)`);
    return 0;
  }
  if (command.action === "verify") return await runVerify(command, config, server);
  if (command.action === "rm") {
    let code = 0;
    for (const spec of command.ids) {
      const id = parseModelId(spec, "model");
      if (server) {
        await api(server, `/v1/models/${id}`, { method: "DELETE" });
        out(`removed ${id}`);
      } else if (await new ModelCache(config.modelCachePath).delete(id)) {
        out(`removed ${id}`);
      } else {
        console.error(`tabagent: ${id} is not in the cache`);
        code = 1;
      }
    }
    return code;
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    for (const spec of command.ids) {
      const result = await pullOne(spec, command, config, server, controller.signal);
      if (result.state === "done") {
        out(`pulled ${result.id} (${formatBytes(result.total)}, revision ${result.revision?.slice(0, 12)})`);
        continue;
      }
      if (result.state === "cancelled") {
        console.error(`tabagent: pull of ${result.id} cancelled; run the same command to resume`);
        return 130;
      }
      console.error(`tabagent: pull of ${result.id} failed: ${result.error?.detail ?? result.state}`);
      return 1;
    }
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
}

/** `tabagent models verify [id...]`: re-hashes every file, through the server when one runs. */
async function runVerify(
  command: ModelsCommand,
  config: Config,
  server: { url: string; token: string } | null,
): Promise<number> {
  const cache = new ModelCache(config.modelCachePath);
  let ids = command.ids.map((spec) => parseModelId(spec, "model"));
  if (ids.length === 0) {
    ids = server
      ? (await (await api(server, "/v1/models?downloaded=true")).json()).data.map((m: { id: string }) => m.id)
      : (await cache.list()).filter((m) => m.manifest !== null).map((m) => m.id);
  }
  let code = 0;
  for (const id of ids) {
    const report: ModelVerification = server
      ? await (await api(server, `/v1/models/${id}/verify`, { method: "POST" })).json()
      : await verifyModel(cache, id);
    if (command.json) {
      console.log(JSON.stringify(report));
    } else if (report.ok) {
      console.log(`ok       ${id} (${report.files.length} files, ${formatBytes(report.hashed_bytes)} hashed)`);
    } else {
      for (const file of report.files.filter((f) => f.state !== "ok")) {
        console.log(`${file.state.padEnd(8)} ${id}/${file.path}`);
      }
    }
    if (!report.ok) code = 1;
  }
  if (!command.json && code !== 0) console.error("tabagent: run 'tabagent models pull' on those models to repair them");
  return code;
}

async function readSecret(prompt: string): Promise<string> {
  const encoder = new TextEncoder();
  if (!Deno.stdin.isTerminal()) {
    const text = await new Response(Deno.stdin.readable).text();
    return text.split(/\r?\n/)[0].trim();
  }
  Deno.stderr.writeSync(encoder.encode(prompt));
  Deno.stdin.setRaw(true);
  let value = "";
  try {
    const buffer = new Uint8Array(64);
    reading: while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) break;
      for (const byte of buffer.subarray(0, n)) {
        if (byte === 13 || byte === 10) break reading;
        if (byte === 3) throw new TabAgentError("cancelled", "login cancelled");
        if (byte === 127 || byte === 8) value = value.slice(0, -1);
        else if (byte >= 32) value += String.fromCharCode(byte);
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    Deno.stderr.writeSync(encoder.encode("\n"));
  }
  return value.trim();
}

/** Runs `tabagent login`; returns the exit code. */
export async function runLogin(command: LoginCommand, config: Config): Promise<number> {
  const path = `${config.dataDir}/${HUB_TOKEN_FILE}`;
  if (command.remove) {
    console.log(await removeHubToken(path) ? `removed the stored token (${path})` : "no token was stored");
    return 0;
  }
  const token = await readSecret("Hugging Face token (hf_…, input hidden): ");
  if (!isPlausibleHubToken(token)) {
    console.error("tabagent: that does not look like a Hugging Face token");
    return 2;
  }
  if (command.verify) {
    const { endpoint } = hubOptionsFromEnv(Deno.env.toObject());
    try {
      const response = await fetch(`${endpoint}/api/whoami-v2`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(10_000),
      });
      if (response.status === 401 || response.status === 403) {
        await response.body?.cancel();
        console.error(`tabagent: ${endpoint} rejected the token; nothing stored`);
        return 1;
      }
      const who = response.ok ? await response.json() as { name?: string } : {};
      if (!response.ok) await response.body?.cancel();
      await storeHubToken(path, token);
      console.log(`logged in${who.name ? ` as ${who.name}` : ""}; token stored in ${path}`);
      return 0;
    } catch (error) {
      if (error instanceof TabAgentError) throw error;
      console.error(
        `tabagent: could not reach ${endpoint} to check the token (${(error as Error).message}); stored it anyway`,
      );
    }
  }
  await storeHubToken(path, token);
  console.log(`token stored in ${path}`);
  return 0;
}
