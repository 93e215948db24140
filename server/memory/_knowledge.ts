/** The knowledge store: entities, relations between them, and facts with provenance (full-text searchable). */
import { validationError } from "../errors/mod.ts";
import { type MemoryContext, pageOf, pageOptions, parse, type StoreAccess } from "./_context.ts";
import { OUTBOX_OPS } from "./_outbox.ts";
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
    `INSERT INTO entities(type, name, attributes, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(type, name) DO UPDATE SET attributes = coalesce(excluded.attributes, attributes),
         updated_at = excluded.updated_at
       RETURNING *`,
    input.type,
    input.name,
    jsonOrNull(input.attributes),
    at.created,
    at.updated,
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
  return relationFromRow(insertRelation(db, values, Date.now()));
}

/** A relation to insert, its ends as row numbers. */
export interface RelationValues {
  subject: number;
  predicate: string;
  object: number;
  weight: number | null;
  fact: number | null;
}

/** Inserts a relation created at `createdAt` (ms); the live call and import both write here. */
export function insertRelation(db: StoreAccess, values: RelationValues, createdAt: number): RelationRow {
  return db.get<RelationRow>(
    "knowledge",
    "INSERT INTO relations(subject_id, predicate, object_id, weight, fact_id, created_at) VALUES (?, ?, ?, ?, ?, ?) " +
      "RETURNING *",
    values.subject,
    values.predicate,
    values.object,
    values.weight,
    values.fact,
    createdAt,
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
  return factFromRow(insertFact(db, { ...parsed, entity: entityId }, Date.now()));
}

/** A fact to insert: its entity as a row number; `source_kind` any string (imports keep theirs). */
export type FactValues = Omit<NewFact, "entity_id" | "source_kind"> & { entity: number | null; source_kind?: string };

/** Inserts a fact created at `createdAt` (ms); the live call and import both write here. */
export function insertFact(db: StoreAccess, values: FactValues, createdAt: number): FactRow {
  return db.get<FactRow>(
    "knowledge",
    `INSERT INTO facts(text, subject, predicate, object, entity_id, confidence, source_kind, source_id,
         conversation_id, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${FACT_COLUMNS}`,
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
  )!;
}

/** Fact `id`. */
export async function getFact(ctx: MemoryContext, id: string): Promise<Fact> {
  await ctx.ready();
  const n = requireId(ID_PREFIX.fact, "fact", String(id));
  const row = ctx.db.get<FactRow>("knowledge", `SELECT ${FACT_COLUMNS} FROM facts WHERE id = ?`, n);
  if (!row) throw notFound("fact", String(id));
  return factFromRow(row);
}

/** Facts, optionally about one entity, oldest first. */
export async function listFacts(
  ctx: MemoryContext,
  options: PageOptions & { entityId?: string } = {},
): Promise<Page<Fact>> {
  const { limit, cursor } = pageOptions({ cursor: options.cursor, limit: options.limit });
  await ctx.ready();
  const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
  let rows: FactRow[];
  if (options.entityId === undefined) {
    rows = ctx.db.all(
      "knowledge",
      `SELECT ${FACT_COLUMNS} FROM facts WHERE id > ? ORDER BY id LIMIT ?`,
      after,
      limit + 1,
    );
  } else {
    const entityId = requireId(ID_PREFIX.entity, "entity", String(options.entityId));
    rows = ctx.db.all(
      "knowledge",
      `SELECT ${FACT_COLUMNS} FROM facts WHERE entity_id = ? AND id > ? ORDER BY id LIMIT ?`,
      entityId,
      after,
      limit + 1,
    );
  }
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
  const query = ftsQuery(parsed.query, parsed.match);
  if (query === null) {
    throw validationError("search", [{ path: ["query"], message: "must contain at least one word" }]);
  }
  await ctx.ready();
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
