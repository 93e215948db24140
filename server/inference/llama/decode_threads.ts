/**
 * How many threads a decode step (one new token per generating sequence) gets, learned from the
 * steps themselves. Prompt batches want every core the thread policy allows, but a decode step of
 * a small model does not: measured on the 2-core VM with SmolLM2-135M through node-llama-cpp, one
 * thread decoded 70 tok/s and two threads 52 (the JS side's per-token work then has no core of its
 * own, and llama.cpp's workers wait on each other), while the prompt took 255 ms on two threads
 * against 490 ms on one. A large model is the other way round (decode is bound by memory bandwidth
 * and gains from threads), and so is the local build setup makes: with its persistent thread pool,
 * on the same machine and quiet, 2 threads decode at about 90 tok/s against 65 on 1 (the
 * prebuilt's loss came from starting and joining its threads at every token; under other work, 2
 * spinning threads fall to 5–25 tok/s, and the thread policy's cap of 1 decides). That build's lone
 * steps are not tuned at all (the orchestrator asks only for the prebuilt binding's): in the server
 * the tuner timed 1 thread faster there and decoded at 63–66. For the prebuilt, nothing here is
 * fixed: the tuner times consecutive decode steps at the policy's count and at half of it, keeps
 * the faster, and keeps checking the other now and then.
 * Thread counts do not change results: llama.cpp splits a matrix product by rows, whatever the count.
 */

/** Steps timed per candidate before choosing. */
export const DECODE_PROBE_STEPS = 8;
/** After choosing, one step in this many runs on the other candidate, so a change is noticed. */
export const DECODE_RECHECK_EVERY = 64;
/** A gap longer than this between two steps is a pause (a request ended), not a step's cost. */
const MAX_STEP_MS = 1_000;
/** Weight of a new sample in a candidate's moving average. */
const SMOOTHING = 0.2;

interface Candidate {
  threads: number;
  samples: number;
  averageMs: number;
}

/**
 * Chooses the thread count of each batch: the cap for a batch that evaluates a prompt or decodes
 * several sequences together, the faster of the cap and half of it for a lone decode step.
 *
 * @example
 * ```ts
 * const tuner = new DecodeThreadTuner();
 * llama.maxThreads = tuner.threadsFor({ tokens: 1, sequences: 1 }, 2);
 * ```
 */
export class DecodeThreadTuner {
  readonly #now: () => number;
  /** Candidates per cap (the thread policy's count can change with the machine's load). */
  readonly #candidates = new Map<number, Candidate[]>();
  #last?: { cap: number; candidate: Candidate; at: number };
  #steps = 0;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** The thread count for a batch of `tokens` tokens from `sequences` sequences, under `cap`. */
  threadsFor(batch: { tokens: number; sequences: number }, cap: number): number {
    const at = this.#now();
    const last = this.#last;
    this.#last = undefined;
    // Only a lone decode step is tuned. A step of several sequences decoded together came out
    // differently on one thread and on two (prompt_cache_test's batched replies changed), so those
    // keep the cap, like prompts; a lone step's result does not depend on the count.
    const lone = batch.tokens === 1 && batch.sequences === 1;
    if (!lone || cap <= 1) return cap;
    // The time since the previous step of the same shape is what that step cost, JS side included.
    if (last && last.cap === cap && at - last.at <= MAX_STEP_MS) {
      const c = last.candidate;
      c.averageMs = c.samples === 0 ? at - last.at : c.averageMs + SMOOTHING * (at - last.at - c.averageMs);
      c.samples++;
    }
    const candidate = this.#choose(cap);
    this.#last = { cap, candidate, at };
    return candidate.threads;
  }

  /** The decode thread count chosen so far under `cap` (shown in /v1/health). */
  chosen(cap: number): number | undefined {
    const list = this.#candidates.get(cap);
    if (!list || list.some((c) => c.samples < DECODE_PROBE_STEPS)) return undefined;
    return fastest(list).threads;
  }

  #choose(cap: number): Candidate {
    let list = this.#candidates.get(cap);
    if (!list) {
      list = [{ threads: cap, samples: 0, averageMs: 0 }, { threads: Math.ceil(cap / 2), samples: 0, averageMs: 0 }];
      this.#candidates.set(cap, list);
    }
    // Probe in runs, so that consecutive steps share a count and time each other.
    const probing = list.find((c) => c.samples < DECODE_PROBE_STEPS);
    if (probing) return probing;
    const best = fastest(list);
    this.#steps++;
    if (this.#steps % DECODE_RECHECK_EVERY === 0) return list.find((c) => c !== best)!;
    return best;
  }
}

function fastest(list: Candidate[]): Candidate {
  return list.reduce((a, b) => (b.averageMs < a.averageMs ? b : a));
}
