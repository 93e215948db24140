/**
 * Where the threads of a single-thread decode run, for the two ways a reply is generated.
 *
 * **Beside** (node-llama-cpp's relay): the event loop and llama.cpp's compute thread share one
 * core. Each token is a relay between two threads: node-llama-cpp queues the evaluation (and then
 * the sampling) as native async work on Deno's blocking pool (threads named `tokio-runtime-w`), and
 * the event loop waits for it, then runs the per-token JS work, and queues the next. Only one of
 * them runs at a time. Left to itself, Linux wakes each on the other, idle, core, so every hand-off
 * is a cross-core wake-up (an inter-processor interrupt, which a VM pays as an exit) and an idle
 * exit: `perf` put about 5% of the server's main-thread samples in `try_to_wake_up`, two wake-ups a
 * token, most of them across cores. On one core a hand-off is a plain switch. In the chat bench on
 * the 2-core VM (the generated tiny model, 1 thread, 256 tokens, other work running) the server's
 * decode rate over the direct baseline's read 1.01-1.44 co-located against 0.89-0.94 (once 1.12)
 * without, and its main thread used less CPU per reply than the baseline's instead of more.
 *
 * **Apart** (the binding's own decode loop, decode_loop.ts): the compute thread never waits for
 * JS, so the two run at once and want cores of their own. The event loop stays on its core and the
 * blocking pool, where the loop runs, gets every other core it may use. Left to Linux, they met on
 * one core now and then; with the tests' tiny model, whose weights fit in a core's L2 cache, a
 * reply that shares its core with JS runs at ~6,000 tokens/s instead of ~10,000 (the direct
 * baseline held to one core by `taskset`: most of its replies). On the 2-core VM placed apart, 4
 * clients streamed 10.6-11.3k tokens/s against 7.3-10.3k, and a reply's rate over the direct
 * baseline's read 1.04-1.09 against 0.96-1.00 (four chat-bench runs each, alternating).
 *
 * The decision is the process's, not a model's: a CPU mask belongs to a thread, so every placement
 * registers here, and the threads are placed while some placement generates and every generating
 * one runs on one thread, all of them the same way (beside or apart), and, apart, while every decode
 * loop that generates has a core of its own among the others (two models' loops on a 2-core machine
 * are left to Linux); otherwise they keep their own masks.
 *
 * Only while a model generates, and only when its batches run on one thread: two or more compute
 * threads must have cores of their own. The core is the one the event loop is on when the first
 * generation starts (the scheduler just chose it). Threads keep their own masks otherwise, and get
 * them back when the last generation ends; a thread started meanwhile by a placed one (it inherits
 * the mask) gets the event loop's. Linux only, with FFI allowed; elsewhere nothing changes.
 * @module
 */

/** Bytes of the CPU mask passed to the kernel (1,024 CPUs, glibc's `cpu_set_t`). */
const CPU_MASK_BYTES = 128;
/** Name prefix of Deno's blocking-pool threads, where native async work (each llama.cpp evaluation) runs. */
const BLOCKING_POOL_THREAD = "tokio-runtime-w";

const LIBC_SYMBOLS = {
  sched_getcpu: { parameters: [], result: "i32" },
  sched_getaffinity: { parameters: ["i32", "usize", "buffer"], result: "i32" },
  sched_setaffinity: { parameters: ["i32", "usize", "buffer"], result: "i32" },
} as const;

type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>;

/**
 * libc for the affinity calls, opened at the first pin and kept: libc is mapped for the process's
 * life anyway, and opening it per generation (Deno builds the symbols' bindings) took ~1.2 ms of the
 * time to first token.
 */
let libcOnce: Libc | null | undefined;

/** Opens libc for the affinity calls; null where that cannot be done (not Linux, no FFI permission, no glibc). */
function openLibc(): Libc | null {
  return libcOnce ??= openLibcNow();
}

function openLibcNow(): Libc | null {
  if (Deno.build.os !== "linux") return null;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  try {
    return Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  } catch (error) {
    if (error instanceof Error) return null; // musl or no libc to open: decode runs where Linux puts it
    throw error;
  }
}

/** The blocking pool's threads (where each evaluation, or the decode loop, runs). */
function blockingPoolThreads(): number[] {
  const tids: number[] = [];
  for (const entry of Deno.readDirSync("/proc/self/task")) {
    const tid = Number(entry.name);
    if (tid !== Deno.pid && threadName(tid)?.startsWith(BLOCKING_POOL_THREAD)) tids.push(tid);
  }
  return tids;
}

/** Every thread of this process. */
function allThreads(): number[] {
  return [...Deno.readDirSync("/proc/self/task")].map((entry) => Number(entry.name));
}

/** A thread's name, or undefined when it has ended. */
function threadName(tid: number): string | undefined {
  try {
    return Deno.readTextFileSync(`/proc/self/task/${tid}/comm`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

function sameMask(a: Uint8Array, b: Uint8Array): boolean {
  return a.every((byte, i) => byte === b[i]);
}

/** How the threads of a single-thread decode are placed (see the module note). */
export type PlacementKind = "beside" | "apart";

/**
 * The process's pin while one holds: its kind, the masks given (every placed thread's is one of
 * them), each placed thread's own mask, and the event loop's.
 */
interface Pin {
  kind: PlacementKind;
  /** Decode loops generating when it was made (apart: each has a core among the others). */
  loops: number;
  libc: Libc;
  masks: Uint8Array[];
  saved: Map<number, Uint8Array>;
  fallback: Uint8Array;
}

/**
 * Every placement in this process. A CPU mask belongs to a thread, not to a model, so the
 * placements decide together (tests run several servers' orchestrators in one process): the relay
 * is pinned while some placement generates and every generating one runs on one thread.
 */
const placements = new Set<DecodePlacement>();
let pin: Pin | undefined;

/** `tid`'s CPU mask, or null when the thread has ended. */
function maskOf(libc: Libc, tid: number): Uint8Array | null {
  const mask = new Uint8Array(CPU_MASK_BYTES);
  return libc.symbols.sched_getaffinity(tid, BigInt(CPU_MASK_BYTES), mask) === 0 ? mask : null;
}

/** How many CPUs a mask holds. */
function cpuCount(mask: Uint8Array): number {
  let count = 0;
  for (let byte of mask) {
    for (; byte; byte &= byte - 1) count++;
  }
  return count;
}

/**
 * Places the event loop and the blocking pool: on the event loop's core together (`beside`), or the
 * pool on every other core the event loop may use (`apart`), when there are at least `loops` of
 * them; undefined where that cannot be done (no libc, or too few other cores).
 */
function pinThreads(kind: PlacementKind, loops: number): Pin | undefined {
  const libc = openLibc();
  if (!libc) return undefined;
  const cpu = libc.symbols.sched_getcpu();
  const fallback = maskOf(libc, Deno.pid);
  if (cpu < 0 || cpu >= CPU_MASK_BYTES * 8 || !fallback) return undefined;
  const own = new Uint8Array(CPU_MASK_BYTES);
  own[cpu >> 3] = 1 << (cpu & 7);
  const others = fallback.map((byte, i) => byte & ~own[i]);
  if (kind === "apart" && cpuCount(others) < loops) return undefined;
  const poolMask = kind === "beside" ? own : others;
  const saved = new Map<number, Uint8Array>();
  const place = (tid: number, mask: Uint8Array) => {
    const before = maskOf(libc, tid);
    // A thread that ended meanwhile, or one the kernel will not move, is left out.
    if (before && libc.symbols.sched_setaffinity(tid, BigInt(CPU_MASK_BYTES), mask) === 0) saved.set(tid, before);
  };
  place(Deno.pid, own);
  for (const tid of blockingPoolThreads()) place(tid, poolMask);
  return { kind, loops, libc, masks: [own, poolMask], saved, fallback };
}

/** Gives the placed threads their own masks back, and threads started meanwhile the event loop's. */
function unpinThreads({ libc, masks, saved, fallback }: Pin): void {
  for (const tid of allThreads()) {
    const own = saved.get(tid);
    if (own) {
      libc.symbols.sched_setaffinity(tid, BigInt(CPU_MASK_BYTES), own);
      continue;
    }
    // Started by a placed thread while placed: it inherited the placement, not a choice of its own.
    const now = maskOf(libc, tid);
    if (now && masks.some((mask) => sameMask(now, mask))) {
      libc.symbols.sched_setaffinity(tid, BigInt(CPU_MASK_BYTES), fallback);
    }
  }
}

/** Places or unplaces the threads for what every placement in the process says now. */
function applyPlacements(): void {
  let wanted: PlacementKind | undefined;
  let agreed = true;
  const loops = new Set<object>();
  for (const placement of placements) {
    if (!placement.generating) continue;
    if (placement.threads() !== 1) agreed = false;
    for (const [source, kind] of placement.generatingSources()) {
      if (wanted !== undefined && wanted !== kind) agreed = false;
      wanted = kind;
      loops.add(source);
    }
  }
  if (!agreed) wanted = undefined;
  // Apart, each decode loop computes on a thread of its own: a loop that joins needs another core.
  if (pin && (pin.kind !== wanted || (wanted === "apart" && pin.loops !== loops.size))) {
    const held = pin;
    pin = undefined;
    unpinThreads(held);
  }
  if (wanted && !pin) pin = pinThreads(wanted, loops.size);
}

/**
 * Places the event loop and llama.cpp's compute thread while a single-thread decode runs: beside
 * each other for node-llama-cpp's relay, apart for the decode loop (see the module note).
 *
 * @example
 * ```ts
 * using placement = new DecodePlacement(() => llama.maxThreads);
 * const leave = placement.enter("apart"); // a reply starts generating in the decode loop
 * try { await generate(); } finally { leave(); }
 * ```
 */
export class DecodePlacement implements Disposable {
  /** How many threads llama.cpp's next batch runs on. */
  readonly threads: () => number;
  /** What generates (a model: its decode loop's replies share one thread), and its replies by placement. */
  readonly #generating = new Map<object, Map<PlacementKind, number>>();

  /** `threads` says how many threads llama.cpp's next batch runs on. */
  constructor(threads: () => number) {
    this.threads = threads;
    placements.add(this);
  }

  /** Whether this placement has a generation running. */
  get generating(): boolean {
    return this.#generating.size > 0;
  }

  /** What generates now, and how it wants the threads placed (a source with replies of both kinds, twice). */
  *generatingSources(): Iterable<[object, PlacementKind]> {
    for (const [source, kinds] of this.#generating) {
      for (const kind of kinds.keys()) yield [source, kind];
    }
  }

  /** Whether the threads are placed now (for any placement in the process), and how. */
  get pinned(): PlacementKind | undefined {
    return pin?.kind;
  }

  /**
   * A reply of `source` starts generating, placed `kind`; call the returned function (once) when
   * it ends. The decode-loop replies of one source share its compute thread (one loop per model).
   */
  enter(kind: PlacementKind = "beside", source: object = this): () => void {
    const kinds = this.#generating.get(source) ?? new Map<PlacementKind, number>();
    this.#generating.set(source, kinds.set(kind, (kinds.get(kind) ?? 0) + 1));
    applyPlacements();
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const replies = kinds.get(kind)! - 1;
      if (replies) kinds.set(kind, replies);
      else kinds.delete(kind);
      if (!kinds.size) this.#generating.delete(source);
      applyPlacements();
    };
  }

  /** Places or unplaces for the current state: call it when llama.cpp's thread count changes. */
  update(): void {
    applyPlacements();
  }

  /** Stops counting this placement's generations; the threads get their masks back if no other one holds them. */
  [Symbol.dispose](): void {
    this.#generating.clear();
    placements.delete(this);
    applyPlacements();
  }
}
