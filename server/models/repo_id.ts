/**
 * Model ids (`org/name`, as on the Hugging Face Hub), their cache folder names, and repository file
 * paths that are safe to join under a cache folder.
 * @module
 */
import { z } from "zod";
import { TabAgentError, validationError } from "../errors/mod.ts";
import { MAX_MODEL_FILE_PATH_LENGTH } from "./limits.ts";

// The Hub's own rule for a user, organisation or repository name: letters, digits, '-', '_', '.',
// at most 96 characters, not starting or ending with '-' or '.', and never '--' or '..'. That last
// rule is what makes `<org>--<name>` an unambiguous folder name. Written as regular expressions (the
// last rule as lookaheads) so the OpenAPI document states the rule exactly: a client generating ids
// from the schema then sends only ids the server takes.
const SEGMENT_SOURCE = "[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?";
const NO_DOUBLES = "(?!.*--)(?!.*\\.\\.)";

/** One segment of a model id (`org` or `name`), as a `pattern` for OpenAPI and a check. */
export const MODEL_ID_SEGMENT_PATTERN = new RegExp(`^${NO_DOUBLES}${SEGMENT_SOURCE}$`);
const MODEL_ID_PATTERN = new RegExp(`^${NO_DOUBLES}${SEGMENT_SOURCE}/${SEGMENT_SOURCE}$`);

/** A model id: `org/name`, e.g. `Qwen/Qwen2.5-0.5B-Instruct-GGUF`. */
export const modelIdSchema = z.string().max(193).regex(
  MODEL_ID_PATTERN,
  "must be a Hugging Face repo id 'org/name' (letters, digits, '-', '_', '.'), e.g. 'Qwen/Qwen2.5-0.5B-Instruct-GGUF'",
);

/** A model id, checked. */
export type ModelId = z.infer<typeof modelIdSchema>;

/** Parses a model id or throws a `validation_failed` error naming `field`. */
export function parseModelId(value: unknown, field = "id"): ModelId {
  const parsed = modelIdSchema.safeParse(value);
  if (!parsed.success) throw validationError(field, parsed.error.issues.map((i) => ({ ...i, path: [field] })));
  return parsed.data;
}

/** The cache folder name of a model: `org--name`. */
export function folderName(id: ModelId): string {
  return id.replace("/", "--");
}

/** The model id of a cache folder name, or null when the name is not one. */
export function idFromFolder(folder: string): ModelId | null {
  const cut = folder.indexOf("--");
  if (cut <= 0) return null;
  const id = `${folder.slice(0, cut)}/${folder.slice(cut + 2)}`;
  return modelIdSchema.safeParse(id).success ? id : null;
}

/**
 * A relative repository path that stays inside its folder on every OS, as a regular expression (so
 * the OpenAPI document states the rule): no leading '/', no empty, '.' or '..' segment, none of the
 * characters Windows forbids. `[\s\S]`, not `.`, in the lookaheads: `.` stops at U+2028 and
 * U+2029, which would hide a `/../` behind one.
 */
export const REPO_PATH_PATTERN =
  // deno-lint-ignore no-control-regex
  /^(?!\/)(?![\s\S]*\/\/)(?![\s\S]*\/$)(?!(?:[\s\S]*\/)?\.\.?(?:\/|$))[^\x00-\x1f\\:*?"<>|]+$/;

/**
 * True for a relative repository path that stays inside its folder on every OS: '/'-separated, no
 * empty, '.' or '..' segment, no backslash, drive letter, control character or leading '/'.
 */
export function isSafeRepoPath(path: string): boolean {
  return path.length <= MAX_MODEL_FILE_PATH_LENGTH && REPO_PATH_PATTERN.test(path);
}

/** A file path inside a model repository, checked by {@link isSafeRepoPath}. */
export const repoPathSchema = z.string().max(MAX_MODEL_FILE_PATH_LENGTH).regex(
  REPO_PATH_PATTERN,
  "must be a relative path inside the repository (no '..', no leading '/', no backslash)",
);

/** Throws a `bad_request` error unless `path` is a safe repository path. */
export function assertSafeRepoPath(path: string, where: string): string {
  if (!isSafeRepoPath(path)) {
    throw new TabAgentError("bad_request", `Refused unsafe file path ${JSON.stringify(path)} in ${where}`, {
      path,
    });
  }
  return path;
}

/** Names the cache uses for its own files; a repository file may not end with them. */
export const RESERVED_SUFFIXES = [".partial", ".partial.json", ".lock"] as const;
