/**
 * Typed settings, read once: flags > `TABAGENT_*` environment > defaults, plus per-platform data
 * paths and the named limits every boundary enforces.
 *
 * @example
 * ```ts
 * import { configFromEnv, resolveConfig } from "./mod.ts";
 * const config = resolveConfig({}, configFromEnv(Deno.env.toObject()), { environment: Deno.env.toObject() });
 * ```
 * @module
 */
export * from "./config.ts";
export * from "./limits.ts";
export { defaultBuildCacheDir, defaultDataDir, joinPath } from "./paths.ts";
export { ensureWritableDir } from "./writable_dir.ts";
