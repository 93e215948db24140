/**
 * Models: the built-in catalog, the Hugging Face Hub client, our parallel resumable downloader,
 * the on-disk cache (`<modelCachePath>/<org>--<name>/` + `.tabagent-manifest.json`) and pull jobs.
 *
 * @example
 * ```ts
 * import { ModelCache, pullModel, createHubClient } from "./mod.ts";
 * const cache = new ModelCache("/tmp/models");
 * await pullModel({ cache, hub: await createHubClient("/tmp", Deno.env.toObject()), request: { id: "Xenova/all-MiniLM-L6-v2" } });
 * console.log(await cache.list());
 * ```
 * @module
 */
export { type CachedModel, type Manifest, MANIFEST_FILE, manifestSchema, ModelCache } from "./cache.ts";
export {
  type CatalogEntry,
  defaultCatalog,
  MODEL_FORMATS,
  MODEL_TASKS,
  type ModelTask,
  parseCatalog,
} from "./catalog/catalog.ts";
export { createHubClient, ModelsComponent, type ModelsComponentOptions } from "./component.ts";
export { checkDiskSpace, downloadFile, type DownloadOptions, type DownloadResult } from "./downloader.ts";
export { DEFAULT_HUB_ENDPOINT, HubClient, type HubOptions, hubOptionsFromEnv } from "./hub_client.ts";
export { HUB_TOKEN_FILE, isPlausibleHubToken, readHubToken, removeHubToken, storeHubToken } from "./hub_token.ts";
export { DEFAULT_CONNECTIONS } from "./limits.ts";
export { describeModel, findModel, listModels, type ModelEntry, type ModelLiveState } from "./listing.ts";
export { guessFormat, isDownloaded, locateWeights, type ModelFormat, type ModelLocation } from "./locate.ts";
export {
  type FileProgress,
  PULL_STATES,
  pullModel,
  type PullProgress,
  type PullRequest,
  type PullState,
} from "./pull.ts";
export { type PullJob, PullJobs } from "./pull_jobs.ts";
export { DEFAULT_QUANT, selectFiles } from "./select_files.ts";
export { type FileVerification, type ModelVerification, trustedSha256, verifyModel } from "./verify.ts";
export {
  folderName,
  isSafeRepoPath,
  MODEL_ID_SEGMENT_PATTERN,
  type ModelId,
  modelIdSchema,
  parseModelId,
  repoPathSchema,
} from "./repo_id.ts";
