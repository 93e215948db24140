/** The knowledge store: entities, relations between them, and facts with provenance (full-text searchable). */
import { z } from "zod";
import { MEMORY_MAX_PAGE_SIZE } from "../config/mod.ts";
import { type MemoryContext, pageOf, pageOptions, parse, type StoreAccess } from "./_context.ts";
import { OUTBOX_OPS } from "./_outbox.ts";
import { isSingleValued, nameKey } from "./weaver/names.ts";
import {
  decodeCursor,
  entityFromRow,
  type EntityRow,
  FACT_COLUMNS,
  FACT_SEARCH_SQL,
  factFromRow,
  type FactRow,
  ftsQuery,
  ID_PREFIX,
  jsonOrNull,
  notFound,
  relationFromRow,
  type RelationRow,
  requireId,
} from "./_rows.ts";
import {
  type Entity,
  type Fact,
  type FactHit,
  type NewEntity,
  NewEntitySchema,
  type NewFact,
  NewFactSchema,
  type NewRelation,
  NewRelationSchema,
  type Page,
  type PageOptions,
  type Relation,
  SearchOptionsSchema,
} from "./types.ts";

function entity(db: StoreAccess, id: number): Entity | undefined {
  const row = db.get<EntityRow>("knowledge", "SELECT * FROM entities WHERE id = ?", id);
  return row && entityFromRow(row);
}

/** Creates an entity, or updates the one with the same type and name. */
export async function upsertEntity(ctx: MemoryContext, input: NewEntity): Promise<Entity> {
  const parsed = parse(NewEntitySchema, input, "entity");
  await ctx.writable();
  const now = Date.now();
  return entityFromRow(insertEntity(ctx.db, parsed, { created: now, updated: now }));
}

/**
 * Inserts an entity with the given timestamps (ms), or updates the attributes of the one with the
 * same type and name; the live call and import both write here.
 */
export function insertEntity(db: StoreAccess, input: NewEntity, at: { created: number; updated: number }): EntityRow {
  return db.get<EntityRow>(
    "knowledge",
    `INSERT INTO entities(type, name, attributes, created_at, updated_at, name_key) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(type, name) DO UPDATE SET attributes = coalesce(excluded.attributes, attributes),
         updated_at = excluded.updated_at, name_key = excluded.name_key
       RETURNING *`,
    input.type,
    input.name,
    jsonOrNull(input.attributes),
    at.created,
    at.updated,
    nameKey(input.name),
  )!;
}

/** Entity `id`. */
export async function getEntity(ctx: MemoryContext, id: string): Promise<Entity> {
  await ctx.ready();
  const found = entity(ctx.db, requireId(ID_PREFIX.entity, "entity", String(id)));
  if (!found) throw notFound("entity", String(id));
  return found;
}

/** Entities, optionally of one type, oldest first. */
export async function listEntities(
  ctx: MemoryContext,
  options: PageOptions & { type?: string } = {},
): Promise<Page<Entity>> {
  const { limit, cursor } = pageOptions({ cursor: options.cursor, limit: options.limit });
  await ctx.ready();
  const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
  const rows = options.type === undefined
    ? ctx.db.all<EntityRow>("knowledge", "SELECT * FROM entities WHERE id > ? ORDER BY id LIMIT ?", after, limit + 1)
    : ctx.db.all<EntityRow>(
      "knowledge",
      "SELECT * FROM entities WHERE type = ? AND id > ? ORDER BY id LIMIT ?",
      String(options.type),
      after,
      limit + 1,
    );
  return pageOf(rows, limit, entityFromRow, (row) => [row.id]);
}

/** Relates two entities, optionally citing a fact. */
export async function addRelation(ctx: MemoryContext, input: NewRelation): Promise<Relation> {
  const parsed = parse(NewRelationSchema, input, "relation");
  await ctx.writable();
  const db = ctx.db;
  const subject = requireId(ID_PREFIX.entity, "entity", parsed.subject_id);
  const object = requireId(ID_PREFIX.entity, "entity", parsed.object_id);
  const fact = parsed.fact_id === undefined ? null : requireId(ID_PREFIX.fact, "fact", parsed.fact_id);
  if (!entity(db, subject)) throw notFound("entity", parsed.subject_id);
  if (!entity(db, object)) throw notFound("entity", parsed.object_id);
  if (fact !== null && !db.get("knowledge", "SELECT 1 FROM facts WHERE id = ?", fact)) {
    throw notFound("fact", parsed.fact_id!);
  }
  const values = { subject, predicate: parsed.predicate, object, weight: parsed.weight ?? null, fact };
  const now = Date.now();
  // a relation backed by a fact is valid while the fact is
  const validity = fact === null ? undefined : db.get<{ valid_from: number | null; valid_to: number | null }>(
    "knowledge",
    "SELECT valid_from, valid_to FROM facts WHERE id = ?",
    fact,
  );
  return relationFromRow(
    insertRelation(db, { ...values, valid_from: validity?.valid_from, valid_to: validity?.valid_to }, now),
  );
}

/** A relation to insert, its ends as row numbers. */
export interface RelationValues {
  subject: number;
  predicate: string;
  object: number;
  weight: number | null;
  fact: number | null;
  /** When it became true (ms; default `createdAt`) and stopped being true (null: still is). */
  valid_from?: number | null;
  valid_to?: number | null;
}

/** Inserts a relation created at `createdAt` (ms); the live call, import and the weaver write here. */
export function insertRelation(db: StoreAccess, values: RelationValues, createdAt: number): RelationRow {
  return db.get<RelationRow>(
    "knowledge",
    "INSERT INTO relations(subject_id, predicate, object_id, weight, fact_id, created_at, valid_from, valid_to) " +
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
    values.subject,
    values.predicate,
    values.object,
    values.weight,
    values.fact,
    createdAt,
    values.valid_from ?? createdAt,
    values.valid_to ?? null,
  )!;
}

/** The relations an entity takes part in, as subject or object. */
export async function listRelations(
  ctx: MemoryContext,
  entityId: string,
  options?: PageOptions,
): Promise<Page<Relation>> {
  const { limit, cursor } = pageOptions(options);
  await ctx.ready();
  const id = requireId(ID_PREFIX.entity, "entity", String(entityId));
  if (!entity(ctx.db, id)) throw notFound("entity", String(entityId));
  const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
  const rows = ctx.db.all<RelationRow>(
    "knowledge",
    "SELECT * FROM relations WHERE (subject_id = ? OR object_id = ?) AND id > ? ORDER BY id LIMIT ?",
    id,
    id,
    after,
    limit + 1,
  );
  return pageOf(rows, limit, relationFromRow, (row) => [row.id]);
}

/** Records a fact. */
export async function addFact(ctx: MemoryContext, input: NewFact): Promise<Fact> {
  const parsed = parse(NewFactSchema, input, "fact");
  await ctx.writable();
  const db = ctx.db;
  const entityId = parsed.entity_id === undefined ? null : requireId(ID_PREFIX.entity, "entity", parsed.entity_id);
  if (entityId !== null && !entity(db, entityId)) throw notFound("entity", parsed.entity_id!);
  const now = Date.now();
  const validFrom = parsed.valid_from === undefined ? now : Date.parse(parsed.valid_from);
  return db.transaction("knowledge", () => {
    const row = insertFact(db, { ...parsed, entity: entityId, valid_from: validFrom }, now);
    return factFromRow(retireContradicted(db, row));
  });
}

/** A fact to insert: its entity as a row number; `source_kind` any string (imports keep theirs). */
export type FactValues = Omit<NewFact, "entity_id" | "source_kind" | "valid_from"> & {
  entity: number | null;
  source_kind?: string;
  /** When it became true (ms; default `createdAt`), and when it stopped (null: still true). */
  valid_from?: number;
  valid_to?: number | null;
  /** Which extractor wrote it (weaver facts); null for facts added by a client. */
  extractor?: string | null;
};

/** Inserts a fact created at `createdAt` (ms); the live call, import and the weaver write here. */
export function insertFact(db: StoreAccess, values: FactValues, createdAt: number): FactRow {
  return db.get<FactRow>(
    "knowledge",
    `INSERT INTO facts(text, subject, predicate, object, entity_id, confidence, source_kind, source_id,
         conversation_id, metadata, created_at, valid_from, valid_to, extractor)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${FACT_COLUMNS}`,
    values.text,
    values.subject ?? null,
    values.predicate ?? null,
    values.object ?? null,
    values.entity,
    values.confidence ?? null,
    values.source_kind ?? "user",
    values.source_id ?? null,
    values.conversation_id ?? null,
    jsonOrNull(values.metadata),
    createdAt,
    values.valid_from ?? createdAt,
    values.valid_to ?? null,
    values.extractor ?? null,
  )!;
}

/**
 * Fact versions: when `fact` has an entity, a single-valued predicate (see weaver/names.ts) and an
 * object, a current fact about the same entity and predicate with another object contradicts it.
 * The one that became true earlier is retired: its `valid_to` is the other's `valid_from`, its
 * `superseded_by` the other, and its relations end with it. Call inside the write transaction;
 * returns `fact` as it stands afterwards.
 */
export function retireContradicted(db: StoreAccess, fact: FactRow): FactRow {
  if (fact.entity_id === null || fact.predicate === null || fact.object === null) return fact;
  if (fact.valid_to !== null || !isSingleValued(fact.predicate)) return fact;
  const from = fact.valid_from ?? fact.created_at;
  const others = db.all<{ id: number; object: string | null; valid_from: number | null; created_at: number }>(
    "knowledge",
    "SELECT id, object, valid_from, created_at FROM facts WHERE entity_id = ? AND predicate = ? AND valid_to IS NULL AND id <> ?",
    fact.entity_id,
    fact.predicate,
    fact.id,
  );
  const key = nameKey(fact.object);
  let retiredBy: { id: number; at: number } | null = null;
  for (const other of others) {
    if (other.object !== null && nameKey(other.object) === key) continue;
    const otherFrom = other.valid_from ?? other.created_at;
    if (otherFrom <= from) endFact(db, other.id, from, fact.id);
    else if (!retiredBy || otherFrom < retiredBy.at) retiredBy = { id: other.id, at: otherFrom };
  }
  // an older statement that arrived after a newer one was already out of date when it was said
  if (retiredBy) endFact(db, fact.id, retiredBy.at, retiredBy.id);
  return db.get<FactRow>("knowledge", `SELECT ${FACT_COLUMNS} FROM facts WHERE id = ?`, fact.id)!;
}

function endFact(db: StoreAccess, id: number, at: number, by: number): void {
  db.run("knowledge", "UPDATE facts SET valid_to = ?, superseded_by = ? WHERE id = ?", at, by, id);
  db.run("knowledge", "UPDATE relations SET valid_to = ? WHERE fact_id = ? AND valid_to IS NULL", at, id);
}

/** Fact `id`. */
export async function getFact(ctx: MemoryContext, id: string): Promise<Fact> {
  await ctx.ready();
  const n = requireId(ID_PREFIX.fact, "fact", String(id));
  const row = ctx.db.get<FactRow>("knowledge", `SELECT ${FACT_COLUMNS} FROM facts WHERE id = ?`, n);
  if (!row) throw notFound("fact", String(id));
  return factFromRow(row);
}

/** `listFacts` options: a page, optionally about one entity, optionally what was true at one time. */
export const FactListSchema = z.object({
  cursor: z.string().max(200).optional(),
  limit: z.number().int().min(1).max(MEMORY_MAX_PAGE_SIZE).optional(),
  entityId: z.string().min(1).max(200).optional(),
  asOf: z.iso.datetime({ offset: true }).optional().describe("Only facts true at this time"),
  current: z.boolean().optional().describe("Only facts true now (not retired)"),
});
/** `listFacts` options. */
export type FactListOptions = z.input<typeof FactListSchema>;

/**
 * Facts, oldest first; optionally about one entity, only those true at `asOf`
 * (`valid_from <= asOf < valid_to`), or only current ones.
 */
export async function listFacts(ctx: MemoryContext, options: FactListOptions = {}): Promise<Page<Fact>> {
  const parsed = parse(FactListSchema, options, "facts");
  const { limit, cursor } = pageOptions({ cursor: parsed.cursor, limit: parsed.limit });
  await ctx.ready();
  const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
  const where = ["id > ?"];
  const args: (number | string)[] = [after];
  if (parsed.entityId !== undefined) {
    where.push("entity_id = ?");
    args.push(requireId(ID_PREFIX.entity, "entity", parsed.entityId));
  }
  if (parsed.asOf !== undefined) {
    const at = Date.parse(parsed.asOf);
    where.push("coalesce(valid_from, created_at) <= ? AND (valid_to IS NULL OR valid_to > ?)");
    args.push(at, at);
  }
  if (parsed.current) where.push("valid_to IS NULL");
  const rows = ctx.db.all<FactRow>(
    "knowledge",
    `SELECT ${FACT_COLUMNS} FROM facts WHERE ${where.join(" AND ")} ORDER BY id LIMIT ?`,
    ...args,
    limit + 1,
  );
  return pageOf(rows, limit, factFromRow, (row) => [row.id]);
}

/** Deletes a fact; the outbox drops its embedding. */
export async function deleteFact(ctx: MemoryContext, id: string): Promise<void> {
  await ctx.writable();
  const db = ctx.db;
  const n = requireId(ID_PREFIX.fact, "fact", String(id));
  db.transaction("knowledge", () => {
    if (db.run("knowledge", "DELETE FROM facts WHERE id = ?", n).changes === 0) throw notFound("fact", String(id));
    db.outboxAdd("knowledge", OUTBOX_OPS.factDeleted, { id: n });
  });
}

/** Full-text search over facts, best BM25 first. */
export async function searchFacts(ctx: MemoryContext, options: { query: string; limit?: number }): Promise<FactHit[]> {
  const parsed = parse(SearchOptionsSchema.omit({ conversationId: true }), options, "search");
  // Text without a word (punctuation, white space) finds nothing, as a search box answers it.
  const query = ftsQuery(parsed.query, parsed.match);
  await ctx.ready();
  if (query === null) return [];
  const limit = parsed.limit ?? 10;
  const rows = ctx.pool
    ? await ctx.pool.run({ kind: "facts", query, limit })
    : ctx.db.all<Record<string, unknown>>("knowledge", FACT_SEARCH_SQL, query, limit);
  return rows.map((row) => ({
    fact: factFromRow(row as unknown as FactRow),
    score: row.score as number,
    snippet: row.snippet as string,
  }));
}
