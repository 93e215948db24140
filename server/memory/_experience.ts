/** The experience store: episodes (a task and its outcome) and the user's feedback on them. */
import { type MemoryContext, pageOf, pageOptions, parse, type StoreAccess } from "./_context.ts";
import {
  decodeCursor,
  episodeFromRow,
  type EpisodeRow,
  type FeedbackRow,
  ID_PREFIX,
  jsonOrNull,
  notFound,
  requireId,
} from "./_rows.ts";
import {
  type Episode,
  FeedbackSchema,
  type NewEpisode,
  NewEpisodeSchema,
  type NewFeedback,
  type Page,
  type PageOptions,
} from "./types.ts";

function episode(db: StoreAccess, id: number): Episode | undefined {
  const row = db.get<EpisodeRow>("experience", "SELECT * FROM episodes WHERE id = ?", id);
  if (!row) return undefined;
  const feedback = db.all<FeedbackRow>("experience", "SELECT * FROM feedback WHERE episode_id = ? ORDER BY id", id);
  return episodeFromRow(row, feedback);
}

/** Records an episode. */
export async function recordEpisode(ctx: MemoryContext, input: NewEpisode): Promise<Episode> {
  const parsed = parse(NewEpisodeSchema, input, "episode");
  await ctx.writable();
  const now = Date.now();
  return episodeFromRow(insertEpisode(ctx.db, parsed, { created: now, updated: now }), []);
}

/** Inserts an episode with the given timestamps (ms); the live call and import both write here. */
export function insertEpisode(
  db: StoreAccess,
  input: NewEpisode,
  at: { created: number; updated: number },
): EpisodeRow {
  return db.get<EpisodeRow>(
    "experience",
    "INSERT INTO episodes(conversation_id, task, outcome, reward, metadata, created_at, updated_at) " +
      "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
    input.conversation_id ?? null,
    input.task,
    input.outcome,
    input.reward ?? null,
    jsonOrNull(input.metadata),
    at.created,
    at.updated,
  )!;
}

/** Inserts one piece of feedback on episode row `episode`, given at `createdAt` (ms). */
export function insertFeedback(db: StoreAccess, episode: number, feedback: NewFeedback, createdAt: number): void {
  db.run(
    "experience",
    "INSERT INTO feedback(episode_id, rating, comment, created_at) VALUES (?, ?, ?, ?)",
    episode,
    feedback.rating,
    feedback.comment ?? null,
    createdAt,
  );
}

/** Episode `id` with its feedback. */
export async function getEpisode(ctx: MemoryContext, id: string): Promise<Episode> {
  await ctx.ready();
  const found = episode(ctx.db, requireId(ID_PREFIX.episode, "episode", String(id)));
  if (!found) throw notFound("episode", String(id));
  return found;
}

/** Adds the user's feedback to an episode. */
export async function addFeedback(ctx: MemoryContext, episodeId: string, feedback: NewFeedback): Promise<Episode> {
  const parsed = parse(FeedbackSchema, feedback, "feedback");
  await ctx.writable();
  const db = ctx.db;
  const n = requireId(ID_PREFIX.episode, "episode", String(episodeId));
  const now = Date.now();
  db.transaction("experience", () => {
    if (db.run("experience", "UPDATE episodes SET updated_at = ? WHERE id = ?", now, n).changes === 0) {
      throw notFound("episode", String(episodeId));
    }
    insertFeedback(db, n, parsed, now);
  });
  return episode(db, n)!;
}

/** Episodes, oldest first. */
export async function listEpisodes(ctx: MemoryContext, options?: PageOptions): Promise<Page<Episode>> {
  const { limit, cursor } = pageOptions(options);
  await ctx.ready();
  const db = ctx.db;
  const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
  const rows = db.all<EpisodeRow>(
    "experience",
    "SELECT * FROM episodes WHERE id > ? ORDER BY id LIMIT ?",
    after,
    limit + 1,
  );
  return pageOf(rows, limit, (row) => episode(db, row.id)!, (row) => [row.id]);
}
