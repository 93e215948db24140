/**
 * usearch's Node binding built here (`scripts/usearch_native.ts`, run by setup) from the installed
 * package's own sources, with one method more than the prebuilt binary has:
 * `changeExpansionSearch(ef)`, usearch's `index_dense_gt::change_expansion_search`, so that one
 * index can be searched with a smaller candidate list where less recall will do (a hybrid query's
 * vector list, see query/engine.ts). The prebuilt binding fixes that list at construction. Where
 * the build is missing, stale (another usearch version) or cannot load, the prebuilt one serves and
 * every search uses the index's own expansion.
 */
import { createRequire } from "node:module";
// paths.ts, not mod.ts: setup imports this before npm packages are installed, and mod.ts needs zod
import { defaultBuildCacheDir } from "../../config/paths.ts";

/** Bumped when the patch or the build changes: an older build is not loaded. */
export const USEARCH_NATIVE_RECIPE = "usearch-native 1: +changeExpansionSearch";

/** TabAgent's cache of things built on this machine: `$TABAGENT_USEARCH_CACHE`, default `~/.cache/tabagent`. */
export function usearchCacheDir(env: (name: string) => string | undefined = (name) => Deno.env.get(name)): string {
  return env("TABAGENT_USEARCH_CACHE") || defaultBuildCacheDir(Deno.build.os, env);
}

/** The binding's folder in that cache, per usearch version. */
export function usearchNativeDir(version: string, cache: string = usearchCacheDir()): string {
  return `${cache}/usearch-native/${version}`;
}

/** What the stamp beside a current build says. */
export function usearchNativeStamp(version: string): string {
  return `usearch ${version}; ${USEARCH_NATIVE_RECIPE}\n`;
}

/** The installed usearch package's version. */
export function usearchVersion(): string {
  const url = new URL("../../../node_modules/usearch/package.json", import.meta.url);
  return (JSON.parse(Deno.readTextFileSync(url)) as { version: string }).version;
}

/** The native `CompiledIndex` class: the constructor and the methods the index uses. */
export interface UsearchCompiledIndex {
  add(keys: BigUint64Array, vectors: Float32Array, threads: number): void;
  search(query: Float32Array, k: number, threads: number): [BigUint64Array, Float32Array, BigUint64Array];
  remove(keys: BigUint64Array): number[];
  contains(keys: BigUint64Array): boolean[];
  size(): number;
  dimensions(): number;
  save(path: string): void;
  load(path: string): void;
  changeExpansionSearch(expansion: number): void;
}

/** `new CompiledIndex(dimensions, metric, quantization, connectivity, expansionAdd, expansionSearch, multi)`. */
export type UsearchCompiledIndexClass = new (
  dimensions: number,
  metric: string,
  quantization: string,
  connectivity: number,
  expansionAdd: number,
  expansionSearch: number,
  multi: boolean,
) => UsearchCompiledIndex;

let loaded: UsearchCompiledIndexClass | null | undefined;

/**
 * The locally built binding's `CompiledIndex`, or null where there is none for the installed
 * usearch (or it cannot load: no FFI permission, another platform). Looked up once per thread.
 */
export function usearchNative(): UsearchCompiledIndexClass | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (Deno.env.get("TABAGENT_USEARCH_NATIVE") === "0") return loaded;
  try {
    const version = usearchVersion();
    const dir = usearchNativeDir(version);
    if (Deno.readTextFileSync(`${dir}/stamp`) !== usearchNativeStamp(version)) return loaded;
    const binding = createRequire(import.meta.url)(`${dir}/usearch.node`) as {
      CompiledIndex?: UsearchCompiledIndexClass;
    };
    const compiled = binding.CompiledIndex;
    if (typeof compiled?.prototype?.changeExpansionSearch === "function") loaded = compiled;
  } catch (error) {
    // no build (NotFound), no permission to read or load it, or a binary for another platform:
    // the prebuilt binding serves
    if (!(error instanceof Error)) throw error;
  }
  return loaded;
}
