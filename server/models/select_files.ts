/**
 * Which of a repository's files a pull fetches: the patterns asked for, the catalog entry's list, one
 * GGUF quantisation, or everything but the formats we never load.
 * @module
 */
import { TabAgentError } from "../errors/mod.ts";
import { type CatalogEntry, entryPatterns } from "./catalog/catalog.ts";
import { matchesAny } from "./glob.ts";
import type { HubFile } from "./hub_client.ts";

/** The GGUF quantisation pulled when none is named. */
export const DEFAULT_QUANT = "Q4_K_M";
const SKIPPED_BY_DEFAULT = [".gitattributes", "*.h5", "**/*.h5", "*.msgpack", "*.ot", "openvino/**", "*.mlmodel"];

/** Chooses which of a repository's files to fetch. */
export function selectFiles(
  files: HubFile[],
  options: { patterns?: string[]; quant?: string; catalog?: CatalogEntry },
): HubFile[] {
  const patterns = options.patterns?.length
    ? options.patterns
    : options.catalog
    ? entryPatterns(options.catalog)
    : null;
  if (patterns) {
    const chosen = files.filter((f) => matchesAny(f.path, patterns));
    if (chosen.length === 0) {
      throw new TabAgentError("not_found", `No file of the repository matches ${patterns.join(", ")}`, {
        available: files.map((f) => f.path).slice(0, 50),
      });
    }
    return chosen;
  }
  const ggufs = files.filter((f) => f.path.toLowerCase().endsWith(".gguf"));
  if (ggufs.length > 1 || (ggufs.length === 1 && options.quant)) {
    const quant = (options.quant ?? DEFAULT_QUANT).toLowerCase();
    const chosen = ggufs.filter((f) => f.path.toLowerCase().includes(quant));
    if (chosen.length === 0) {
      throw new TabAgentError("not_found", `No GGUF file for quantisation ${options.quant ?? DEFAULT_QUANT}`, {
        available: ggufs.map((f) => f.path),
      });
    }
    return chosen;
  }
  const hasSafetensors = files.some((f) => f.path.endsWith(".safetensors"));
  return files.filter((f) =>
    !matchesAny(f.path, SKIPPED_BY_DEFAULT) &&
    !(hasSafetensors && /(^|\/)(pytorch_model.*\.bin|.*\.pt)$/.test(f.path))
  );
}
