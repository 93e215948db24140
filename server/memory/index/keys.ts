/** Index keys: one integer per embedded item, `kind code × 2^40 + row id`, exact in a double. */
import { TabAgentError } from "../../errors/mod.ts";

/** The item kinds an index can hold, with their stable codes (append only). */
export const KIND_CODES = { message: 1, fact: 2, summary: 3, episode: 4, tool_result: 5, chunk: 6 } as const;
/** An item kind that can be indexed. */
export type IndexedKind = keyof typeof KIND_CODES;

const SPAN = 2 ** 40;

/** The key of item `id` of `kind`. */
export function itemKey(kind: string, id: number): number {
  const code = KIND_CODES[kind as IndexedKind];
  if (!code || !Number.isSafeInteger(id) || id < 0 || id >= SPAN) {
    throw new TabAgentError("internal", `Cannot index ${kind} ${id}`);
  }
  return code * SPAN + id;
}

/** Kinds by code: a query maps every candidate's key back, and a search of the code list allocated per call. */
const KIND_OF_CODE: (IndexedKind | undefined)[] = [];
for (const [kind, code] of Object.entries(KIND_CODES)) KIND_OF_CODE[code] = kind as IndexedKind;

/** The kind a key stands for. */
export function keyKind(key: number): IndexedKind {
  const kind = KIND_OF_CODE[Math.floor(key / SPAN)];
  if (!kind) throw new TabAgentError("internal", `Unknown index key ${key}`);
  return kind;
}

/** The kind and row id a key stands for. */
export function keyItem(key: number): { kind: IndexedKind; id: number } {
  const kind = keyKind(key);
  return { kind, id: key - KIND_CODES[kind] * SPAN };
}
