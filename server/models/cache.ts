/**
 * The model cache on disk: `<modelCachePath>/<org>--<name>/<files>` plus a small manifest,
 * `.tabagent-manifest.json` (repo, revision, files with size and sha256, completeness). Inference
 * finds weights by scanning a model's folder, so this layout is a contract.
 * @module
 */
import { z } from "zod";
import { TabAgentError } from "../errors/mod.ts";
import { locateWeights, type ModelLocation } from "./locate.ts";
import { assertSafeRepoPath, folderName, idFromFolder, type ModelId, modelIdSchema } from "./repo_id.ts";

/** The manifest's file name inside a model folder. */
export const MANIFEST_FILE = ".tabagent-manifest.json";

const manifestFileSchema = z.object({
  path: z.string(),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The Hub's git blob id, for files not in LFS. */
  git_oid: z.string().optional(),
  /**
   * The file's mtime (ms) when its sha256 was last computed: a file whose size or mtime differs
   * from this is re-hashed before its sha256 is trusted (as a skip on re-pull, or as an ETag).
   */
  mtime_ms: z.number().optional(),
});

/** One file of a manifest. */
export type ManifestFile = z.infer<typeof manifestFileSchema>;

/** What `.tabagent-manifest.json` holds. */
export const manifestSchema = z.object({
  repo: modelIdSchema,
  /** The commit the files came from. */
  revision: z.string(),
  /** What the user asked for (branch, tag or commit). */
  requested_revision: z.string().optional(),
  files: z.array(manifestFileSchema),
  complete: z.boolean(),
  task: z.string().optional(),
  format: z.string().optional(),
  updated_at: z.string(),
});

/** A model's manifest. */
export type Manifest = z.infer<typeof manifestSchema>;

/** A model folder as found on disk. */
export interface CachedModel {
  id: ModelId;
  dir: string;
  /** Null when the folder has no (readable) manifest, e.g. files copied in by hand. */
  manifest: Manifest | null;
  /** Every manifest file is present with its size. */
  complete: boolean;
  /** Bytes the folder takes on disk (partial downloads included). */
  sizeOnDisk: number;
  /** Files present, relative to `dir` (no partials, locks or manifest). */
  files: { path: string; size: number }[];
  /** Last change, for OpenAI's `created`. */
  modifiedAt: Date;
}

function isOwnFile(name: string): boolean {
  return name === MANIFEST_FILE || name.endsWith(".partial") || name.endsWith(".partial.json") ||
    name.endsWith(".partial.json.tmp") || name.endsWith(".lock") || name.endsWith(".tmp");
}

async function walk(
  dir: string,
  prefix: string,
  out: { path: string; size: number }[],
): Promise<{ disk: number; latest: number }> {
  let disk = 0;
  let latest = 0;
  for await (const entry of Deno.readDir(dir)) {
    const full = `${dir}/${entry.name}`;
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) {
      const sub = await walk(full, rel, out);
      disk += sub.disk;
      latest = Math.max(latest, sub.latest);
      continue;
    }
    // A symlink to a file counts: weights are often linked in from another tool's cache.
    const info = entry.isFile || entry.isSymlink ? await Deno.stat(full).catch(() => null) : null;
    if (!info?.isFile) continue;
    disk += info.blocks !== null ? info.blocks * 512 : info.size;
    latest = Math.max(latest, info.mtime?.getTime() ?? 0);
    if (!isOwnFile(entry.name)) out.push({ path: rel, size: info.size });
  }
  return { disk, latest };
}

/**
 * The cache. `list()`, `get(id)`, `dirFor(id)`, `delete(id)` are what other modules use.
 *
 * @example
 * ```ts
 * const cache = new ModelCache("/home/me/.local/share/TabAgent/models");
 * for (const model of await cache.list()) console.log(model.id, model.complete, model.sizeOnDisk);
 * ```
 */
export class ModelCache {
  constructor(readonly root: string) {}

  /** The folder of a model (whether or not it exists). */
  dirFor(id: ModelId): string {
    return `${this.root}/${folderName(id)}`;
  }

  /** Where a repository file of a model lives; refuses paths that would leave the folder. */
  filePath(id: ModelId, path: string): string {
    assertSafeRepoPath(path, `model ${id}`);
    return `${this.dirFor(id)}/${path}`;
  }

  /** Reads a model's manifest; null when absent or unreadable. */
  async readManifest(id: ModelId): Promise<Manifest | null> {
    let text: string;
    try {
      text = await Deno.readTextFile(`${this.dirFor(id)}/${MANIFEST_FILE}`);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
    try {
      const parsed = manifestSchema.safeParse(JSON.parse(text));
      return parsed.success ? parsed.data : null;
    } catch {
      return null; // a torn manifest means "not known complete": the next pull rewrites it
    }
  }

  /** Writes a model's manifest atomically. */
  async writeManifest(manifest: Manifest): Promise<void> {
    const dir = this.dirFor(manifest.repo);
    await Deno.mkdir(dir, { recursive: true });
    const temp = `${dir}/${MANIFEST_FILE}.${crypto.randomUUID()}.tmp`;
    await Deno.writeTextFile(temp, JSON.stringify(manifestSchema.parse(manifest), null, 2) + "\n");
    await Deno.rename(temp, `${dir}/${MANIFEST_FILE}`);
  }

  /**
   * Refuses (409) an id whose folder name differs only in case from a folder already in the cache:
   * on macOS and Windows both ids would share that one folder, and a pull or delete of one would
   * act on the other's files.
   */
  async assertNoCaseTwin(id: ModelId): Promise<void> {
    const twin = await this.#caseTwin(id);
    if (twin !== null) {
      throw new TabAgentError(
        "conflict",
        `The cache already holds ${twin}, which differs from ${id} only in case; on case-insensitive file ` +
          `systems they would share one folder. Use ${twin}, or delete it first`,
        { model: id, existing: twin },
      );
    }
  }

  /** The id of a folder whose name equals `id`'s but for case, or null. */
  async #caseTwin(id: ModelId): Promise<ModelId | null> {
    const wanted = folderName(id);
    try {
      for await (const entry of Deno.readDir(this.root)) {
        if (entry.name !== wanted && entry.name.toLowerCase() === wanted.toLowerCase()) {
          return idFromFolder(entry.name) ?? entry.name;
        }
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return null;
  }

  /** One model, or null when its folder does not exist (under exactly this name, case included). */
  async get(id: ModelId): Promise<CachedModel | null> {
    // On a case-insensitive file system `stat` would find another id's folder.
    if (await this.#caseTwin(id) !== null) return null;
    return await this.#load(id);
  }

  async #load(id: ModelId): Promise<CachedModel | null> {
    const dir = this.dirFor(id);
    try {
      if (!(await Deno.stat(dir)).isDirectory) return null;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
    const files: { path: string; size: number }[] = [];
    const { disk, latest } = await walk(dir, "", files);
    const manifest = await this.readManifest(id);
    const present = new Map(files.map((f) => [f.path, f.size]));
    const complete = manifest !== null && manifest.complete &&
      manifest.files.every((f) => present.get(f.path) === f.size);
    files.sort((a, b) => a.path.localeCompare(b.path));
    return { id, dir, manifest, complete, sizeOnDisk: disk, files, modifiedAt: new Date(latest || Date.now()) };
  }

  /**
   * The weights inference loads for `id` (see {@link locateWeights}). Throws `not_found` for an id
   * that is not `org/name` (as OpenAI answers an unknown model) and for a model without weights.
   */
  async locate(id: string): Promise<ModelLocation> {
    if (!modelIdSchema.safeParse(id).success) {
      throw new TabAgentError("not_found", `The model '${id}' does not exist`, { model: id });
    }
    const model = await this.get(id);
    const location = model && locateWeights(model);
    if (location) return location;
    throw new TabAgentError(
      "not_found",
      `The model '${id}' is not downloaded: pull it with 'tabagent models pull ${id}' (or POST /v1/models/pull)`,
      { model: id },
    );
  }

  /** Every model in the cache that inference can load, sorted by id. */
  async listLocatable(): Promise<ModelLocation[]> {
    return (await this.list()).map(locateWeights).filter((l): l is ModelLocation => l !== null);
  }

  /** Every model folder in the cache, sorted by id. */
  async list(): Promise<CachedModel[]> {
    const out: CachedModel[] = [];
    try {
      for await (const entry of Deno.readDir(this.root)) {
        if (!entry.isDirectory) continue;
        const id = idFromFolder(entry.name);
        if (id === null) continue;
        const model = await this.#load(id);
        if (model) out.push(model);
      }
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [];
      throw error;
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Deletes a model's folder; false when there was none (a folder differing only in case is not it). */
  async delete(id: ModelId): Promise<boolean> {
    if (await this.#caseTwin(id) !== null) return false;
    try {
      await Deno.remove(this.dirFor(id), { recursive: true });
      return true;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw new TabAgentError("internal", `Could not delete ${id}: ${(error as Error).message}`, {}, { cause: error });
    }
  }
}
