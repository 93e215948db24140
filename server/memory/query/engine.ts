/**
 * Runs a {@link MemoryQuery} against read connections to the stores and a model's vector index:
 * structural filter → keyword list (FTS5 BM25) and vector list (HNSW, or an exact rerank of the
 * filtered candidates when the filter leaves few) → reciprocal rank fusion → recency and importance
 * → MMR diversity. It runs in the index worker, off the server's event loop; there a hybrid query
 * reads its keyword list in a second worker while it searches the vectors (`runQueryConcurrently`).
 */
import type { DatabaseSync, SQLInputValue } from "node:sqlite";
// prepared once per connection: preparing costs more than most of these reads
import { cachedStatement as statement } from "../_prepared.ts";
import { ftsQuery, toolResultText } from "../_rows.ts";
import type { AnnMatches } from "../index/ann.ts";
import { itemKey, keyItem, keyKind } from "../index/keys.ts";
import { blendScore, type FusedRanks, fuseRanks, maximalMarginalRelevance } from "./fusion.ts";
import {
  HIT_TEXT_CHARS,
  type MemoryQuery,
  type MemoryQueryHit,
  type MemoryQueryResult,
  QUERY_STORES,
} from "./schema.ts";

/**
 * At most this many filtered candidates are reranked exactly (their vectors read one by one);
 * more go through the graph, checked against the filter as they come.
 */
export const EXACT_RERANK_LIMIT = 5_000;
/** Candidates always reranked exactly; between this and the limit, only when they are a small part of the index. */
export const EXACT_RERANK_SMALL = 1_000;

/**
 * The candidate list (HNSW `ef`) of a hybrid query's vector list, where the index can set it per
 * search (see `AnnIndex.search`); a vector-only query keeps the index's own (`DEFAULT_HNSW`, 88,
 * chosen for recall@10 ≥ 0.95 on its own). In a hybrid query the vector list is one of two votes of
 * reciprocal rank fusion, and its search was most of the query's time (~0.9 of ~1.4 ms at 100,000
 * messages, two-thirds of it waiting on memory): 64, usearch's default, cost ~27% less per search
 * on the retrieval bench's index with cold caches (0.77 against 1.06 ms), for 94% of the same 50
 * candidates and a recall@50 against exact search of 0.86 instead of 0.91. The labelled set's
 * hybrid nDCG@10 (`deno task bench retrieval`) still beats vector-only and keyword-only.
 */
export const HYBRID_VECTOR_EXPANSION = 64;

/** What the engine reads through. */
export interface QuerySources {
  conversations: DatabaseSync;
  knowledge: DatabaseSync;
  tool_results: DatabaseSync;
  /** The model's index, or null when the model has no vectors. */
  vectors: {
    dimensions: number | null;
    /**
     * The `k` nearest keys; with `allowed`, only keys it has (the search widens until it has `k`);
     * `expansion`: the search's candidate list, where the index can set it per search.
     */
    search(
      query: Float32Array,
      k: number,
      options?: { allowed?: { has(key: number): boolean }; expansion?: number },
    ): AnnMatches;
    /** Vectors in the index. */
    readonly size: number;
    rerank(query: Float32Array, keys: number[], k: number): AnnMatches;
    vectorsOf(keys: number[]): Map<number, Float32Array>;
  } | null;
}

type Kind = MemoryQueryHit["kind"];

interface Filter {
  where: string[];
  params: SQLInputValue[];
}

function tagClause(column: string, tags: string[]): string {
  return `EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(${column}) THEN ${column} END, '$.tags') ` +
    `WHERE value IN (${tags.map(() => "?").join(", ")}))`;
}

/** The structural filter of `query` for one kind, or null when that kind cannot match it. */
function filterFor(kind: Kind, query: MemoryQuery): Filter | null {
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  const time = { message: "m.created_at", fact: "x.created_at", chunk: "c.created_at", tool_result: "t.created_at" }[
    kind
  ];
  if (query.since) {
    where.push(`${time} >= ?`);
    params.push(Date.parse(query.since));
  }
  if (query.until) {
    where.push(`${time} <= ?`);
    params.push(Date.parse(query.until));
  }
  if (kind === "message") {
    if (query.conversation_id) {
      where.push("m.conversation_id = ?");
      params.push(query.conversation_id);
    }
    if (query.roles) {
      where.push(`m.role IN (${query.roles.map(() => "?").join(", ")})`);
      params.push(...query.roles);
    }
    if (query.tags) {
      where.push(
        `(${tagClause("m.metadata", query.tags)} OR ${
          tagClause("(SELECT metadata FROM conversations WHERE id = m.conversation_id)", query.tags)
        })`,
      );
      params.push(...query.tags, ...query.tags);
    }
  } else if (kind === "fact") {
    if (query.roles) return null;
    if (query.conversation_id) {
      where.push("x.conversation_id = ?");
      params.push(query.conversation_id);
    }
    if (query.tags) {
      where.push(tagClause("x.metadata", query.tags));
      params.push(...query.tags);
    }
  } else if (kind === "tool_result") {
    if (query.roles || query.tags) return null;
    if (query.conversation_id) {
      where.push("t.conversation_id = ?");
      params.push(query.conversation_id);
    }
  } else {
    if (query.roles || query.tags) return null;
    if (query.conversation_id) {
      where.push("d.conversation_id = ?");
      params.push(query.conversation_id);
    }
  }
  return { where, params };
}

const KINDS: Record<MemoryQuery["stores"][number], Kind> = {
  messages: "message",
  facts: "fact",
  documents: "chunk",
  tool_results: "tool_result",
};

const FROM: Record<
  Kind,
  { db: "conversations" | "knowledge" | "tool_results"; from: string; fts: string; id: string; text: string }
> = {
  message: { db: "conversations", from: "messages m", fts: "messages_fts", id: "m.id", text: "m.content" },
  fact: { db: "knowledge", from: "facts x", fts: "facts_fts", id: "x.id", text: "x.text" },
  chunk: {
    db: "conversations",
    from: "document_chunks c JOIN documents d ON d.id = c.document_id",
    fts: "document_chunks_fts",
    id: "c.id",
    text: "c.text",
  },
  tool_result: {
    db: "tool_results",
    from: "tool_results t",
    fts: "tool_results_fts",
    id: "t.id",
    text: "t.tool_name || ' ' || coalesce(t.arguments, '') || ' ' || coalesce(t.result, '') || ' ' || " +
      "coalesce(t.error, '')",
  },
};

/** Tables seen to exist, per connection: a table is never dropped under a running query engine. */
const existingTables = new WeakMap<DatabaseSync, Set<string>>();

function hasTable(db: DatabaseSync, name: string): boolean {
  let seen = existingTables.get(db);
  if (seen?.has(name)) return true;
  if (!statement(db, "SELECT 1 FROM sqlite_schema WHERE name = ?").get(name)) return false;
  if (!seen) existingTables.set(db, seen = new Set());
  seen.add(name);
  return true;
}

/**
 * Words too common to say anything about relevance. The keyword list matches ANY word of the
 * query (a question rarely repeats its answer's every word), so without this "what did I say" would
 * match nearly every message, and BM25 would rank by those words alone when nothing else matches.
 */
const STOPWORDS = new Set(
  ("a about above after again all am an and any are as at be because been before being below between both but by " +
    "can could did do does doing down during each few for from further had has have having he her here hers him his " +
    "how i if in into is it its just me more most my myself no nor not now of off on once only or other our ours out " +
    "over own same she should so some such than that the their theirs them then there these they this those through " +
    "to too under until up very was we were what when where which while who whom why will with would you your yours " +
    "tell show find remember say said")
    .split(" "),
);

function fold(text: string): string {
  return text.normalize("NFKD").replace(/\p{M}+/gu, "").toLowerCase();
}

/** The query's telling words (all its words when none is telling), folded like the FTS tokenizer. */
export function keywordTerms(text: string): string[] {
  const words = text.normalize("NFKC").match(/[\p{L}\p{N}_]+/gu) ?? [];
  const telling = words.filter((word) => !STOPWORDS.has(word.toLowerCase()));
  return [...new Set((telling.length ? telling : words).map(fold))];
}

/**
 * How many of `terms` a text must contain to be a keyword hit: most of them (more than half). BM25
 * over a plain OR query ranks a text that shares one ordinary word with a long question as a hit,
 * and reciprocal rank fusion would then weigh that noise like a real match.
 */
export function minimumShouldMatch(terms: number): number {
  return Math.floor(terms / 2) + 1;
}

/** Most combinations spelled out in an FTS5 expression; past that, OR and filter in code. */
const MAX_COMBINATIONS = 20;

function combinations<T>(items: T[], size: number): T[][] {
  if (size === 0) return [[]];
  if (items.length < size) return [];
  const [first, ...rest] = items;
  return [...combinations(rest, size - 1).map((c) => [first, ...c]), ...combinations(rest, size)];
}

/**
 * The FTS5 expression for "at least `needed` of `terms`", and whether rows still need checking in
 * code (when spelling out every combination would be too long).
 */
export function keywordExpression(terms: string[], needed: number): { match: string; check: boolean } | null {
  const quoted = ftsQuery(terms.join(" "), "any")?.split(" OR ");
  if (!quoted) return null;
  if (needed <= 1) return { match: quoted.join(" OR "), check: false };
  if (needed >= quoted.length) return { match: quoted.join(" "), check: false };
  const combos = combinations(quoted, needed);
  if (combos.length > MAX_COMBINATIONS) return { match: quoted.join(" OR "), check: true };
  return { match: combos.map((c) => `(${c.join(" ")})`).join(" OR "), check: false };
}

function coverage(text: string, terms: string[]): number {
  const words = new Set(fold(text).match(/[\p{L}\p{N}_]+/gu) ?? []);
  return terms.filter((term) => words.has(term)).length;
}

/** Keys of the best keyword matches of every kind, merged by BM25 (lower rank is better). */
function keywordList(
  sources: QuerySources,
  query: MemoryQuery,
  kinds: Kind[],
  depth: number,
  fused: boolean,
): number[] {
  const terms = keywordTerms(query.query);
  // alone, the keyword list is all there is: any telling word may find something
  const needed = fused ? minimumShouldMatch(terms.length) : 1;
  const expression = keywordExpression(terms, needed);
  if (!expression) return [];
  const { match, check } = expression;
  // item keys and their BM25 ranks, side by side (an object per row was most of this list's garbage)
  const keys: number[] = [];
  const ranks: number[] = [];
  let kindsFound = 0;
  for (const kind of kinds) {
    const filter = filterFor(kind, query);
    const db = sources[FROM[kind].db];
    if (!filter || !hasTable(db, FROM[kind].fts)) continue;
    const sql = filter.where.length === 0 && !check
      ? plainKeywordSql[kind] ??= keywordSql(kind, [], false)
      : keywordSql(kind, filter.where, check);
    // read past `depth` so the rows that cover too few terms can be dropped
    const rows = statement(db, sql, { arrays: true })
      .all(match, ...filter.params, check ? depth * 4 : depth) as unknown as [id: number, rank: number, text: string][];
    let kept = 0;
    for (const row of rows) {
      if (kept >= depth) break;
      if (check && coverage(row[2], terms) < needed) continue;
      keys.push(itemKey(kind, row[0]));
      ranks.push(row[1]);
      kept++;
    }
    if (kept) kindsFound++;
  }
  // one kind's rows come ranked by BM25 already (ties in the order SQLite gave them)
  if (kindsFound <= 1) return keys;
  const order = keys.map((_, i) => i).sort((a, b) => ranks[a] - ranks[b] || a - b);
  return order.slice(0, depth).map((i) => keys[i]);
}

/** Each kind's keyword SQL when nothing filters or checks (the common case), built once. */
const plainKeywordSql: Partial<Record<Kind, string>> = {};

/** The keyword list's SQL for `kind` with the filter's `where` clauses, reading texts when they are to be `check`ed. */
function keywordSql(kind: Kind, filter: string[], check: boolean): string {
  const spec = FROM[kind];
  const where = [`${spec.fts} MATCH ?`, ...filter].join(" AND ");
  // the FTS rowid is the item's id: with nothing to filter or check, the item's table need not be
  // joined (a B-tree lookup per row read; the rows that no longer exist are dropped when the hits
  // are read), which cut this list's p99 by ~15% at 100k messages
  // ranked by bm25() itself, which the stores leave as FTS5's `rank`: ordering by the `rank` column
  // takes FTS5's sorted-rank path, which cost ~1.45× as much on queries of common words (2.06
  // against 1.41 ms for 649 matches of 100k messages), where a hybrid query's keyword list is slowest
  const bm25 = `bm25(${spec.fts})`;
  return filter.length === 0 && !check
    ? `SELECT f.rowid AS id, ${bm25} AS rank, NULL AS text FROM ${spec.fts} f
         WHERE ${where} ORDER BY ${bm25} LIMIT ?`
    : `SELECT ${spec.id} AS id, ${bm25} AS rank, ${check ? spec.text : "NULL"} AS text FROM ${spec.fts} f, ${spec.from}
         WHERE ${spec.id} = f.rowid AND ${where} ORDER BY ${bm25} LIMIT ?`;
}

/** Whether `query` filters by more than the stores it looks in. */
function structural(query: MemoryQuery): boolean {
  return !!(query.conversation_id || query.roles || query.since || query.until || query.tags);
}

/** Whether item `key` passes the structural filter of `query` (one indexed point read). */
function passes(sources: QuerySources, query: MemoryQuery, kinds: Set<Kind>, key: number): boolean {
  const { kind, id } = keyItem(key);
  if (!kinds.has(kind as Kind)) return false;
  const filter = filterFor(kind as Kind, query);
  if (!filter) return false;
  const spec = FROM[kind as Kind];
  const where = [`${spec.id} = ?`, ...filter.where].join(" AND ");
  return !!statement(sources[spec.db], `SELECT 1 FROM ${spec.from} WHERE ${where}`).get(id, ...filter.params);
}

/** Keys that pass the structural filter, or null when nothing filters (every item passes). */
function candidates(sources: QuerySources, query: MemoryQuery, kinds: Kind[], limit: number): number[] | null {
  const filtered = kinds.length < QUERY_STORES.length || structural(query);
  if (!filtered) return null;
  const keys: number[] = [];
  for (const kind of kinds) {
    const filter = filterFor(kind, query);
    const spec = FROM[kind];
    const db = sources[spec.db];
    if (!filter || (kind === "chunk" && !hasTable(db, "documents"))) continue;
    const where = filter.where.length ? `WHERE ${filter.where.join(" AND ")}` : "";
    const rows = statement(db, `SELECT ${spec.id} AS id FROM ${spec.from} ${where} LIMIT ?`)
      .all(...filter.params, limit + 1 - keys.length) as { id: number }[];
    for (const row of rows) keys.push(itemKey(kind, row.id));
    if (keys.length > limit) break;
  }
  return keys;
}

interface Row {
  kind: Kind;
  id: number;
  conversation_id: string | null;
  role: string | null;
  text: string;
  created_at: number;
  importance: number;
  document?: { id: number; url: string; title: string | null };
}

function importanceOf(metadata: string | null): number {
  if (!metadata) return 0;
  try {
    const value = JSON.parse(metadata)?.importance;
    return typeof value === "number" && Number.isFinite(value) ? value : 0;
  } catch (error) {
    if (error instanceof SyntaxError) return 0;
    throw error;
  }
}

/**
 * A row as `ROW_SELECT` reads it, as an array (cheaper than an object per row): every kind has the
 * same leading columns ({@link COL}), then its own.
 */
type SelectedRow = unknown[];

/** Positions of the leading columns of a {@link SelectedRow}. */
const COL = { id: 0, conversation_id: 1, role: 2, text: 3, metadata: 4, confidence: 5, created_at: 6 } as const;

/** The rows of the ids in the JSON array bound to it, in any order. */
const IDS_IN = "IN (SELECT value FROM json_each(?))";

/** How each kind's rows are read (many ids in one statement), and what counts as its importance. */
const ROW_SELECT: Record<
  Kind,
  {
    db: "conversations" | "knowledge" | "tool_results";
    sql: string;
    importance(row: SelectedRow): number;
    /** The hit's text when it is not the text column. */
    textOf?(row: SelectedRow): string;
    /** The page a chunk is from. */
    documentOf?(row: SelectedRow): NonNullable<Row["document"]>;
  }
> = {
  message: {
    db: "conversations",
    sql: `SELECT id, conversation_id, role, content, metadata, NULL, created_at FROM messages WHERE id ${IDS_IN}`,
    importance: (row) => importanceOf(row[COL.metadata] as string | null),
  },
  fact: {
    db: "knowledge",
    sql: `SELECT id, conversation_id, NULL, text, metadata, confidence, created_at FROM facts WHERE id ${IDS_IN}`,
    importance: (row) =>
      Math.max((row[COL.confidence] as number | null) ?? 0, importanceOf(row[COL.metadata] as string | null)),
  },
  chunk: {
    db: "conversations",
    sql: `SELECT c.id, d.conversation_id, NULL, c.text, NULL, NULL, c.created_at, d.id, d.url, d.title
            FROM document_chunks c JOIN documents d ON d.id = c.document_id WHERE c.id ${IDS_IN}`,
    importance: () => 0,
    documentOf: (row) => ({ id: row[7] as number, url: row[8] as string, title: row[9] as string | null }),
  },
  tool_result: {
    db: "tool_results",
    sql: `SELECT id, conversation_id, NULL, '', NULL, NULL, created_at, tool_name, arguments, result, error
            FROM tool_results WHERE id ${IDS_IN}`,
    importance: () => 0,
    textOf: (row) =>
      toolResultText({
        tool_name: row[7] as string,
        arguments: row[8] as string | null,
        result: row[9] as string | null,
        error: row[10] as string | null,
      }),
  },
};

/** A row of `kind` as a {@link Row}; its importance (a JSON parse of its metadata) only when `importance` counts. */
function toRow(kind: Kind, row: SelectedRow, importance: boolean): Row {
  const select = ROW_SELECT[kind];
  return {
    kind,
    id: row[COL.id] as number,
    conversation_id: row[COL.conversation_id] as string | null,
    role: row[COL.role] as string | null,
    text: select.textOf ? select.textOf(row) : row[COL.text] as string,
    created_at: row[COL.created_at] as number,
    importance: importance ? select.importance(row) : 0,
    ...(select.documentOf ? { document: select.documentOf(row) } : {}),
  };
}

/**
 * Reads the rows of `keys` (item keys), one statement per kind among them; the items that no
 * longer exist are absent from the answer. One statement for ten hits cost ~22 µs and ~3 KB of
 * garbage against ~60 µs and ~9 KB for ten point reads.
 */
function loadRows(sources: QuerySources, keys: number[], importance: boolean, into: Map<number, Row>): void {
  const idsOf = new Map<Kind, number[]>();
  for (const key of keys) {
    const { kind, id } = keyItem(key);
    if (!(kind in ROW_SELECT)) continue;
    let ids = idsOf.get(kind as Kind);
    if (!ids) idsOf.set(kind as Kind, ids = []);
    ids.push(id);
  }
  for (const [kind, ids] of idsOf) {
    const select = ROW_SELECT[kind];
    const rows = statement(sources[select.db], select.sql, { arrays: true }).all(
      JSON.stringify(ids),
    ) as unknown as SelectedRow[];
    for (const row of rows) into.set(itemKey(kind, row[COL.id] as number), toRow(kind, row, importance));
  }
}

const PREFIX: Record<Kind, string> = { message: "msg", fact: "fact", chunk: "chunk", tool_result: "tool" };

type VectorIndex = NonNullable<QuerySources["vectors"]>;

/**
 * The nearest items to `vector` of the kinds asked for; exactly reranked when the filters leave
 * few. In a hybrid query (the plan has a keyword list too) its graph search uses
 * {@link HYBRID_VECTOR_EXPANSION}.
 */
function vectorList(
  sources: QuerySources,
  query: MemoryQuery,
  plan: Plan,
  vector: Float32Array,
  index: VectorIndex,
): { hits: AnnMatches; exact: boolean } {
  const { kinds, depth } = plan;
  const expansion = plan.keyword ? HYBRID_VECTOR_EXPANSION : undefined;
  const allowed = candidates(sources, query, kinds, EXACT_RERANK_LIMIT);
  let hits: AnnMatches;
  let exact = false;
  if (allowed === null) hits = index.search(vector, depth, { expansion });
  else if (
    allowed.length <= EXACT_RERANK_SMALL || (allowed.length <= EXACT_RERANK_LIMIT && allowed.length * 4 <= index.size)
  ) {
    // few candidates: their exact distances cost less than a graph walk that would skip most of the graph
    hits = index.rerank(vector, allowed, depth);
    exact = true;
  } else {
    // many (the candidate list stops at the limit, so it cannot stand for the filter): walk the
    // graph and check each item it meets
    const wanted = new Set(kinds);
    const verdicts = new Map<number, boolean>();
    const filter = structural(query);
    hits = index.search(vector, depth, {
      allowed: {
        has: (key) => {
          let verdict = verdicts.get(key);
          if (verdict === undefined) {
            verdict = filter ? passes(sources, query, wanted, key) : wanted.has(keyKind(key) as Kind);
            verdicts.set(key, verdict);
          }
          return verdict;
        },
      },
      expansion,
    });
  }
  // the index holds every kind; keep the ones asked for (copying only when one is not)
  const wanted = new Set(kinds);
  if (hits.keys.every((key) => wanted.has(keyKind(key) as Kind))) return { hits, exact };
  const kept: AnnMatches = { keys: [], distances: [] };
  hits.keys.forEach((key, i) => {
    if (wanted.has(keyKind(key) as Kind)) kept.keys.push(key), kept.distances.push(hits.distances[i]);
  });
  return { hits: kept, exact };
}

/**
 * The first `needed` fused candidates (best first) that still exist, with their rows: the rows of
 * the next candidates are read together until enough exist or none are left.
 */
function liveRows(sources: QuerySources, fused: FusedRanks, needed: number, importance: boolean) {
  const rows = new Map<number, Row>();
  const live: { id: number; score: number }[] = [];
  let next = 0;
  while (live.length < needed && next < fused.order.length) {
    const from = next;
    next = Math.min(fused.order.length, next + needed - live.length);
    const batch: number[] = [];
    for (let i = from; i < next; i++) batch.push(fused.ids[fused.order[i]]);
    loadRows(sources, batch, importance, rows);
    for (let i = from; i < next; i++) {
      const at = fused.order[i];
      if (rows.has(fused.ids[at])) live.push({ id: fused.ids[at], score: fused.scores[at] });
    }
  }
  return { rows, live };
}

/** Blends the fused score with recency and importance, then diversifies when asked. */
function rank(
  live: { id: number; score: number }[],
  rows: Map<number, Row>,
  query: MemoryQuery,
  index: VectorIndex | null | undefined,
): { id: number; score: number }[] {
  const best = live[0]?.score ?? 0;
  const now = Date.now();
  const weights = {
    recency: query.ranking.recency,
    importance: query.ranking.importance,
    halfLifeDays: query.ranking.half_life_days,
  };
  const ranked = live.map(({ id, score }) => {
    const row = rows.get(id)!;
    return { id, score: blendScore(score, best, now - row.created_at, row.importance, weights) };
  }).sort((a, b) => b.score - a.score);
  if (query.diversity === undefined || query.diversity >= 1 || !index) return ranked;
  const pool = ranked.slice(0, query.k * 3);
  const vectors = index.vectorsOf(pool.map((c) => c.id));
  return maximalMarginalRelevance(pool.map((c) => ({ ...c, vector: vectors.get(c.id) })), query.k, query.diversity);
}

/** One hit as the API answers it. */
function toHit(
  row: Row,
  score: number,
  ranks: { keyword: number | null; vector: number | null; distance: number | null },
): MemoryQueryHit {
  return {
    kind: row.kind,
    id: `${PREFIX[row.kind]}_${row.id}`,
    conversation_id: row.conversation_id,
    role: row.role,
    text: row.text.length > HIT_TEXT_CHARS ? `${row.text.slice(0, HIT_TEXT_CHARS)}…` : row.text,
    ...(row.document
      ? { document: { id: `doc_${row.document.id}`, url: row.document.url, title: row.document.title } }
      : {}),
    created_at: new Date(row.created_at).toISOString(),
    score,
    keyword_rank: ranks.keyword,
    vector_rank: ranks.vector,
    distance: ranks.distance,
  };
}

/** What a query will run: the kinds it looks in, each list's depth, and which lists. */
interface Plan {
  kinds: Kind[];
  depth: number;
  keyword: boolean;
  vector: boolean;
}

function planOf(query: MemoryQuery, index: VectorIndex | null, vector: Float32Array | null): Plan {
  return {
    kinds: query.stores.map((store) => KINDS[store]),
    depth: query.depth ?? Math.min(1_000, query.k * 5),
    keyword: query.mode !== "vector",
    vector: query.mode !== "keyword" && !!vector && !!index && index.dimensions !== null,
  };
}

/** The connections the keyword list reads through (no vector index). */
export type KeywordSources = Pick<QuerySources, "conversations" | "knowledge" | "tool_results">;

/**
 * The keyword list of `query` (item keys, best first), as {@link runQuery} computes it; `fused`
 * says whether a vector list will be fused with it (then most of the query's words must match).
 * It reads only the stores, so it can run in another thread while the vector list is searched.
 */
export function keywordKeysOf(sources: KeywordSources, query: MemoryQuery, fused: boolean): number[] {
  const plan = planOf(query, null, null);
  return keywordList(sources as QuerySources, query, plan.kinds, plan.depth, fused);
}

/** A keyword list asked of another thread (see keyword_thread.ts). */
export interface KeywordJob {
  /**
   * Takes the job back if the other thread has not started it: true means the caller computes the
   * list itself (the other thread will skip it); false, that the other thread has it and `take`
   * will answer.
   */
  withdraw(): boolean;
  /**
   * The list of a job the other thread has, waited for (blocking this thread); null when it did
   * not come in time (the caller then computes it itself). Throws the other thread's error.
   */
  take(): number[] | null;
}

/** Fuses the lists, ranks and reads the `k` best rows. */
function finish(
  sources: QuerySources,
  query: MemoryQuery,
  plan: Plan,
  keywordKeys: number[],
  found: { hits: AnnMatches; exact: boolean } | null,
): MemoryQueryResult {
  const index = sources.vectors;
  const used = { keyword: plan.keyword, vector: !!found, exact_rerank: found?.exact ?? false };
  const vectorHits = found?.hits ?? { keys: [], distances: [] };
  const lists: { ids: number[]; weight: number }[] = [];
  if (plan.keyword) lists.push({ ids: keywordKeys, weight: query.mode === "keyword" ? 1 : query.weights.keyword });
  if (found) lists.push({ ids: vectorHits.keys, weight: query.mode === "vector" ? 1 : query.weights.vector });

  const fused = fuseRanks(lists);
  // ranking by recency or importance, or diversifying, looks at every candidate; plain fusion only
  // at the k best that still exist
  const reranks = query.ranking.recency > 0 || query.ranking.importance > 0 || query.diversity !== undefined;
  const needed = reranks ? fused.ids.length : query.k;
  // with importance weighted 0 it adds nothing to a score: its metadata need not be parsed
  const { rows, live } = liveRows(sources, fused, needed, query.ranking.importance > 0);
  const ranked = rank(live, rows, query, index);

  // each hit's ranks by a scan of the lists (k × depth comparisons): cheaper than two maps of every candidate
  const hits = ranked.slice(0, query.k).map(({ id, score }) => {
    const kr = keywordKeys.indexOf(id);
    const vr = vectorHits.keys.indexOf(id);
    return toHit(rows.get(id)!, score, {
      keyword: kr < 0 ? null : kr + 1,
      vector: vr < 0 ? null : vr + 1,
      distance: vr < 0 ? null : vectorHits.distances[vr],
    });
  });
  return { hits, used };
}

/**
 * Runs `query` (already parsed) with an optional query `vector`.
 *
 * @example
 * ```ts
 * const { hits } = runQuery(sources, MemoryQuerySchema.parse({ query: "train to Lyon" }), vector);
 * ```
 */
export function runQuery(sources: QuerySources, query: MemoryQuery, vector: Float32Array | null): MemoryQueryResult {
  const plan = planOf(query, sources.vectors, vector);
  const keywordKeys = plan.keyword ? keywordList(sources, query, plan.kinds, plan.depth, plan.vector) : [];
  const found = plan.vector ? vectorList(sources, query, plan, vector!, sources.vectors!) : null;
  return finish(sources, query, plan, keywordKeys, found);
}

/**
 * {@link runQuery} with the two lists searched at the same time: `keywords` asks another thread
 * for the keyword list (through {@link keywordKeysOf}) while this thread searches the vector
 * index; the lists are then fused here. If the other thread has not started the keyword list by
 * the time the vector list is done (no core was free for it), this thread takes it back and reads
 * it itself; otherwise it waits for the other thread's list (blocking, see keyword_thread.ts). Same
 * result as {@link runQuery}; a query with one list only runs here, as it has nothing to overlap.
 *
 * @example
 * ```ts
 * const result = runQueryConcurrently(sources, query, vector, (q, fused) => keywordWorker.job(q, fused));
 * ```
 */
export function runQueryConcurrently(
  sources: QuerySources,
  query: MemoryQuery,
  vector: Float32Array | null,
  keywords: (query: MemoryQuery, fused: boolean) => KeywordJob,
): MemoryQueryResult {
  const plan = planOf(query, sources.vectors, vector);
  if (!plan.keyword || !plan.vector) return runQuery(sources, query, vector);
  const job = keywords(query, true);
  let found: { hits: AnnMatches; exact: boolean };
  try {
    found = vectorList(sources, query, plan, vector!, sources.vectors!);
  } catch (error) {
    job.withdraw(); // the vector side's error is the one to report: a list the other thread has is left unread
    throw error;
  }
  const keywordKeys = (job.withdraw() ? null : job.take()) ??
    keywordList(sources, query, plan.kinds, plan.depth, plan.vector);
  return finish(sources, query, plan, keywordKeys, found);
}
