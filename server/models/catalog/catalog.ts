/**
 * The default model library: a JSON file in the repository, validated with zod when loaded. Each
 * entry names a Hub repository, the files to fetch (exact paths or glob patterns), task, format,
 * license and the memory it needs.
 * @module
 */
import { z } from "zod";
import { validationError } from "../../errors/mod.ts";
import { modelIdSchema, repoPathSchema } from "../repo_id.ts";
import raw from "./catalog.json" with { type: "json" };

/** What a model is for. */
export const MODEL_TASKS = ["chat", "embedding", "vision", "face_detection"] as const;
/** Weight formats the server knows. */
export const MODEL_FORMATS = ["gguf", "onnx", "safetensors", "tflite"] as const;

const exactFileSchema = z.object({
  path: repoPathSchema,
  size: z.number().int().nonnegative().nullable(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
});
const patternFileSchema = z.object({ pattern: z.string().min(1).max(256) });

/** One catalog entry. */
export const catalogEntrySchema = z.object({
  id: modelIdSchema,
  name: z.string().min(1),
  task: z.enum(MODEL_TASKS),
  format: z.enum(MODEL_FORMATS),
  /** A 40-hex commit, or null: pull `main` and record the commit in the manifest. */
  revision: z.string().regex(/^[0-9a-f]{40}$/).nullable(),
  files: z.array(z.union([exactFileSchema, patternFileSchema])).min(1),
  approx_bytes: z.number().int().positive(),
  license: z.string().min(1),
  license_note: z.string().optional(),
  min_ram_bytes: z.number().int().positive(),
});

/** A catalog entry. */
export type CatalogEntry = z.infer<typeof catalogEntrySchema>;
/** A model task. */
export type ModelTask = typeof MODEL_TASKS[number];

const catalogSchema = z.object({
  version: z.literal(1),
  note: z.string().optional(),
  models: z.array(catalogEntrySchema),
}).refine((c) => new Set(c.models.map((m) => m.id)).size === c.models.length, "model ids must be unique");

/** Validates a catalog document (the built-in one, or a test's). */
export function parseCatalog(value: unknown): CatalogEntry[] {
  const parsed = catalogSchema.safeParse(value);
  if (!parsed.success) throw validationError("model catalog", parsed.error.issues);
  return parsed.data.models;
}

let builtIn: CatalogEntry[] | undefined;

/**
 * The built-in catalog.
 *
 * @example
 * ```ts
 * const chat = defaultCatalog().filter((m) => m.task === "chat");
 * ```
 */
export function defaultCatalog(): CatalogEntry[] {
  builtIn ??= parseCatalog(raw);
  return builtIn;
}

/** Glob matching lives in `../glob.ts` (linear time); re-exported for existing callers. */
export { matchesAny } from "../glob.ts";

/** The patterns (exact paths included) an entry asks for. */
export function entryPatterns(entry: CatalogEntry): string[] {
  return entry.files.map((file) => "path" in file ? file.path : file.pattern);
}
