/**
 * Where the threads of a single-thread decode run: the event loop and llama.cpp's compute thread
 * share one core while a reply generates on one llama.cpp thread.
 *
 * Each token is a relay between two threads: node-llama-cpp queues the evaluation (and then the
 * sampling) as native async work on Deno's blocking pool (threads named `tokio-runtime-w`), and the
 * event loop waits for it, then runs the per-token JS work, and queues the next. Only one of them
 * runs at a time. Left to itself, Linux wakes each on the other, idle, core, so every hand-off is a
 * cross-core wake-up (an inter-processor interrupt, which a VM pays as an exit) and an idle exit:
 * `perf` put about 5% of the server's main-thread samples in `try_to_wake_up`, two wake-ups a token,
 * most of them across cores. On one core a hand-off is a plain switch. In the chat bench on the
 * 2-core VM (the generated tiny model, 1 thread, 256 tokens, other work running) the server's
 * decode rate over the direct baseline's read 1.01-1.44 co-located against 0.89-0.94 (once 1.12)
 * without, and its main thread used less CPU per reply than the baseline's instead of more.
 *
 * The decision is the process's, not a model's: a CPU mask belongs to a thread, so every placement
 * registers here, and the relay is pinned while some placement generates and every generating one
 * runs on one thread.
 *
 * Only while a model generates, and only when its batches run on one thread: two or more compute
 * threads must have cores of their own. The core is the one the event loop is on when the first
 * generation starts (the scheduler just chose it). Threads keep their own masks otherwise, and get
 * them back when the last generation ends; a thread started meanwhile by a pinned one (it inherits
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

/** The event loop's thread and the blocking pool's (the threads a decode hands its tokens between). */
function relayThreads(): number[] {
  const tids: number[] = [];
  for (const entry of Deno.readDirSync("/proc/self/task")) {
    const tid = Number(entry.name);
    if (tid === Deno.pid) tids.push(tid);
    else if (threadName(tid)?.startsWith(BLOCKING_POOL_THREAD)) tids.push(tid);
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

/** The process's pin while one holds: the mask, each pinned thread's own mask, and the event loop's. */
interface Pin {
  libc: Libc;
  mask: Uint8Array;
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

/** Pins the relay threads to the event loop's core; undefined where that cannot be done. */
function pinRelay(): Pin | undefined {
  const libc = openLibc();
  if (!libc) return undefined;
  const cpu = libc.symbols.sched_getcpu();
  const fallback = maskOf(libc, Deno.pid);
  if (cpu < 0 || cpu >= CPU_MASK_BYTES * 8 || !fallback) return undefined;
  const mask = new Uint8Array(CPU_MASK_BYTES);
  mask[cpu >> 3] = 1 << (cpu & 7);
  const saved = new Map<number, Uint8Array>();
  for (const tid of relayThreads()) {
    const own = maskOf(libc, tid);
    // A thread that ended meanwhile, or one the kernel will not move, is left out.
    if (own && libc.symbols.sched_setaffinity(tid, BigInt(CPU_MASK_BYTES), mask) === 0) saved.set(tid, own);
  }
  return { libc, mask, saved, fallback };
}

/** Gives the pinned threads their own masks back, and threads started meanwhile the event loop's. */
function unpinRelay({ libc, mask, saved, fallback }: Pin): void {
  for (const tid of allThreads()) {
    const own = saved.get(tid);
    if (own) {
      libc.symbols.sched_setaffinity(tid, BigInt(CPU_MASK_BYTES), own);
      continue;
    }
    // Started by a pinned thread while pinned: it inherited the pin, not a choice of its own.
    const now = maskOf(libc, tid);
    if (now && sameMask(now, mask)) libc.symbols.sched_setaffinity(tid, BigInt(CPU_MASK_BYTES), fallback);
  }
}

/** Pins or unpins for what every placement in the process says now. */
function applyPlacements(): void {
  let generating = false;
  let lone = true;
  for (const placement of placements) {
    if (!placement.generating) continue;
    generating = true;
    if (placement.threads() !== 1) lone = false;
  }
  const wanted = generating && lone;
  if (wanted && !pin) pin = pinRelay();
  else if (!wanted && pin) {
    const held = pin;
    pin = undefined;
    unpinRelay(held);
  }
}

/**
 * Co-locates the event loop and llama.cpp's compute thread while a single-thread decode runs (see
 * the module note).
 *
 * @example
 * ```ts
 * using placement = new DecodePlacement(() => llama.maxThreads);
 * const leave = placement.enter(); // a reply starts generating
 * try { await generate(); } finally { leave(); }
 * ```
 */
export class DecodePlacement implements Disposable {
  /** How many threads llama.cpp's next batch runs on. */
  readonly threads: () => number;
  #generating = 0;

  /** `threads` says how many threads llama.cpp's next batch runs on. */
  constructor(threads: () => number) {
    this.threads = threads;
    placements.add(this);
  }

  /** Whether this placement has a generation running. */
  get generating(): boolean {
    return this.#generating > 0;
  }

  /** Whether the relay threads are on one core now (for any placement in the process). */
  get pinned(): boolean {
    return pin !== undefined;
  }

  /** A generation starts; call the returned function (once) when it ends. */
  enter(): () => void {
    this.#generating++;
    applyPlacements();
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#generating--;
      applyPlacements();
    };
  }

  /** Pins or unpins for the current state: call it when llama.cpp's thread count changes. */
  update(): void {
    applyPlacements();
  }

  /** Stops counting this placement's generations; the threads get their masks back if no other one holds them. */
  [Symbol.dispose](): void {
    this.#generating = 0;
    placements.delete(this);
    applyPlacements();
  }
}
