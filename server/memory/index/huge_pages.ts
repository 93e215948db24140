/**
 * Backs a vector index's memory with 2 MB pages (Linux). An HNSW search reads a few thousand
 * vectors scattered over the whole index (77 MB at 100,000 × 384 bf16), so with 4 KB pages nearly
 * every read also misses the TLB, and in a virtual machine each miss walks two page tables. usearch
 * maps its arenas itself and this machine's THP setting is `madvise`, so they get 4 KB pages unless
 * asked: after an index is loaded or built, the 2 MB-aligned stretches of anonymous memory that
 * appeared meanwhile and are wholly in use are collapsed into huge pages (`MADV_COLLAPSE`, Linux
 * 6.1+), which adds no memory. Elsewhere, or without FFI permission, nothing happens.
 */

/** One anonymous private read-write mapping of this process: [start, end) addresses. */
export interface Mapping {
  start: bigint;
  end: bigint;
}

const HUGE_PAGE = 2n << 20n;
const PAGE = 4096;
const MADV_COLLAPSE = 25;

/** The process's anonymous private read-write mappings (`/proc/self/maps`); empty where there is none. */
export function anonymousMappings(): Mapping[] {
  if (Deno.build.os !== "linux") return [];
  let text: string;
  try {
    text = Deno.readTextFileSync("/proc/self/maps");
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) return [];
    throw error;
  }
  const mappings: Mapping[] = [];
  for (const line of text.split("\n")) {
    // "start-end perms offset dev inode [path]": anonymous ones have inode 0 and no path
    const [range, perms, , , inode, path] = line.split(/\s+/);
    if (!range || inode !== "0" || path || !perms?.startsWith("rw") || perms[3] !== "p") continue;
    const dash = range.indexOf("-");
    mappings.push({ start: BigInt(`0x${range.slice(0, dash)}`), end: BigInt(`0x${range.slice(dash + 1)}`) });
  }
  return mappings;
}

/** The 2 MB-aligned huge-page stretches inside `mappings` that no mapping of `before` held. */
export function newHugePageStretches(before: Mapping[], after: Mapping[]): bigint[] {
  const held = (at: bigint) => before.some((m) => m.start <= at && at + HUGE_PAGE <= m.end);
  const stretches: bigint[] = [];
  for (const { start, end } of after) {
    for (let at = (start + HUGE_PAGE - 1n) & ~(HUGE_PAGE - 1n); at + HUGE_PAGE <= end; at += HUGE_PAGE) {
      if (!held(at)) stretches.push(at);
    }
  }
  return stretches;
}

/**
 * Collapses into 2 MB pages the stretches of anonymous memory that appeared since `before` (from
 * {@link anonymousMappings}) and are wholly resident, so no memory is added; returns the bytes now
 * on huge pages, or null where this cannot be done (not Linux, no FFI permission, no libc).
 *
 * @example
 * ```ts
 * const before = anonymousMappings();
 * const index = await VectorIndex.open(options);
 * collapseNewMemory(before);
 * ```
 */
export function collapseNewMemory(before: Mapping[]): number | null {
  if (Deno.build.os !== "linux" || Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  const stretches = newHugePageStretches(before, anonymousMappings());
  let libc;
  try {
    libc = Deno.dlopen("libc.so.6", {
      madvise: { parameters: ["usize", "usize", "i32"], result: "i32" },
      mincore: { parameters: ["usize", "usize", "buffer"], result: "i32" },
    });
  } catch (error) {
    if (error instanceof Error) return null; // not glibc (musl): the index keeps 4 KB pages
    throw error;
  }
  try {
    const resident = new Uint8Array(Number(HUGE_PAGE) / PAGE);
    let collapsed = 0;
    for (const at of stretches) {
      // a stretch with pages never touched (an arena's unused tail) would grow by collapsing
      if (libc.symbols.mincore(at, HUGE_PAGE, resident) !== 0 || resident.some((page) => (page & 1) === 0)) continue;
      if (libc.symbols.madvise(at, HUGE_PAGE, MADV_COLLAPSE) === 0) collapsed += Number(HUGE_PAGE);
    }
    return collapsed;
  } finally {
    libc.close();
  }
}
