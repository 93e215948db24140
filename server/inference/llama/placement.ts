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
 * 2-core VM (SmolLM2-sized tiny model, 1 thread, 256 tokens) the server decoded at 4,607 tok/s
 * co-located against 3,190 to 3,560 without, and its main thread used less CPU per reply.
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

/** Opens libc for the affinity calls; null where that cannot be done (not Linux, no FFI permission, no glibc). */
function openLibc(): Libc | null {
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
  readonly #threads: () => number;
  #libc: Libc | null | undefined;
  #generating = 0;
  /** The pinned mask and each pinned thread's own mask, while pinned. */
  #pinned?: { mask: Uint8Array; saved: Map<number, Uint8Array>; fallback: Uint8Array };

  /** `threads` says how many threads llama.cpp's next batch runs on. */
  constructor(threads: () => number) {
    this.#threads = threads;
  }

  /** Whether the relay threads are on one core now. */
  get pinned(): boolean {
    return this.#pinned !== undefined;
  }

  /** A generation starts; call the returned function (once) when it ends. */
  enter(): () => void {
    this.#generating++;
    this.update();
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#generating--;
      this.update();
    };
  }

  /** Pins or unpins for the current state: call it when llama.cpp's thread count changes. */
  update(): void {
    const wanted = this.#generating > 0 && this.#threads() === 1;
    if (wanted && !this.#pinned) this.#pin();
    else if (!wanted && this.#pinned) this.#unpin();
  }

  #pin(): void {
    const libc = this.#libc ??= openLibc();
    if (!libc) return;
    const cpu = libc.symbols.sched_getcpu();
    if (cpu < 0 || cpu >= CPU_MASK_BYTES * 8) return;
    const mask = new Uint8Array(CPU_MASK_BYTES);
    mask[cpu >> 3] = 1 << (cpu & 7);
    const saved = new Map<number, Uint8Array>();
    const fallback = this.#mask(libc, Deno.pid);
    if (!fallback) return;
    for (const tid of relayThreads()) {
      const own = this.#mask(libc, tid);
      // A thread that ended meanwhile, or one the kernel will not move, is left out.
      if (own && libc.symbols.sched_setaffinity(tid, BigInt(CPU_MASK_BYTES), mask) === 0) saved.set(tid, own);
    }
    this.#pinned = { mask, saved, fallback };
  }

  #unpin(): void {
    const { mask, saved, fallback } = this.#pinned!;
    this.#pinned = undefined;
    const libc = this.#libc!;
    for (const tid of allThreads()) {
      const own = saved.get(tid);
      if (own) {
        libc.symbols.sched_setaffinity(tid, BigInt(CPU_MASK_BYTES), own);
        continue;
      }
      // Started by a pinned thread while pinned: it inherited the pin, not a choice of its own.
      const now = this.#mask(libc, tid);
      if (now && sameMask(now, mask)) libc.symbols.sched_setaffinity(tid, BigInt(CPU_MASK_BYTES), fallback);
    }
  }

  /** `tid`'s CPU mask, or null when the thread has ended. */
  #mask(libc: Libc, tid: number): Uint8Array | null {
    const mask = new Uint8Array(CPU_MASK_BYTES);
    return libc.symbols.sched_getaffinity(tid, BigInt(CPU_MASK_BYTES), mask) === 0 ? mask : null;
  }

  /** Gives every pinned thread its mask back and closes libc. */
  [Symbol.dispose](): void {
    if (this.#pinned) this.#unpin();
    this.#generating = 0;
    this.#libc?.close();
    this.#libc = undefined;
  }
}
