/** Typed multi-stage pipelines: each stage's output is the next one's input; a failure names its stage. */
import { TabAgentError, toTabAgentError } from "../../errors/mod.ts";

/** What every stage gets besides its input. */
export interface StageContext {
  signal?: AbortSignal;
}

/** One step: pre-processing, a model call or post-processing. */
export interface Stage<I, O> {
  readonly name: string;
  run(input: I, context: StageContext): Promise<O> | O;
}

/** Makes a stage from a function. */
export function stage<I, O>(name: string, run: (input: I, context: StageContext) => Promise<O> | O): Stage<I, O> {
  return { name, run };
}

/**
 * A chain of stages. Errors carry `stage` in their problem document; a cancelled signal stops the
 * chain between stages.
 *
 * @example
 * ```ts
 * const p = Pipeline.start(stage("trim", (s: string) => s.trim())).then(stage("length", (s: string) => s.length));
 * await p.run("  hi "); // 2
 * ```
 */
export class Pipeline<I, O> {
  readonly #stages: Stage<unknown, unknown>[];

  private constructor(stages: Stage<unknown, unknown>[]) {
    this.#stages = stages;
  }

  /** A pipeline of one stage. */
  static start<I, O>(first: Stage<I, O>): Pipeline<I, O> {
    return new Pipeline<I, O>([first as Stage<unknown, unknown>]);
  }

  /** Appends a stage. */
  then<N>(next: Stage<O, N>): Pipeline<I, N> {
    return new Pipeline<I, N>([...this.#stages, next as Stage<unknown, unknown>]);
  }

  /** Stage names in order. */
  get stages(): string[] {
    return this.#stages.map((s) => s.name);
  }

  /** Runs every stage in order. */
  async run(input: I, context: StageContext = {}): Promise<O> {
    let value: unknown = input;
    for (const current of this.#stages) {
      if (context.signal?.aborted) {
        throw new TabAgentError("cancelled", `Cancelled before stage '${current.name}'`, { stage: current.name });
      }
      try {
        value = await current.run(value, context);
      } catch (error) {
        const typed = toTabAgentError(error);
        if (typed.extensions.stage) throw typed;
        throw new TabAgentError(typed.code, typed.message, { ...typed.extensions, stage: current.name }, {
          cause: typed.cause ?? error,
        });
      }
    }
    return value as O;
  }
}
