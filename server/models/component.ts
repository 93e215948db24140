/** The models component: owns the cache and the pull jobs for the server's lifetime. @module */
import type { Component, ComponentHealth } from "../lifecycle/mod.ts";
import type { Logger } from "../log/mod.ts";
import { ModelCache } from "./cache.ts";
import { type CatalogEntry, defaultCatalog } from "./catalog/catalog.ts";
import { HubClient, hubOptionsFromEnv } from "./hub_client.ts";
import { HUB_TOKEN_FILE, readHubToken } from "./hub_token.ts";
import { PullJobs } from "./pull_jobs.ts";

/** What the models component needs. */
export interface ModelsComponentOptions {
  modelCachePath: string;
  dataDir: string;
  /** The process environment (`HF_ENDPOINT`, `HF_TOKEN`). */
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  catalog?: CatalogEntry[];
  connections?: number;
}

/** The Hub client for the current environment and stored token. */
export async function createHubClient(
  dataDir: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<HubClient> {
  return new HubClient(hubOptionsFromEnv(env, await readHubToken(`${dataDir}/${HUB_TOKEN_FILE}`)));
}

/**
 * Lifecycle component for models. Non-critical: without it the server still serves everything
 * else.
 *
 * @example
 * ```ts
 * const models = lifecycle.add(new ModelsComponent({ modelCachePath, dataDir, env: Deno.env.toObject(), log }));
 * ```
 */
export class ModelsComponent implements Component {
  readonly name = "models";
  readonly critical = false;
  readonly cache: ModelCache;
  readonly jobs: PullJobs;
  readonly catalog: CatalogEntry[];
  #options: ModelsComponentOptions;

  constructor(options: ModelsComponentOptions) {
    this.#options = options;
    this.cache = new ModelCache(options.modelCachePath);
    this.catalog = options.catalog ?? defaultCatalog();
    this.jobs = new PullJobs({
      cache: this.cache,
      hub: () => createHubClient(options.dataDir, options.env),
      log: options.log,
      catalog: this.catalog,
      connections: options.connections,
    });
  }

  async start(): Promise<void> {
    await Deno.mkdir(this.#options.modelCachePath, { recursive: true });
  }

  async stop(): Promise<void> {
    // Cancelled pulls keep their chunk state: the next pull resumes them.
    await this.jobs.cancelAll();
  }

  health(): ComponentHealth {
    return { state: "ready" };
  }
}
