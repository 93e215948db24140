/**
 * The chunk state saved beside a `.partial` file: which bytes of each piece are already written,
 * so a killed or cancelled download resumes where it stopped.
 * @module
 */
import { z } from "zod";

const STATE_VERSION = 1;

const stateSchema = z.object({
  version: z.literal(STATE_VERSION),
  /** What the bytes are: a state for other content (new revision, new ETag) is discarded. */
  size: z.number().int().nonnegative(),
  identity: z.string(),
  pieceBytes: z.number().int().positive(),
  /** Bytes written from the start of each piece. */
  done: z.array(z.number().int().nonnegative()),
});

/** Persisted progress of one file. */
export type ChunkState = z.infer<typeof stateSchema>;

/** The pieces of a file of `size` bytes. */
export function pieceCount(size: number, pieceBytes: number): number {
  return Math.max(1, Math.ceil(size / pieceBytes));
}

/** A fresh state: nothing written. */
export function freshState(size: number, identity: string, pieceBytes: number): ChunkState {
  return { version: STATE_VERSION, size, identity, pieceBytes, done: new Array(pieceCount(size, pieceBytes)).fill(0) };
}

/**
 * Reads the state at `path` if it describes the same content; anything else (missing, corrupt,
 * other content) yields null, and the download starts over.
 */
export async function loadState(path: string, size: number, identity: string): Promise<ChunkState | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null; // a torn or foreign file: starting over is the safe answer
  }
  const parsed = stateSchema.safeParse(raw);
  if (!parsed.success) return null;
  const state = parsed.data;
  if (state.size !== size || state.identity !== identity) return null;
  if (state.done.length !== pieceCount(size, state.pieceBytes)) return null;
  for (let i = 0; i < state.done.length; i++) {
    const length = Math.min(size, (i + 1) * state.pieceBytes) - i * state.pieceBytes;
    if (state.done[i] > length) return null;
  }
  return state;
}

/** Writes the state atomically (temp file + rename), so a kill mid-write leaves the old one. */
export async function saveState(path: string, state: ChunkState): Promise<void> {
  const temp = `${path}.tmp`;
  await Deno.writeTextFile(temp, JSON.stringify(state));
  await Deno.rename(temp, path);
}

/** Bytes already written according to `state`. */
export function doneBytes(state: ChunkState): number {
  return state.done.reduce((sum, n) => sum + n, 0);
}
