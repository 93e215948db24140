/**
 * `tabagent`: parse the command line, build the app, run the chosen command. Nothing else.
 * @module
 */
import { createApp, REPO_ROOT } from "./app.ts";
import { loadOrCreateToken } from "./auth/mod.ts";
import { helpText, parseCommandLine, UsageError } from "./cli/mod.ts";
import { runLogin, runModelsCommand } from "./cli/models_command.ts";
import { runMemoryCommand } from "./cli/memory_command.ts";
import { configFromEnv, type ConfigInput, EXTENSION_ID, resolveConfig, SERVER_V8_FLAGS } from "./config/mod.ts";
import { TabAgentError } from "./errors/mod.ts";
import { isAbsolutePath } from "./fs/mod.ts";
import { detectHardware, formatDoctorReport } from "./hardware/mod.ts";
import { inferenceChecks } from "./inference/mod.ts";
import { mlChecks } from "./ml/mod.ts";
import { openMemoryForCommand } from "./memory/mod.ts";
import { type Browser, BROWSERS, installHost } from "./native/mod.ts";
import { formatBanner, pairingUrl } from "./cli/banner.ts";
import { ModelCache } from "./models/mod.ts";
import { resolveLogFormat } from "./log/mod.ts";
import { VERSION } from "./version.ts";

function fail(message: string, code: number): never {
  console.error(`tabagent: ${message}`);
  Deno.exit(code);
}

function config(flags: ConfigInput) {
  const environment = Deno.env.toObject();
  return resolveConfig(flags, configFromEnv(environment), {
    environment,
    repoDir: decodeURIComponent(REPO_ROOT.pathname).replace(/\/$/, ""),
  });
}

async function serve(flags: ConfigInput): Promise<void> {
  const app = await createApp(config(flags), { serverCommand: selfCommand() });
  const stopRequested = Promise.withResolvers<string>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    if (Deno.build.os === "windows" && signal === "SIGTERM") continue;
    Deno.addSignalListener(signal, () => stopRequested.resolve(signal));
  }
  app.ended.then(() => stopRequested.resolve("input closed"));
  try {
    await app.start();
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error), 1);
  }
  const log = app.log.child("main");
  if (app.url) {
    const token = app.config.auth ? await loadOrCreateToken(app.config.tokenPath) : null;
    const pairing = pairingUrl(app.url, app.config.mode, token);
    const text = resolveLogFormat(app.config.logFormat) === "text";
    // On a terminal the banner says it all; machines get the JSON line.
    if (!text) {
      log.info("ready", {
        url: app.url,
        docs: `${app.url}/api-doc`,
        token_file: app.config.tokenPath,
        mode: app.config.mode,
        ...(pairing ? { pairing_url: pairing } : {}),
      });
    } else {
      const models = await new ModelCache(app.config.modelCachePath).listLocatable().catch(() => []);
      console.error(formatBanner({
        version: VERSION,
        mode: app.config.mode,
        url: app.url,
        pairingUrl: pairing,
        models: models.map((m) => ({ id: m.id, sizeBytes: m.sizeBytes })),
        suggestedModel: "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
      }, !Deno.noColor));
    }
  }
  const reason = await stopRequested.promise;
  log.info("stopping", { reason });
  await app.stop();
  const failed = app.lifecycle.statuses().filter((s) => s.state === "failed");
  Deno.exit(failed.length ? 1 : 0);
}

/** Where `tabagent doctor` finds the ML service and the running server. */
function mlDoctorOptions(cfg: ReturnType<typeof config>) {
  const root = decodeURIComponent(REPO_ROOT.pathname).replace(/\/$/, "");
  const host = cfg.host.includes(":") || cfg.host === "0.0.0.0" ? "127.0.0.1" : cfg.host;
  return {
    python: cfg.mlPython ??
      `${root}/python-ml/.venv/${Deno.build.os === "windows" ? "Scripts/python.exe" : "bin/python"}`,
    packageDir: `${root}/python-ml`,
    dataDir: cfg.dataDir,
    modelCachePath: cfg.modelCachePath,
    serverUrl: `http://${host}:${cfg.port}`,
  };
}

/** The launcher Chrome runs must start this same program: a compiled binary or deno + main.ts. */
function selfCommand(): string[] {
  const exec = Deno.execPath();
  if (Deno.mainModule.startsWith("file:") && !/\/tabagent(\.exe)?$/.test(exec)) {
    const configPath = decodeURIComponent(new URL("deno.json", REPO_ROOT).pathname);
    return [
      exec,
      "run",
      "-A",
      `--v8-flags=${SERVER_V8_FLAGS}`,
      "--config",
      configPath,
      decodeURIComponent(new URL(Deno.mainModule).pathname),
    ];
  }
  return [exec];
}

/** `tabagent doctor`: prints the hardware and every check; exits 1 when one fails. */
async function doctor(cfg: ReturnType<typeof config>): Promise<void> {
  const hardware = await detectHardware();
  const checks = await inferenceChecks({
    modelCachePath: cfg.modelCachePath,
    hardware,
    llamaAddon: cfg.llamaAddon,
    llamaThreads: cfg.llamaThreads,
  });
  if (cfg.ml) checks.push(...await mlChecks(mlDoctorOptions(cfg)));
  console.log(formatDoctorReport(hardware, checks));
  if (checks.some((check) => !check.ok)) Deno.exit(1);
}

async function main(): Promise<void> {
  const command = parseCommandLine(Deno.args);
  switch (command.kind) {
    case "help": {
      const text = helpText(command.topic);
      if (text === null) fail(`no help for '${command.topic}'. See 'tabagent --help'.`, 2);
      console.log(text);
      return;
    }
    case "version":
      console.log(`tabagent ${VERSION} (deno ${Deno.version.deno})`);
      return;
    case "token": {
      const cfg = config(command.flags);
      console.log(await loadOrCreateToken(cfg.tokenPath));
      return;
    }
    case "doctor":
      return await doctor(config(command.flags));
    case "install-host": {
      const cfg = config(command.flags);
      const unknown = command.browsers.filter((b) => !BROWSERS.includes(b as Browser));
      if (unknown.length) {
        throw new UsageError(`install-host: unknown browser '${unknown[0]}' (${BROWSERS.join(", ")})`);
      }
      const ext = Deno.build.os === "windows" ? "cmd" : "sh";
      const results = await installHost({
        browsers: (command.browsers.length ? command.browsers : [...BROWSERS]) as Browser[],
        uninstall: command.uninstall,
        launcherPath: `${cfg.dataDir}/native-host.${ext}`,
        command: selfCommand(),
        flags: ["--data-dir", cfg.dataDir],
        extensionIds: [EXTENSION_ID],
        env: Deno.env.toObject(),
      });
      for (const r of results) console.log(`${r.action.padEnd(9)} ${r.browser.padEnd(8)} ${r.manifestPath}`);
      return;
    }
    case "models":
      Deno.exit(await runModelsCommand(command, config(command.flags)));
      break;
    case "login":
      Deno.exit(await runLogin(command, config(command.flags)));
      break;
    case "backup":
    case "restore": {
      const cfg = config(command.flags);
      const dir = isAbsolutePath(command.dir) ? command.dir : `${Deno.cwd()}/${command.dir}`;
      const { memory, via } = await openMemoryForCommand(cfg, cfg.auth ? await loadOrCreateToken(cfg.tokenPath) : null);
      try {
        const manifest = await (command.kind === "backup" ? memory.backup(dir) : memory.restore(dir));
        const bytes = manifest.files.reduce((sum, file) => sum + file.bytes, 0);
        const done = command.kind === "backup" ? "backed up to" : "restored from";
        console.log(`${manifest.files.length} stores (${bytes} bytes) ${done} ${dir} (via the ${via})`);
      } catch (error) {
        if (error instanceof TabAgentError) fail(error.message, 1);
        throw error;
      } finally {
        await memory.close();
      }
      return;
    }
    case "memory": {
      const cfg = config(command.flags);
      Deno.exit(await runMemoryCommand(command, cfg, cfg.auth ? await loadOrCreateToken(cfg.tokenPath) : null));
      break;
    }
    case "serve":
      await serve(command.flags);
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    if (error instanceof UsageError) fail(error.message, 2);
    if (error instanceof TabAgentError && (error.code === "validation_failed" || error.code === "config_invalid")) {
      fail(error.message, 2);
    }
    if (error instanceof TabAgentError) fail(error.message, 1);
    throw error;
  }
}
