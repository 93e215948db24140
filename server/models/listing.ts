/**
 * The model list as users see it: the catalog merged with the cache, in OpenAI's model shape with
 * our fields. `GET /v1/models` and an offline `tabagent models list` both build it here, so they
 * agree (weights copied in by hand count as downloaded in both).
 * @module
 */
import type { CachedModel, ModelCache } from "./cache.ts";
import type { CatalogEntry } from "./catalog/catalog.ts";
import { isDownloaded } from "./locate.ts";

/** A model as `GET /v1/models` lists it. */
export interface ModelEntry {
  id: string;
  object: "model";
  /** Unix seconds of the last download; 0 when not downloaded. */
  created: number;
  owned_by: string;
  downloaded: boolean;
  loaded: boolean;
  /** Bytes on disk when downloaded, else the catalog's approximate size. */
  size: number;
  task: string | null;
  format: string | null;
  name?: string;
  license?: string;
  min_ram_bytes?: number;
  revision: string | null;
  in_catalog: boolean;
  pulling: boolean;
  files?: { path: string; size: number }[];
}

/** Live state the cache cannot know: what inference holds and what is being pulled. */
export interface ModelLiveState {
  isLoaded?: (id: string) => boolean;
  isPulling?: (id: string) => boolean;
}

/** Describes one model from its catalog entry and its cache folder (either may be missing). */
export function describeModel(
  id: string,
  found: { entry?: CatalogEntry; cached?: CachedModel },
  live: ModelLiveState = {},
): ModelEntry {
  const { entry, cached } = found;
  const manifest = cached?.manifest;
  const downloaded = cached !== undefined && isDownloaded(cached);
  return {
    id,
    object: "model",
    created: downloaded ? Math.floor(cached.modifiedAt.getTime() / 1000) : 0,
    owned_by: id.split("/")[0],
    downloaded,
    loaded: live.isLoaded?.(id) ?? false,
    size: downloaded ? cached.sizeOnDisk : entry?.approx_bytes ?? cached?.sizeOnDisk ?? 0,
    task: entry?.task ?? manifest?.task ?? null,
    format: entry?.format ?? manifest?.format ?? null,
    ...(entry ? { name: entry.name, license: entry.license, min_ram_bytes: entry.min_ram_bytes } : {}),
    revision: manifest?.revision ?? null,
    in_catalog: entry !== undefined,
    pulling: live.isPulling?.(id) ?? false,
    ...(cached ? { files: cached.files } : {}),
  };
}

/**
 * Every model of the catalog and the cache, described.
 *
 * @example
 * ```ts
 * const models = await listModels(new ModelCache(root), defaultCatalog());
 * console.log(models.filter((m) => m.downloaded).map((m) => m.id));
 * ```
 */
export async function listModels(
  cache: ModelCache,
  catalog: CatalogEntry[],
  live: ModelLiveState = {},
): Promise<ModelEntry[]> {
  const cached = new Map((await cache.list()).map((m) => [m.id, m]));
  const ids = new Set([...catalog.map((m) => m.id), ...cached.keys()]);
  return [...ids].map((id) =>
    describeModel(id, { entry: catalog.find((m) => m.id === id), cached: cached.get(id) }, live)
  );
}

/** One model of the catalog or the cache, described; null when it is in neither. */
export async function findModel(
  cache: ModelCache,
  catalog: CatalogEntry[],
  id: string,
  live: ModelLiveState = {},
): Promise<ModelEntry | null> {
  const entry = catalog.find((m) => m.id === id);
  const cached = await cache.get(id) ?? undefined;
  return entry || cached ? describeModel(id, { entry, cached }, live) : null;
}
