/**
 * Lowers the scheduling priority of the calling worker thread, so background work (searches,
 * checkpoints) yields the CPU to the server's event loop when cores are scarce: on two cores, a
 * search worker at equal priority kept `/v1/health` waiting several milliseconds at the 99th
 * percentile. The step is relative to the main thread's own priority: a server started under
 * `nice -n 10` (as CI and shared machines run it) would otherwise leave its workers level with its
 * event loop. Linux only (a thread is addressed by its id there); elsewhere it does nothing.
 *
 * A lower weight is not enough on Linux 6.6 and later (EEVDF): a thread that has the CPU keeps it
 * for its time slice even when a heavier one wakes ("run to parity"), so the event loop, woken by
 * a health probe, waited up to 1.5-4.5 ms while a search worker finished its slice (traced with
 * `perf sched`). Since 6.12 a waking thread whose slice is shorter than the running one's may
 * preempt it at once, so background threads also take a long slice of their own
 * ({@link BACKGROUND_THREAD_SLICE_NS}): every other thread, with the default slice, then preempts
 * them as soon as it wakes. Their share of the CPU is still set by their weight alone. Older
 * kernels ignore the setting.
 *
 * Neither stops the kernel from *choosing* a background thread over the event loop: EEVDF picks
 * only among "eligible" threads, and the event loop, having just run, is briefly not eligible (its
 * lag is a hair below zero) when a waking thread preempts it and then sleeps again. The search
 * worker is then picked, and nothing picks again until the next scheduler tick (4 ms at HZ=250):
 * `perf sched` under eight searching clients showed the event loop runnable for 2-3.5 ms behind the
 * worker that way, the largest single share of the slowest health probes' time. So a search worker
 * gives up its CPU after each search ({@link yieldThread}): by then the event loop is eligible
 * again, and a wait behind the worker lasts one search (~0.5 ms) at most.
 */
import { getPriority, setPriority } from "node:os";

/** How many nice steps the memory's background worker threads run below the main thread (19 is the floor). */
export const BACKGROUND_THREAD_NICE = 10;
/** The lowest priority Linux has. */
const LOWEST_NICE = 19;
/**
 * The time slice background threads ask for (ns): longer than any default slice (0.75 ms times
 * 1 + log2 of the CPUs, at most 3 ms), so that any other thread that wakes preempts them.
 */
export const BACKGROUND_THREAD_SLICE_NS = 10_000_000;

/** `sched_setattr` and `sched_getattr` by architecture (Linux has no libc wrapper for them). */
const SCHED_ATTR_SYSCALLS: Partial<Record<typeof Deno.build.arch, { set: bigint; get: bigint }>> = {
  x86_64: { set: 314n, get: 315n },
  aarch64: { set: 274n, get: 275n },
};
/** `struct sched_attr` as Linux 4.13+ reads it (SCHED_ATTR_SIZE_VER1). */
const SCHED_ATTR_SIZE = 56;
/** Offsets in `struct sched_attr`. */
const ATTR = { size: 0, policy: 4, flags: 8, runtime: 24 } as const;
const SCHED_OTHER = 0;

/** The nice value background threads get when the main thread runs at `mainNice`. */
export function backgroundNice(mainNice: number): number {
  return Math.min(LOWEST_NICE, mainNice + BACKGROUND_THREAD_NICE);
}

/** Lowers this worker thread's priority {@link BACKGROUND_THREAD_NICE} steps below the main thread's; false where it cannot. */
export function lowerThreadPriority(): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    // "<pid>/task/<tid>": on Linux, setpriority(PRIO_PROCESS, tid) changes that thread only.
    const tid = Number(Deno.readLinkSync("/proc/thread-self").split("/").pop());
    if (!Number.isSafeInteger(tid) || tid === Deno.pid) return false; // never renice the main thread
    // A thread already at or below that priority is left as it is.
    const nice = backgroundNice(getPriority(Deno.pid));
    if (getPriority(tid) < nice) setPriority(tid, nice);
    setThreadSlice(BACKGROUND_THREAD_SLICE_NS);
    return true;
  } catch (error) {
    // No /proc (a sandbox) or no permission: background work simply keeps normal priority.
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) return false;
    if (error instanceof Error && /EACCES|EPERM|ESRCH/.test(error.message)) return false;
    throw error;
  }
}

/** libc's `sched_yield`, opened on the first {@link yieldThread} of a thread; null where unavailable. */
let schedYield: (() => number) | null | undefined;

/**
 * Lets the kernel run whichever other thread is due on this CPU now, before this thread goes on
 * (`sched_yield`; a no-op costing a microsecond when none is waiting). Background workers call it
 * between two units of work; see the module doc for why the event loop needs it. False where it
 * cannot (not Linux, no FFI permission, no glibc).
 *
 * @example
 * ```ts
 * for (const job of jobs) {
 *   run(job);
 *   yieldThread(); // the event loop, if it waits for this CPU, runs now rather than at the next tick
 * }
 * ```
 */
export function yieldThread(): boolean {
  if (schedYield === undefined) schedYield = openSchedYield();
  if (schedYield === null) return false;
  schedYield();
  return true;
}

function openSchedYield(): (() => number) | null {
  if (Deno.build.os !== "linux" || Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  try {
    // Kept open for the thread's life: a call per search must not reopen libc.
    const libc = Deno.dlopen("libc.so.6", { sched_yield: { parameters: [], result: "i32" } });
    return () => libc.symbols.sched_yield();
  } catch (error) {
    if (error instanceof Error) return null; // not glibc (musl): the worker just runs on
    throw error;
  }
}

/** libc's `syscall` with the arguments the sched_attr calls take. */
type Syscall = (...args: [bigint, bigint, Uint8Array, bigint, bigint]) => bigint;

/** Calls `fn` with libc's `syscall`; null where FFI is not allowed or there is no such libc. */
function withSyscall<T>(fn: (syscall: Syscall) => T): T | null {
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  let libc;
  try {
    libc = Deno.dlopen("libc.so.6", { syscall: { parameters: ["i64", "i64", "buffer", "u64", "u64"], result: "i64" } });
  } catch (error) {
    if (error instanceof Error) return null; // not glibc (musl) or no libc to open: the slice stays the default
    throw error;
  }
  try {
    return fn((...args) => libc.symbols.syscall(...args) as bigint);
  } finally {
    libc.close();
  }
}

/** The calling thread's `struct sched_attr` (`sched_getattr`), or null when the kernel refuses. */
function readSchedAttr(syscall: Syscall, get: bigint): DataView<ArrayBuffer> | null {
  const attr = new Uint8Array(SCHED_ATTR_SIZE);
  return syscall(get, 0n, attr, BigInt(SCHED_ATTR_SIZE), 0n) === 0n ? new DataView(attr.buffer) : null;
}

/**
 * The calling thread's time slice (ns) as the kernel reports it (`sched_getattr`), or null where it
 * cannot tell (not Linux on x86-64 or arm64, no FFI permission, a kernel before 4.13).
 */
export function threadSliceNs(): number | null {
  const calls = Deno.build.os === "linux" ? SCHED_ATTR_SYSCALLS[Deno.build.arch] : undefined;
  if (!calls) return null;
  return withSyscall((syscall) => {
    const attr = readSchedAttr(syscall, calls.get);
    return attr && Number(attr.getBigUint64(ATTR.runtime, true));
  });
}

/**
 * Asks for a time slice of `ns` for the calling thread (Linux 6.12+ honours it for normal threads;
 * earlier kernels accept and ignore it). Its policy and nice value are kept. False where it cannot.
 */
function setThreadSlice(ns: number): boolean {
  const calls = SCHED_ATTR_SYSCALLS[Deno.build.arch];
  if (!calls) return false;
  return withSyscall((syscall) => {
    const view = readSchedAttr(syscall, calls.get);
    if (!view || view.getUint32(ATTR.policy, true) !== SCHED_OTHER) return false; // real-time or idle: left alone
    view.setUint32(ATTR.size, SCHED_ATTR_SIZE, true);
    view.setBigUint64(ATTR.flags, 0n, true);
    view.setBigUint64(ATTR.runtime, BigInt(ns), true);
    // The nice value read above goes back unchanged (sched_setattr sets it too).
    return syscall(calls.set, 0n, new Uint8Array(view.buffer), 0n, 0n) === 0n;
  }) ?? false;
}
