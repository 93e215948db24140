/** A loaded GGUF model: one context with N sequences, chat, completion, embeddings, token counting. */
import {
  type ChatHistoryItem,
  type ChatModelFunctions,
  type ChatWrapper,
  JinjaTemplateChatWrapper,
  type Llama,
  LlamaChat,
  LlamaCompletion,
  type LlamaCompletionGenerationOptions,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaGrammar,
  type LlamaModel,
  resolveChatWrapper,
  type Token,
  type Tokenizer,
} from "node-llama-cpp";
import { TabAgentError } from "../../errors/mod.ts";
import type { TokenCounter } from "../tokenizers/mod.ts";
import { toChatHistory } from "./history.ts";
import {
  gateDecodes,
  groupPrompts,
  LockstepGate,
  orderOutputsOnce,
  separatePrompts,
  withBatchThreads,
} from "./batching.ts";
import { evaluatesLoneTokensAsBatches, type PromptCacheStats, SequencePool } from "./sequence_pool.ts";
import { llamaBinding, nativeDecodeSteps } from "./runtime.ts";
import { DecodeLoop } from "./decode_loop.ts";
import { generateNativeReply } from "./native_reply.ts";
import { textStopTriggers } from "./reply_text.ts";
import { cachedTokenizer } from "./tokenizer_cache.ts";
import { prefixCopy } from "./prefix_copy.ts";
import type { DecodePlacement } from "./placement.ts";
import type {
  ChatRequest,
  FinishReason,
  GenerationCallbacks,
  GenerationResult,
  SamplingOptions,
  ToolCall,
} from "./types.ts";

/** Default sampling temperature when a request gives none (llama.cpp's and Ollama's default). */
export const DEFAULT_TEMPERATURE = 0.8;
/** Tokens the repeat/presence/frequency penalties look back over (llama.cpp's default). */
export const PENALTY_LAST_TOKENS = 64;
/** Largest context a model gets unless configured otherwise (per sequence, tokens). */
export const DEFAULT_CONTEXT_SIZE = 4096;
/** Prompt pieces whose tokens a model keeps (the template's fixed parts, recurring messages). */
const TOKENIZER_CACHE_PIECES = 512;

/** Text whose tokens probe whether a lone token evaluates as in a batch (about 40 tokens in most vocabularies). */
const INVARIANCE_PROBE_TEXT = "The harbour was quiet that morning. Fishermen sold what they caught, gulls " +
  "circled the lighthouse, and a girl named Ada walked along the beach, counting the boats: one, two, three.";

/** How a model is loaded. */
export interface LlamaModelOptions {
  /** Tokens per sequence; capped at what the model was trained on. */
  contextSize?: number;
  /** Parallel sequences (concurrent requests, decoded together in one batch) in the one context. */
  sequences: number;
  /**
   * Extra sequences that only keep idle conversations' state (prompt cache), so that more
   * conversations than `sequences` continue without processing their history again. Default 0.
   */
  promptCacheSequences?: number;
  threads: number;
  /**
   * The thread count for each batch, given how many tokens and sequences it holds (applied through
   * llama.cpp's cap before the batch runs). Without it every batch runs on `threads`.
   */
  batchThreads?: (batch: { tokens: number; sequences: number }) => number;
  /**
   * Places the event loop and the compute thread while a reply generates on one thread: apart for
   * the decode loop, beside for node-llama-cpp's relay (placement.ts); the server's orchestrator
   * gives one to every model. Without it Linux places them.
   */
  placement?: DecodePlacement;
  /** Flash attention; by default on with the local build (row by row there) and off with the prebuilt. */
  flashAttention?: boolean;
  /**
   * Plain chat replies in the binding's native decode loop where it has one (decode_loop.ts); false
   * keeps every reply in node-llama-cpp's generator (the tests compare the two). Default true.
   */
  nativeDecode?: boolean;
}

/** A chat request after templating and checks, ready to run on a sequence. */
export interface PreparedChat {
  history: ChatHistoryItem[];
  /** The rendered prompt's tokens: what the sequence must hold before the reply. */
  tokens: Token[];
  promptTokens: number;
  maxTokens: number;
  sampling: SamplingOptions;
  grammar?: LlamaGrammar;
  functions?: ChatModelFunctions;
  /** Set when tool_choice forces a call: the grammar produces {name, arguments}. */
  forcedTools?: boolean;
  /**
   * The stop sequences when the native decode loop can generate this reply exactly as node-llama-cpp's
   * chat generator would (native_reply.ts); undefined otherwise.
   */
  nativeStops?: string[];
}

/** A completion request after the checks. */
export interface PreparedCompletion {
  prompt: string;
  promptTokens: number;
  maxTokens: number;
  sampling: SamplingOptions;
}

/** A fill-in-the-middle request after the checks. */
export interface PreparedInfill extends PreparedCompletion {
  /** The text after the gap. */
  suffix: string;
}

/** A template-free completion's checked size and sampling. */
type CompletionBudget = { promptTokens: number; maxTokens: number; sampling: SamplingOptions };

/** How a template-free completion runs: the prompt to reuse a sequence for, what to keep, and the generation. */
interface CompletionPlan {
  prompt?: Token[];
  keep: Token[];
  run: (
    completion: LlamaCompletion,
    options: LlamaCompletionGenerationOptions,
  ) => Promise<{ response: string; metadata: { stopReason: string } }>;
}

function newCallId(): string {
  return `call_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
}

function hasPenalties(sampling: SamplingOptions): boolean {
  return sampling.repeatPenalty !== undefined || !!sampling.presencePenalty || !!sampling.frequencyPenalty;
}

/** The template's stop sequences and the request's, or undefined when the template's are not all text. */
function withStops(template: string[] | undefined, requested: string[] | undefined): string[] | undefined {
  return template && [...template, ...(requested ?? [])];
}

function finishReasonOf(stopReason: string): FinishReason {
  if (stopReason === "maxTokens") return "length";
  if (stopReason === "functionCalls") return "tool_calls";
  return "stop";
}

/** A GGUF model with its context; every method that evaluates needs a sequence from the scheduler's slot. */
export class LlamaTextModel implements TokenCounter {
  readonly #llama: Llama;
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  readonly chatWrapper: ChatWrapper;
  /** Why the model's own chat template is not used (undefined when it is). */
  readonly chatTemplateFallback?: string;
  readonly #pool: SequencePool;
  readonly #placement?: DecodePlacement;
  readonly #lockstep: LockstepGate;
  /** Each generating sequence's way out of the decode placement ({@link DecodePlacement.enter}). */
  readonly #leavePlacement = new Map<LlamaContextSequence, () => void>();
  readonly #parallel: number;
  /** The local build's native decode loop (decode_loop.ts); undefined with the prebuilt binding. */
  readonly #loop?: DecodeLoop;
  /**
   * Whether the hooks into node-llama-cpp's internals took (batching.ts): they are written for the
   * pinned 3.21.1, and another version may lack what they wrap.
   */
  readonly batchingHooks: { lockstep: boolean; orderedOutputs: boolean };
  #embedding?: Promise<LlamaEmbeddingContext>;
  /** The model's tokenizer, its answers for recurring prompt pieces kept (tokenizer_cache.ts). */
  readonly #tokenizer: Tokenizer;
  #threads: number;
  #stats = { total: 0, aborted: 0, completionTokens: 0 };

  private constructor(
    llama: Llama,
    model: LlamaModel,
    context: LlamaContext,
    pool: SequencePool,
    lockstep: LockstepGate,
    options: {
      threads: number;
      parallel: number;
      placement?: DecodePlacement;
      hooks: { lockstep: boolean; orderedOutputs: boolean };
      loop?: DecodeLoop;
    },
  ) {
    this.#loop = options.loop;
    this.#lockstep = lockstep;
    this.#llama = llama;
    this.model = model;
    this.#tokenizer = cachedTokenizer(model.tokenizer, TOKENIZER_CACHE_PIECES);
    this.context = context;
    this.#threads = options.threads;
    this.#parallel = options.parallel;
    this.#pool = pool;
    this.#placement = options.placement;
    this.batchingHooks = options.hooks;
    const chosen = chooseChatWrapper(model);
    this.chatWrapper = chosen.wrapper;
    this.chatTemplateFallback = chosen.fallbackReason;
  }

  /**
   * Loads the GGUF at `path` with one context of `sequences` sequences.
   *
   * @example
   * ```ts
   * const model = await LlamaTextModel.load(llama, "model.gguf", { sequences: 4, threads: 1 });
   * ```
   */
  static async load(llama: Llama, path: string, options: LlamaModelOptions): Promise<LlamaTextModel> {
    const model = await llama.loadModel({ modelPath: path });
    try {
      const contextSize = Math.min(options.contextSize ?? DEFAULT_CONTEXT_SIZE, model.trainContextSize);
      // node-llama-cpp's prebuilt binding evaluates a lone token (each generated one) unlike a batch, so
      // replies are evaluated again before they are kept; a local build may not (sequence_pool.ts). The
      // probe below decides, after the context exists; until then prompts are batched one at a time.
      let keepReplies = false;
      const context = await model.createContext({
        contextSize,
        sequences: options.sequences + (options.promptCacheSequences ?? 0),
        threads: options.threads,
        // A prompt's evaluation must not depend on how it is split into batches, so that a reply is
        // the same whether its prefix came from the cache (sequence_pool.ts). The prebuilt's flash
        // attention tiles a batch's rows (and splits long caches) and rounds unlike a lone row, so it
        // stays off there. The local build computes flash attention row by row whatever the batch
        // (scripts/llama_native.ts), which is exact and spares about 150 of 1,089 graph nodes a token.
        flashAttention: options.flashAttention ?? llamaBinding(llama) !== "prebuilt",
        batching: {
          itemPrioritizationStrategy: withBatchThreads(
            ({ items, size }) => keepReplies ? groupPrompts(items, size) : separatePrompts(items, size),
            options.batchThreads,
            (threads) => {
              llama.maxThreads = threads;
              options.placement?.update();
            },
          ),
        },
      });
      const sequences: LlamaContextSequence[] = [];
      if (llamaBinding(llama) !== "prebuilt") {
        sequences.push(context.getSequence());
        keepReplies = await evaluatesLoneTokensAsBatches(sequences[0], model.tokenize(INVARIANCE_PROBE_TEXT, false));
      }
      // A new conversation may start from another's shared prefix, copied: exact where replies are kept.
      const copyPrefix = keepReplies ? prefixCopy(llama, context) : undefined;
      const pool = new SequencePool(context, { keepReplies, sequences, copyPrefix });
      // Concurrent replies decode in lockstep, each batch's outputs read in order (batching.ts).
      const lockstep = new LockstepGate();
      const hooks = { lockstep: gateDecodes(context, lockstep), orderedOutputs: orderOutputsOnce(context) };
      // Replies decode in a loop inside the binding where it has one and rows evaluate alike.
      const steps = keepReplies && options.nativeDecode !== false ? nativeDecodeSteps(llama) : undefined;
      const loop = steps &&
        DecodeLoop.create(
          context,
          steps,
          (n) => options.batchThreads?.({ tokens: n, sequences: n }) ?? options.threads,
        );
      return new LlamaTextModel(llama, model, context, pool, lockstep, {
        threads: options.threads,
        // Without ordered outputs, replies sampled after one shared batch can read each other's
        // logits (batching.ts): then one reply generates at a time.
        parallel: hooks.orderedOutputs ? options.sequences : 1,
        placement: options.placement,
        hooks,
        loop,
      });
    } catch (error) {
      await model.dispose();
      throw error;
    }
  }

  /** Tokens per sequence. */
  get contextSize(): number {
    return this.context.contextSize;
  }

  /** Parallel sequences: how many requests may generate at once. */
  get sequences(): number {
    return this.#parallel;
  }

  /**
   * Whether a reply's KV is kept as generated (the binding evaluates a lone token exactly as a batch)
   * rather than evaluated again before the conversation's next turn.
   */
  get keepsReplyState(): boolean {
    return this.#pool.keepsReplies;
  }

  /** How many decode batches held the steps of several replies together ({@link LockstepGate}). */
  get lockstepBatches(): number {
    return this.#lockstep.together;
  }

  /** Sequences generating now. */
  get busySequences(): number {
    return this.#pool.busy;
  }

  /** Prompt-cache hits, misses, reused prompt tokens and evictions, and idle sequences holding a conversation. */
  get promptCache(): PromptCacheStats & { sequences: number; cached: number } {
    return {
      ...this.#pool.stats,
      sequences: this.context.totalSequences - this.#parallel,
      cached: this.#pool.cached,
    };
  }

  /** Generations run so far, how many were aborted (client gone, shutdown), and tokens generated. */
  get stats(): { total: number; aborted: number; completionTokens: number } {
    return { ...this.#stats };
  }

  #count(result: GenerationResult): GenerationResult {
    this.#stats.total++;
    if (result.aborted) this.#stats.aborted++;
    this.#stats.completionTokens += result.completionTokens;
    return result;
  }

  /** Model weights in bytes. */
  get sizeBytes(): number {
    return this.model.size;
  }

  /** Tokens in `text` with this model's own tokenizer. */
  countTokens(text: string): number {
    return this.model.tokenize(text).length;
  }

  /**
   * Evaluates the idle conversations' last replies now (normally done in the background once the
   * model has been idle for a moment), so that their next turns only process the new messages.
   */
  refillPromptCache(): Promise<void> {
    return this.#exclusive(() => this.#pool.refillNow());
  }

  /** Forgets the idle conversations' KV state: their next turns process the whole prompt again. */
  clearPromptCache(): Promise<void> {
    return this.#exclusive(() => this.#pool.clear());
  }

  /**
   * A sequence for a reply, holding the longest cached prefix of `tokens`. `native`: the reply runs
   * in the decode loop, whose steps node-llama-cpp's lockstep does not see.
   */
  async #acquire(
    tokens?: readonly Token[],
    native = false,
  ): Promise<{ sequence: LlamaContextSequence; reusedTokens: number }> {
    if (this.#pool.busy >= this.#parallel) {
      throw new TabAgentError("too_many_requests", "Every sequence of this model is busy");
    }
    // The pool copies and erases KV cells: never while the decode loop is in a step.
    const acquired = await this.#exclusive(() => this.#pool.acquire(tokens));
    // From here until #release the sequence generates: lockstep waits for its steps, and the
    // placement puts the event loop and the compute thread on one core for node-llama-cpp's relay
    // (they take turns), on cores of their own for the decode loop (it computes the next step while
    // JS streams this one). Each sequence leaves its own.
    if (!native) this.#lockstep.begin();
    const leave = this.#placement?.enter(native ? "apart" : "beside", this);
    if (leave) this.#leavePlacement.set(acquired.sequence, leave);
    return acquired;
  }

  #release(sequence: LlamaContextSequence, prompt: readonly Token[], native = false): Promise<void> {
    this.#leavePlacement.get(sequence)?.();
    this.#leavePlacement.delete(sequence);
    if (!native) this.#lockstep.end();
    return this.#exclusive(() => this.#pool.release(sequence, prompt));
  }

  /** Runs `fn`, which uses the context through node-llama-cpp, while the decode loop is paused. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.#loop ? this.#loop.exclusive(fn) : fn();
  }

  /** The native decode loop's runs (calls into the binding) and steps; undefined without it. */
  get nativeDecode(): { runs: number; steps: number } | undefined {
    return this.#loop?.stats;
  }

  #checkFits(promptTokens: number, maxTokens: number | undefined, what: string): number {
    const size = this.contextSize;
    if (promptTokens >= size) {
      throw new TabAgentError(
        "context_overflow",
        `This model's maximum context length is ${size} tokens, but the ${what} is ${promptTokens} tokens`,
        { context_length: size, prompt_tokens: promptTokens },
      );
    }
    if (maxTokens !== undefined && promptTokens + maxTokens > size) {
      throw new TabAgentError(
        "context_overflow",
        `This model's maximum context length is ${size} tokens, but ${promptTokens + maxTokens} were requested ` +
          `(${promptTokens} in the ${what}, ${maxTokens} for the completion); lower max_tokens`,
        { context_length: size, prompt_tokens: promptTokens, max_tokens: maxTokens },
      );
    }
    return maxTokens ?? size - promptTokens;
  }

  async #grammarFor(request: ChatRequest): Promise<{ grammar?: LlamaGrammar; forced: boolean }> {
    const choice = request.toolChoice ?? "auto";
    const tools = request.tools ?? [];
    try {
      if (tools.length && (choice === "required" || typeof choice === "object")) {
        const chosen = typeof choice === "object" ? tools.filter((t) => t.name === choice.name) : tools;
        if (!chosen.length) {
          throw new TabAgentError(
            "validation_failed",
            `tool_choice names '${(choice as { name: string }).name}', which is not in tools`,
            {
              errors: [{ field: "tool_choice", message: "unknown function" }],
            },
          );
        }
        const variants = chosen.map((tool) => ({
          type: "object",
          properties: {
            name: { const: tool.name },
            arguments: tool.parameters ?? { type: "object", properties: {} },
          },
          required: ["name", "arguments"],
        }));
        const schema = variants.length === 1 ? variants[0] : { oneOf: variants };
        return { grammar: await this.#llama.createGrammarForJsonSchema(schema as never), forced: true };
      }
      if (request.jsonSchema) {
        return { grammar: await this.#llama.createGrammarForJsonSchema(request.jsonSchema as never), forced: false };
      }
      if (request.jsonObject) return { grammar: await this.#llama.getGrammarFor("json"), forced: false };
    } catch (error) {
      if (error instanceof TabAgentError) throw error;
      throw new TabAgentError("validation_failed", `The JSON Schema is not supported: ${(error as Error).message}`, {
        errors: [{
          field: request.jsonSchema ? "response_format.json_schema.schema" : "tools",
          message: "unsupported",
        }],
      }, { cause: error });
    }
    return { forced: false };
  }

  /**
   * The prompt text (special tokens written out) the chat template renders for `request`, and its
   * tokens: exactly what generation evaluates before the reply.
   */
  async renderChat(request: ChatRequest): Promise<{ text: string; tokens: Token[] }> {
    const prepared = await this.prepareChat(request);
    return { text: this.model.detokenize(prepared.tokens, true), tokens: prepared.tokens };
  }

  /** Templates the chat, builds grammars, counts prompt tokens and refuses what does not fit. */
  async prepareChat(request: ChatRequest): Promise<PreparedChat> {
    const { grammar, forced } = await this.#grammarFor(request);
    const messages = [...request.messages];
    if (forced) {
      const names = (request.tools ?? []).map((t) => t.name).join(", ");
      messages.unshift({
        role: "system",
        content:
          `Call one of these functions (${names}) by replying with a JSON object {"name": ..., "arguments": {...}}.\n` +
          JSON.stringify(request.tools),
      });
    }
    const history = toChatHistory(messages);
    const useFunctions = !grammar && (request.tools?.length ?? 0) > 0 && request.toolChoice !== "none";
    const functions: ChatModelFunctions | undefined = useFunctions
      ? Object.fromEntries(
        request.tools!.map((tool) => [tool.name, { description: tool.description, params: tool.parameters as never }]),
      )
      : undefined;
    const state = this.chatWrapper.generateContextState({
      chatHistory: history,
      availableFunctions: functions,
      documentFunctionParams: useFunctions ? true : undefined,
    });
    const tokens = state.contextText.tokenize(this.#tokenizer);
    const promptTokens = tokens.length;
    const maxTokens = this.#checkFits(promptTokens, request.maxTokens, "prompt");
    const plain = !grammar && !functions && !forced && !hasPenalties(request) && !state.ignoreStartText?.length &&
      !Object.keys(this.chatWrapper.settings.segments ?? {}).length;
    const nativeStops = this.#loop && plain
      ? withStops(textStopTriggers(this.model, state.stopGenerationTriggers, this.#tokenizer), request.stop)
      : undefined;
    return {
      history,
      tokens,
      promptTokens,
      maxTokens,
      sampling: request,
      grammar,
      functions,
      forcedTools: forced,
      nativeStops,
    };
  }

  #samplingOptions(sampling: SamplingOptions) {
    return {
      temperature: sampling.temperature ?? DEFAULT_TEMPERATURE,
      topK: sampling.topK,
      topP: sampling.topP,
      minP: sampling.minP,
      seed: sampling.seed,
      repeatPenalty: hasPenalties(sampling)
        ? {
          penalty: sampling.repeatPenalty ?? 1,
          presencePenalty: sampling.presencePenalty,
          frequencyPenalty: sampling.frequencyPenalty,
          lastTokens: PENALTY_LAST_TOKENS,
        }
        : undefined,
      customStopTriggers: sampling.stop?.length ? sampling.stop : undefined,
    };
  }

  /** Generates a chat reply on a free sequence; call it inside the scheduler's slot for this model. */
  generateChat(prepared: PreparedChat, callbacks: GenerationCallbacks = {}): Promise<GenerationResult> {
    if (this.#loop && prepared.nativeStops) return this.#generateNativeChat(prepared, prepared.nativeStops, callbacks);
    return this.#exclusive(() => this.#generateChat(prepared, callbacks));
  }

  /** A chat reply from the native decode loop (native_reply.ts). */
  async #generateNativeChat(
    prepared: PreparedChat,
    stops: string[],
    callbacks: GenerationCallbacks,
  ): Promise<GenerationResult> {
    const { sequence, reusedTokens } = await this.#acquire(prepared.tokens, true);
    try {
      const sampling = prepared.sampling;
      const reply = await generateNativeReply(this.model, this.#loop!, {
        sequence,
        input: prepared.tokens.slice(sequence.nextTokenIndex),
        sampling: {
          temperature: sampling.temperature ?? DEFAULT_TEMPERATURE,
          topK: sampling.topK,
          topP: sampling.topP,
          minP: sampling.minP,
          seed: sampling.seed,
        },
        maxTokens: prepared.maxTokens,
        stops,
      }, callbacks);
      return this.#count({
        ...reply,
        toolCalls: [],
        promptTokens: prepared.promptTokens,
        cachedTokens: reusedTokens,
      });
    } finally {
      await this.#release(sequence, prepared.tokens, true);
    }
  }

  async #generateChat(prepared: PreparedChat, callbacks: GenerationCallbacks): Promise<GenerationResult> {
    const { sequence, reusedTokens } = await this.#acquire(prepared.tokens);
    const chat = new LlamaChat({ contextSequence: sequence, chatWrapper: this.chatWrapper });
    const outputBefore = sequence.tokenMeter.usedOutputTokens;
    try {
      const common = {
        ...this.#samplingOptions(prepared.sampling),
        maxTokens: prepared.maxTokens,
        signal: callbacks.signal,
        stopOnAbortSignal: true,
        onTextChunk: prepared.forcedTools ? undefined : callbacks.onText,
      };
      const response = prepared.grammar
        ? await chat.generateResponse(prepared.history, { ...common, grammar: prepared.grammar })
        : await chat.generateResponse(prepared.history, { ...common, functions: prepared.functions });
      const completionTokens = generatedTokens(sequence, outputBefore, prepared.maxTokens);
      const aborted = response.metadata.stopReason === "abort";
      if (prepared.forcedTools) {
        const parsed = JSON.parse(response.response || "{}") as { name?: string; arguments?: unknown };
        const done = !aborted && response.metadata.stopReason !== "maxTokens" && typeof parsed.name === "string";
        return this.#count({
          text: "",
          toolCalls: done
            ? [{
              id: newCallId(),
              type: "function",
              function: { name: parsed.name!, arguments: JSON.stringify(parsed.arguments ?? {}) },
            }]
            : [],
          finishReason: done ? "tool_calls" : "length",
          promptTokens: prepared.promptTokens,
          cachedTokens: reusedTokens,
          completionTokens,
          aborted,
        });
      }
      const calls = (response.functionCalls ?? []) as { functionName: string; params: unknown }[];
      const toolCalls: ToolCall[] = calls.map((call) => ({
        id: newCallId(),
        type: "function",
        function: { name: call.functionName, arguments: JSON.stringify(call.params ?? {}) },
      }));
      return this.#count({
        text: response.response,
        toolCalls,
        finishReason: toolCalls.length ? "tool_calls" : finishReasonOf(response.metadata.stopReason),
        promptTokens: prepared.promptTokens,
        cachedTokens: reusedTokens,
        completionTokens,
        aborted,
      });
    } catch (error) {
      if (error instanceof SyntaxError) {
        throw new TabAgentError("internal", "The model's tool call was not valid JSON", {}, { cause: error });
      }
      throw error;
    } finally {
      chat.dispose({ disposeSequence: false });
      await this.#release(sequence, prepared.tokens);
    }
  }

  /** Counts and checks a raw completion prompt. */
  prepareCompletion(prompt: string, sampling: SamplingOptions): PreparedCompletion {
    const promptTokens = this.model.tokenize(prompt, false).length + (this.model.tokens.shouldPrependBosToken ? 1 : 0);
    const maxTokens = this.#checkFits(promptTokens, sampling.maxTokens, "prompt");
    return { prompt, promptTokens, maxTokens, sampling };
  }

  /** Continues a raw prompt (no chat template), for `/v1/completions`. */
  generateCompletion(prepared: PreparedCompletion, callbacks: GenerationCallbacks = {}): Promise<GenerationResult> {
    const tokens = this.model.tokenize(prepared.prompt, false);
    return this.#complete(prepared, callbacks, {
      prompt: tokens,
      keep: tokens,
      run: (completion, options) => completion.generateCompletionWithMeta(prepared.prompt, options),
    });
  }

  /**
   * Runs one template-free completion on a sequence holding `how.prompt` (its prefix reused), and
   * keeps `how.keep` for the next prompt.
   */
  #complete(
    prepared: CompletionBudget,
    callbacks: GenerationCallbacks,
    how: CompletionPlan,
  ): Promise<GenerationResult> {
    return this.#exclusive(() => this.#completeOn(prepared, callbacks, how));
  }

  async #completeOn(
    prepared: CompletionBudget,
    callbacks: GenerationCallbacks,
    how: CompletionPlan,
  ): Promise<GenerationResult> {
    const { sequence, reusedTokens } = await this.#acquire(how.prompt);
    const completion = new LlamaCompletion({ contextSequence: sequence });
    const outputBefore = sequence.tokenMeter.usedOutputTokens;
    try {
      const result = await how.run(completion, {
        ...this.#samplingOptions(prepared.sampling),
        maxTokens: prepared.maxTokens,
        signal: callbacks.signal,
        stopOnAbortSignal: true,
        onTextChunk: callbacks.onText,
      });
      return this.#count({
        text: result.response,
        toolCalls: [],
        finishReason: finishReasonOf(result.metadata.stopReason),
        promptTokens: prepared.promptTokens,
        cachedTokens: reusedTokens,
        completionTokens: generatedTokens(sequence, outputBefore, prepared.maxTokens),
        aborted: result.metadata.stopReason === "abort",
      });
    } finally {
      completion.dispose({ disposeSequence: false });
      await this.#release(sequence, how.keep);
    }
  }

  /** True when the model has fill-in-the-middle tokens (Ollama's `insert` capability, `suffix`). */
  get infillSupported(): boolean {
    return this.model.tokens.infill.prefix !== null && this.model.tokens.infill.suffix !== null;
  }

  /** Counts and checks a fill-in-the-middle request: the text before the gap and the text after it. */
  prepareInfill(prefix: string, suffix: string, sampling: SamplingOptions): PreparedInfill {
    if (!this.infillSupported) throw new TabAgentError("bad_request", "This model has no fill-in-the-middle tokens");
    // prefix, suffix and middle markers, plus BOS when the model wants one.
    const promptTokens = this.model.tokenize(prefix, false).length + this.model.tokenize(suffix, false).length + 4;
    const maxTokens = this.#checkFits(promptTokens, sampling.maxTokens, "prompt");
    return { prompt: prefix, suffix, promptTokens, maxTokens, sampling };
  }

  /** Generates the text that fits between `prompt` and `suffix` (Ollama's `/api/generate` with `suffix`). */
  generateInfill(prepared: PreparedInfill, callbacks: GenerationCallbacks = {}): Promise<GenerationResult> {
    return this.#complete(prepared, callbacks, {
      // The markers make the state useless to a later prompt: nothing of it is kept for reuse.
      keep: [],
      run: (completion, options) =>
        completion.generateInfillCompletionWithMeta(prepared.prompt, prepared.suffix, options),
    });
  }

  /** Unit-length embeddings for each text, and the tokens they took. */
  async embed(texts: string[], signal?: AbortSignal): Promise<{ vectors: Float32Array[]; promptTokens: number }> {
    this.#embedding ??= this.model.createEmbeddingContext({
      contextSize: Math.min(this.contextSize, 2048),
      threads: this.#threads,
    });
    const context = await this.#embedding;
    const vectors: Float32Array[] = [];
    let promptTokens = 0;
    for (const text of texts) {
      signal?.throwIfAborted();
      const tokens = this.model.tokenize(text);
      this.#checkFits(tokens.length, undefined, "input");
      promptTokens += tokens.length;
      const { vector } = await context.getEmbeddingFor(tokens);
      const norm = Math.hypot(...vector) || 1;
      vectors.push(Float32Array.from(vector, (v) => v / norm));
    }
    return { vectors, promptTokens };
  }

  /** Frees the context and weights. */
  async close(): Promise<void> {
    if (this.#embedding) await (await this.#embedding).dispose();
    // The context is freed only once no step of the native loop runs on it.
    await this.#exclusive(() => this.context.dispose());
    await this.model.dispose();
  }
}

/**
 * Tokens generated on `sequence` since `before`. The meter can count one token sampled past the
 * budget when generation stops on max tokens (seen with LlamaCompletion), which is never handed
 * out, so usage is capped at the budget.
 */
function generatedTokens(sequence: LlamaContextSequence, before: number, maxTokens: number): number {
  return Math.min(sequence.tokenMeter.usedOutputTokens - before, maxTokens);
}

/**
 * The model's own chat template, rendered by node-llama-cpp's Jinja engine, so that the prompt is
 * exactly what the template renders (as llama-server does): node-llama-cpp's built-in wrappers
 * stand in for templates they recognise, and can differ (SmolLM2's default system message).
 * Messages are neither merged nor trimmed, as the template would not. A model without a template,
 * or with one the engine cannot run, gets node-llama-cpp's best built-in wrapper.
 */
function chooseChatWrapper(model: LlamaModel): { wrapper: ChatWrapper; fallbackReason?: string } {
  const template = model.fileInfo.metadata?.tokenizer?.chat_template;
  if (typeof template === "string" && template.trim()) {
    try {
      return {
        wrapper: new JinjaTemplateChatWrapper({
          template,
          tokenizer: model.tokenizer,
          joinAdjacentMessagesOfTheSameType: false,
          trimLeadingWhitespaceInResponses: false,
        }),
      };
    } catch (error) {
      // The template is the model's, not the user's: serve with the closest built-in wrapper and say why.
      return {
        wrapper: resolveChatWrapper(model, { noJinja: true, warningLogs: false }),
        fallbackReason: `the chat template did not compile: ${(error as Error).message}`,
      };
    }
  }
  return {
    wrapper: resolveChatWrapper(model, { noJinja: true, warningLogs: false }),
    fallbackReason: "the model has no chat template",
  };
}
