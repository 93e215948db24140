/** Pieces every Ollama route shares: body parsing, names → loaded models, options → sampling, timing. */
import type { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { TabAgentError, validationError } from "../../errors/mod.ts";
import type { GenerationResult, SamplingOptions } from "../../inference/llama/mod.ts";
import { type ModelHandle, type ModelOrchestrator, parseKeepAlive } from "../../inference/orchestrator/mod.ts";
import type { ModelCache, ModelLocation } from "../../models/mod.ts";
import type { HttpEnv } from "../router.ts";
import { sharedSampling } from "../_openai.ts";
import { modelNotFound, quantOfFile, type ResolvedName, resolveModelName } from "./_names.ts";
import type { OllamaOptions } from "./_schemas.ts";

/**
 * Parses the JSON body with `schema`. Ollama accepts a body whatever its Content-Type (`curl -d`
 * sends form encoding), so this reads the text rather than trusting the header.
 */
export async function readBody<S extends z.ZodTypeAny>(c: Context<HttpEnv>, schema: S): Promise<z.infer<S>> {
  const text = await c.req.text();
  let value: unknown = {};
  if (text.trim()) {
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new TabAgentError("bad_request", `invalid JSON in the request body: ${(error as Error).message}`);
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw validationError("request body", parsed.error.issues);
  return parsed.data;
}

/** Nanoseconds between two `performance.now()` readings, as Ollama reports durations. */
export function nanos(fromMs: number, toMs: number = performance.now()): number {
  return Math.max(0, Math.round((toMs - fromMs) * 1e6));
}

/** Ollama's options → the engine's sampling settings. */
export function samplingOf(options: OllamaOptions | null | undefined): SamplingOptions {
  if (!options) return {};
  // Ollama skips options sent as null; so do we.
  const stop = options.stop == null ? undefined : [options.stop].flat().filter((s) => s.length > 0);
  const predict = options.num_predict ?? undefined;
  return {
    ...sharedSampling(options),
    stop: stop?.length ? stop : undefined,
    // -1 (no limit) and -2 (fill the context) both mean: what is left of the context.
    maxTokens: predict !== undefined && predict > 0 ? predict : undefined,
  };
}

/**
 * The generation budget once the prompt is counted: `num_ctx` smaller than the loaded context caps
 * prompt + reply at it (larger ones are capped at the loaded context, which the model was given).
 */
export function budgetFor(
  prepared: { promptTokens: number; maxTokens: number },
  numCtx: number | null | undefined,
): number {
  if (numCtx == null) return prepared.maxTokens;
  if (prepared.promptTokens >= numCtx) {
    throw new TabAgentError(
      "context_overflow",
      `the prompt is ${prepared.promptTokens} tokens, more than num_ctx (${numCtx})`,
      { context_length: numCtx, prompt_tokens: prepared.promptTokens },
    );
  }
  return Math.min(prepared.maxTokens, numCtx - prepared.promptTokens);
}

/** Parses `keep_alive` into ms (undefined: the orchestrator's default). */
export function keepAliveMs(value: string | number | null | undefined): number | undefined {
  return value == null ? undefined : parseKeepAlive(value);
}

/** Turns Ollama model names into our ids, and loads them through the orchestrator. */
export class ModelNames {
  readonly #orchestrator: ModelOrchestrator;
  readonly #cache: ModelCache;
  readonly #catalog: () => readonly string[];

  constructor(orchestrator: ModelOrchestrator, cache: ModelCache, catalogIds: () => readonly string[]) {
    this.#orchestrator = orchestrator;
    this.#cache = cache;
    this.#catalog = catalogIds;
  }

  /** Every id a name can resolve to: the cache's, then the catalog's. */
  async knownIds(): Promise<string[]> {
    const cached = (await this.#cache.listLocatable()).map((m) => m.id);
    return [...cached, ...this.#catalog().filter((id) => !cached.includes(id))];
  }

  /** Resolves `name`; `not_found` in Ollama's words when nothing matches. */
  async resolve(name: string): Promise<ResolvedName> {
    // The hot path (an id exactly as /api/tags lists it) needs no listing of the cache.
    const known = /^[^:]+\/[^:]+(:latest)?$/.test(name) ? [] : await this.knownIds();
    const resolved = resolveModelName(name, known);
    if (!resolved) throw modelNotFound(name);
    return resolved;
  }

  /** The cached model `name` names, with the quantisation its tag asks for. */
  async locate(name: string): Promise<{ resolved: ResolvedName; location: ModelLocation }> {
    const resolved = await this.resolve(name);
    let location: ModelLocation;
    try {
      location = await this.#cache.locate(resolved.id);
    } catch (error) {
      if (error instanceof TabAgentError && error.code === "not_found") throw modelNotFound(name, resolved.id);
      throw error;
    }
    const quant = quantOfFile(location.file);
    if (resolved.quant && quant && resolved.quant !== quant) throw modelNotFound(name, resolved.id);
    return { resolved, location };
  }

  /** Loads (or finds loaded) the model `name` names and holds it until `release()`. */
  async acquire(
    name: string,
    keepAlive: number | undefined,
    known?: ResolvedName,
  ): Promise<{ id: string; handle: ModelHandle }> {
    const resolved = known ?? await this.resolve(name);
    if (resolved.quant) await this.locate(name);
    try {
      const handle = await this.#orchestrator.acquire(resolved.id, { keepAliveMs: keepAlive });
      return { id: resolved.id, handle };
    } catch (error) {
      if (error instanceof TabAgentError && error.code === "not_found") throw modelNotFound(name, resolved.id);
      throw error;
    }
  }
}

/** When generation started and when its first text came: what the nanosecond durations are made of. */
export class Timings {
  readonly began = performance.now();
  loaded = 0;
  started = 0;
  first = 0;

  metrics(result: GenerationResult) {
    const end = performance.now();
    const first = this.first || end;
    return {
      total_duration: nanos(this.began, end),
      load_duration: nanos(this.began, this.loaded || this.began),
      prompt_eval_count: result.promptTokens,
      prompt_eval_duration: nanos(this.started || first, first),
      eval_count: result.completionTokens,
      eval_duration: nanos(first, end),
    };
  }
}
