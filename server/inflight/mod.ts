/**
 * A registry of things in flight (requests waiting for a deadline, queries waiting for a worker's
 * answer), for the hot paths that add and remove one per request.
 *
 * Why not a `Map` or a `Set`: V8 grows, shrinks and compacts their hash tables by allocating a new
 * one and leaving a pointer to it in the old one (for iterators still walking it), and an old table
 * keeps the entries it held. A table that reached the old generation keeps the next table, and the
 * entries in it, alive through every young-generation collection until a full one, so each request
 * in flight at a rehash (its promise, response and closures) was copied and then promoted. Under the
 * memory bench's eight searching clients that was ~0.3 MB promoted per scavenge, and each scavenge a
 * 1.1 ms pause on the event loop; with this registry in the request deadline and the search pool,
 * 10 kB and 0.44 ms. Here an entry lives in an array slot and leaves no trace when it is removed.
 *
 * Keys are numbers (they cross `postMessage` as a request id): the slot plus a use count, so a key
 * taken once never finds the slot's next occupant.
 * @module
 */

/** Slots addressable by a key; more entries than this at once is a bug in the caller. */
const MAX_SLOTS = 2 ** 21;
/** Uses of one slot before its count wraps (keys stay below 2^53). */
const MAX_USES = 2 ** 31;

/**
 * Entries in flight, each under the key {@link InFlight.add} gave it.
 *
 * @example
 * ```ts
 * const pending = new InFlight<(answer: string) => void>();
 * const id = pending.add((answer) => console.log(answer));
 * worker.postMessage({ id, question: "…" });
 * worker.onmessage = (event) => pending.take(event.data.id)?.(event.data.answer);
 * ```
 */
export class InFlight<T> {
  #entries: (T | undefined)[] = [];
  /** Each slot's current key, or -1 while it is free. */
  #keys: number[] = [];
  #uses: number[] = [];
  #free: number[] = [];
  #size = 0;

  /** How many entries are in flight. */
  get size(): number {
    return this.#size;
  }

  /** Adds `entry`; returns its key. */
  add(entry: T): number {
    let slot = this.#free.pop();
    if (slot === undefined) {
      slot = this.#keys.length;
      if (slot >= MAX_SLOTS) throw new RangeError(`more than ${MAX_SLOTS} entries in flight`);
      this.#entries.push(undefined);
      this.#keys.push(-1);
      this.#uses.push(0);
    }
    const uses = (this.#uses[slot] + 1) % MAX_USES;
    this.#uses[slot] = uses;
    const key = uses * MAX_SLOTS + slot;
    this.#keys[slot] = key;
    this.#entries[slot] = entry;
    this.#size++;
    return key;
  }

  /** The entry under `key`, if it is still in flight. */
  get(key: number): T | undefined {
    const slot = this.#slotOf(key);
    return slot === -1 ? undefined : this.#entries[slot];
  }

  /** Removes the entry under `key` and returns it (undefined: not in flight, or taken already). */
  take(key: number): T | undefined {
    const slot = this.#slotOf(key);
    return slot === -1 ? undefined : this.#vacate(slot);
  }

  /** Removes the entry under `key`; false when it was not in flight. */
  delete(key: number): boolean {
    const slot = this.#slotOf(key);
    if (slot === -1) return false;
    this.#vacate(slot);
    return true;
  }

  /** Every entry in flight with its key; entries removed while iterating are skipped. */
  *entries(): IterableIterator<[number, T]> {
    for (let slot = 0; slot < this.#keys.length; slot++) {
      const key = this.#keys[slot];
      if (key !== -1) yield [key, this.#entries[slot] as T];
    }
  }

  /** Every entry in flight. */
  *values(): IterableIterator<T> {
    for (const [, entry] of this.entries()) yield entry;
  }

  /** Removes every entry. */
  clear(): void {
    for (const [key] of this.entries()) this.take(key);
  }

  /** Empties `slot` (which holds an entry) and returns what it held. */
  #vacate(slot: number): T | undefined {
    const entry = this.#entries[slot];
    this.#entries[slot] = undefined;
    this.#keys[slot] = -1;
    this.#free.push(slot);
    this.#size--;
    return entry;
  }

  #slotOf(key: number): number {
    if (!Number.isSafeInteger(key) || key < 0) return -1;
    const slot = key % MAX_SLOTS;
    return slot < this.#keys.length && this.#keys[slot] === key ? slot : -1;
  }
}
