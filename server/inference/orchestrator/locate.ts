/** Finding a model by id ("org/name") in the cache folder `<cache>/<org>--<name>/`. */
import { TabAgentError } from "../../errors/mod.ts";

/** What kind of runtime a model needs. */
export type ModelFormat = "gguf" | "onnx";

/** A model found on disk. */
export interface ModelLocation {
  id: string;
  dir: string;
  format: ModelFormat;
  /** The weights file to load. */
  file: string;
  sizeBytes: number;
}

/** Model ids: "org/name", letters, digits, `._-`. */
export const MODEL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}\/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;

/** The cache folder name for an id: "org/name" → "org--name". */
export function cacheDirName(id: string): string {
  return id.replace("/", "--");
}

async function files(dir: string): Promise<{ name: string; size: number }[]> {
  const found: { name: string; size: number }[] = [];
  for (const sub of ["", "onnx/"]) {
    try {
      for await (const entry of Deno.readDir(`${dir}/${sub}`)) {
        if (!entry.isFile && !entry.isSymlink) continue;
        const size = (await Deno.stat(`${dir}/${sub}${entry.name}`)).size;
        found.push({ name: `${sub}${entry.name}`, size });
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Locates model `id` under `cachePath`: a `*.gguf` (not a vision projector, first shard of a split
 * model) or else an `*.onnx` with `tokenizer.json` beside it. Throws `not_found` otherwise.
 */
export async function locateModel(cachePath: string, id: string): Promise<ModelLocation> {
  if (!MODEL_ID_PATTERN.test(id)) {
    throw new TabAgentError("not_found", `The model '${id}' does not exist`, { model: id });
  }
  const dir = `${cachePath}/${cacheDirName(id)}`;
  const all = await files(dir);
  const gguf = all.filter((f) => f.name.endsWith(".gguf") && !/mmproj/i.test(f.name))
    .filter((f) => !/-\d{5}-of-\d{5}\.gguf$/.test(f.name) || /-00001-of-\d{5}\.gguf$/.test(f.name));
  if (gguf.length) {
    const pick = gguf.reduce((best, f) => (f.size > best.size ? f : best));
    return { id, dir, format: "gguf", file: `${dir}/${pick.name}`, sizeBytes: pick.size };
  }
  const onnx = all.filter((f) => f.name.endsWith(".onnx"));
  if (onnx.length && all.some((f) => f.name === "tokenizer.json")) {
    const preferred = onnx.find((f) => /(^|\/)model\.onnx$/.test(f.name)) ?? onnx[0];
    const extra = all.filter((f) => f.name.endsWith(".onnx_data") || f.name.endsWith(".onnx.data"));
    const size = preferred.size + extra.reduce((n, f) => n + f.size, 0);
    return { id, dir, format: "onnx", file: `${dir}/${preferred.name}`, sizeBytes: size };
  }
  throw new TabAgentError(
    "not_found",
    `The model '${id}' is not downloaded: pull it with 'tabagent models pull ${id}' (or POST /v1/models/pull)`,
    { model: id },
  );
}

/** Every model in the cache, by scanning its folders. */
export async function listCachedModels(cachePath: string): Promise<ModelLocation[]> {
  const models: ModelLocation[] = [];
  try {
    for await (const entry of Deno.readDir(cachePath)) {
      if (!entry.isDirectory || !entry.name.includes("--")) continue;
      const id = entry.name.replace("--", "/");
      try {
        models.push(await locateModel(cachePath, id));
      } catch (error) {
        if (!(error instanceof TabAgentError && error.code === "not_found")) throw error;
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return models.sort((a, b) => a.id.localeCompare(b.id));
}
