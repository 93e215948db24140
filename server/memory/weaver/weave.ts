/**
 * Writing the graph: one message's extraction into the knowledge store (entities resolved by name
 * key and alias, a fact with provenance for every triple, an edge for every relation, contradicted
 * facts retired), and merging duplicate entities. Everything here is synchronous SQL meant to run
 * inside one knowledge transaction, so a message is woven whole or not at all.
 */
import type { StoreAccess } from "../_context.ts";
import { insertEntity, insertFact, insertRelation, retireContradicted } from "../_knowledge.ts";
import { type EntityRow, ID_PREFIX, jsonOrNull, parseJson } from "../_rows.ts";
import { factText, isSelf, nameKey, predicateKey } from "./names.ts";
import type { EntityType, Extraction, Merge } from "./schema.ts";

/** The message a weave reads: its row id, conversation, time and text. */
export interface WovenMessage {
  id: number;
  conversation_id: string;
  created_at: number;
  text: string;
}

/** What weaving one message wrote. */
export interface WeaveOutcome {
  entities: number;
  facts: number;
  /** Entities this message created (their names are embedded for merging). */
  created: number[];
}

/** The placeholder for the user until they say their name. */
export const SELF_PLACEHOLDER = "User";
const SELF_KEY = "self_entity";

function stateGet(db: StoreAccess, key: string): string | undefined {
  return db.get<{ value: string }>("knowledge", "SELECT value FROM weaver_state WHERE key = ?", key)?.value;
}

function stateSet(db: StoreAccess, key: string, value: string): void {
  db.run(
    "knowledge",
    "INSERT INTO weaver_state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    key,
    value,
  );
}

function entityRow(db: StoreAccess, id: number): EntityRow | undefined {
  return db.get<EntityRow>("knowledge", "SELECT * FROM entities WHERE id = ?", id);
}

/** The entity that stands for the user, if the weaver knows one. */
export function selfEntity(db: StoreAccess): EntityRow | undefined {
  const id = stateGet(db, SELF_KEY);
  return id === undefined ? undefined : entityRow(db, Number(id));
}

function attributesOf(row: EntityRow): Record<string, unknown> {
  return parseJson<Record<string, unknown>>(row.attributes) ?? {};
}

function compatible(a: string, b: string): boolean {
  return a === b || a === "thing" || b === "thing";
}

/** The entities a name key names, directly or as a merged alias, oldest first. */
function candidates(db: StoreAccess, key: string): EntityRow[] {
  return db.all<EntityRow>(
    "knowledge",
    `SELECT * FROM entities WHERE name_key = ?
     UNION SELECT e.* FROM entity_aliases a JOIN entities e ON e.id = a.entity_id WHERE a.name_key = ?
     ORDER BY id`,
    key,
    key,
  );
}

/** The entity `name` of `type` names: an existing one (same type, or untyped) or a new one. */
function resolveEntity(db: StoreAccess, name: string, type: EntityType, at: number, created: number[]): EntityRow {
  const key = nameKey(name) || name.toLowerCase();
  const found = candidates(db, key);
  const same = found.find((row) => row.type === type) ?? found.find((row) => compatible(row.type, type));
  if (same) {
    if (same.type === "thing" && type !== "thing") {
      db.run("knowledge", "UPDATE OR IGNORE entities SET type = ? WHERE id = ?", type, same.id);
      return entityRow(db, same.id)!;
    }
    return same;
  }
  const row = insertEntity(db, { type, name }, { created: at, updated: at });
  created.push(row.id);
  return row;
}

/** The user's entity, created as a placeholder person when the user has not said their name yet. */
function ensureSelf(db: StoreAccess, at: number, created: number[]): EntityRow {
  const known = selfEntity(db);
  if (known) return known;
  const row = insertEntity(db, {
    type: "person",
    name: SELF_PLACEHOLDER,
    attributes: { self: true, placeholder: true },
  }, {
    created: at,
    updated: at,
  });
  if (!created.includes(row.id)) created.push(row.id);
  stateSet(db, SELF_KEY, String(row.id));
  return row;
}

/** The user said their name: the user's entity becomes (or gains the alias) `name`. */
function nameSelf(db: StoreAccess, name: string, at: number, created: number[]): EntityRow {
  const self = selfEntity(db);
  const key = nameKey(name);
  if (!self) {
    const row = resolveEntity(db, name, "person", at, created);
    db.run(
      "knowledge",
      "UPDATE entities SET attributes = ? WHERE id = ?",
      jsonOrNull({ ...attributesOf(row), self: true }),
      row.id,
    );
    stateSet(db, SELF_KEY, String(row.id));
    return entityRow(db, row.id)!;
  }
  if (self.name_key === key) return self;
  if (attributesOf(self).placeholder) {
    const existing = candidates(db, key).find((row) => compatible(row.type, "person") && row.id !== self.id);
    if (existing) {
      mergeEntities(db, existing.id, self.id, { reason: "name", similarity: null, at, keepAlias: false });
      const merged = entityRow(db, existing.id)!;
      db.run(
        "knowledge",
        "UPDATE entities SET attributes = ? WHERE id = ?",
        jsonOrNull({ ...attributesOf(merged), self: true }),
        merged.id,
      );
      return entityRow(db, existing.id)!;
    }
    const { placeholder: _placeholder, ...rest } = attributesOf(self);
    db.run(
      "knowledge",
      "UPDATE entities SET name = ?, name_key = ?, attributes = ?, updated_at = ? WHERE id = ?",
      name,
      key,
      jsonOrNull(rest),
      at,
      self.id,
    );
    // facts already said about the placeholder now read with the name
    db.run("knowledge", "UPDATE facts SET subject = ? WHERE entity_id = ? AND subject = ?", name, self.id, self.name);
    return entityRow(db, self.id)!;
  }
  addAlias(db, self.id, name, null, at);
  return self;
}

function addAlias(db: StoreAccess, entityId: number, name: string, mergedFrom: number | null, at: number): void {
  db.run(
    "knowledge",
    "INSERT OR IGNORE INTO entity_aliases(name_key, entity_id, name, merged_from, created_at) VALUES (?, ?, ?, ?, ?)",
    nameKey(name) || name.toLowerCase(),
    entityId,
    name,
    mergedFrom,
    at,
  );
}

/** One weave in progress: the message, who wrote what, and the entities it created. */
interface Weave {
  db: StoreAccess;
  message: WovenMessage;
  extractor: string;
  /** Entity types the extraction gave, by name key. */
  types: Map<string, EntityType>;
  created: number[];
}

/** The entity an extracted name stands for ("I" is the user). */
function resolveName(w: Weave, name: string): EntityRow {
  const at = w.message.created_at;
  if (isSelf(name)) return ensureSelf(w.db, at, w.created);
  return resolveEntity(w.db, name, w.types.get(nameKey(name)) ?? "thing", at, w.created);
}

/**
 * Records one triple as a fact citing the message, and as an edge when its object is an entity;
 * false when this message already stated it, or it is already known and still true.
 */
function recordTriple(w: Weave, subject: EntityRow, predicate: string, object: string, objectEntity?: EntityRow) {
  const { db, message, extractor } = w;
  const at = message.created_at;
  const source = `${ID_PREFIX.message}_${message.id}`;
  const existing = db.get<{ id: number }>(
    "knowledge",
    `SELECT id FROM facts WHERE extractor IS NOT NULL AND source_id = ? AND entity_id = ? AND predicate = ?
     AND object = ?`,
    source,
    subject.id,
    predicate,
    object,
  );
  if (existing) return false; // this message was woven before: nothing changes
  const restated = db.get<{ id: number }>(
    "knowledge",
    "SELECT id FROM facts WHERE entity_id = ? AND predicate = ? AND object = ? AND valid_to IS NULL",
    subject.id,
    predicate,
    object,
  );
  if (restated) return false; // still true, already known (its first statement is the provenance)
  const row = insertFact(db, {
    text: factText(subject.name, predicate, object),
    subject: subject.name,
    predicate,
    object,
    entity: subject.id,
    source_kind: "message",
    source_id: source,
    conversation_id: message.conversation_id,
    valid_from: at,
    extractor,
    metadata: { extractor },
  }, at);
  const current = retireContradicted(db, row);
  if (objectEntity) {
    const edge = { subject: subject.id, predicate, object: objectEntity.id, weight: null, fact: row.id };
    insertRelation(db, { ...edge, valid_from: at, valid_to: current.valid_to }, at);
  }
  return true;
}

/** Resolves (or creates) each extracted entity, keeping a description it brings; returns how many. */
function weaveEntities(w: Weave, entities: Extraction["entities"]): number {
  let count = 0;
  for (const entity of entities) {
    if (isSelf(entity.name)) continue;
    const row = resolveName(w, entity.name);
    if (entity.description && !attributesOf(row).description) {
      const attributes = jsonOrNull({ ...attributesOf(row), description: entity.description });
      w.db.run("knowledge", "UPDATE entities SET attributes = ? WHERE id = ?", attributes, row.id);
    }
    count++;
  }
  return count;
}

/**
 * Weaves one message's extraction into the graph; call inside a knowledge transaction. `I` (and
 * "me", "user"…) is the user. Each triple becomes a fact citing the message (`source_kind`
 * "message", `source_id` its id, `valid_from` its time) unless this message already stated it;
 * single-valued predicates retire the facts they contradict; relations get an edge backed by
 * their fact. Records the message as woven.
 */
export function weaveExtraction(
  db: StoreAccess,
  message: WovenMessage,
  extraction: Extraction,
  extractor: string,
): WeaveOutcome {
  const w: Weave = { db, message, extractor, types: new Map(), created: [] };
  for (const entity of extraction.entities) w.types.set(nameKey(entity.name), entity.type);
  // the user's name first, so that "I" in this very message already resolves to it
  for (const fact of extraction.facts) {
    if (isSelf(fact.subject) && predicateKey(fact.predicate) === "name" && !isSelf(fact.object)) {
      nameSelf(db, fact.object, message.created_at, w.created);
    }
  }
  const entities = weaveEntities(w, extraction.entities);
  let facts = 0;
  for (const relation of extraction.relations) {
    const subject = resolveName(w, relation.subject);
    const object = resolveName(w, relation.object);
    if (subject.id === object.id) continue;
    if (recordTriple(w, subject, predicateKey(relation.predicate), object.name, object)) facts++;
  }
  for (const fact of extraction.facts) {
    const subject = resolveName(w, fact.subject);
    const object = isSelf(fact.object) ? subject.name : fact.object;
    if (recordTriple(w, subject, predicateKey(fact.predicate), object)) facts++;
  }
  db.run(
    "knowledge",
    `INSERT INTO woven(message_id, extractor, entities, facts, woven_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT(message_id) DO NOTHING`,
    message.id,
    extractor,
    entities,
    facts,
    Date.now(),
  );
  db.run("knowledge", "DELETE FROM weave_pending WHERE message_id = ?", message.id);
  return { entities, facts, created: w.created };
}

/**
 * Merges entity `fromId` into `intoId`: its relations and facts move over (provenance and
 * validity unchanged), its name becomes an alias of `into` (so later mentions resolve there), its
 * attributes fill what `into` lacks, and it is deleted. Facts the merge brings together that now
 * contradict each other are versioned as if they had been said of one entity. Call inside a
 * knowledge transaction.
 */
export function mergeEntities(
  db: StoreAccess,
  intoId: number,
  fromId: number,
  options: { reason: Merge["reason"]; similarity: number | null; at?: number; keepAlias?: boolean },
): Merge | null {
  if (intoId === fromId) return null;
  const into = entityRow(db, intoId);
  const from = entityRow(db, fromId);
  if (!into || !from) return null;
  const at = options.at ?? Date.now();
  db.run("knowledge", "UPDATE relations SET subject_id = ? WHERE subject_id = ?", intoId, fromId);
  db.run("knowledge", "UPDATE relations SET object_id = ? WHERE object_id = ?", intoId, fromId);
  // an edge between the two is now a loop on one entity: it says nothing (its fact stays)
  db.run("knowledge", "DELETE FROM relations WHERE subject_id = ? AND object_id = ?", intoId, intoId);
  db.run("knowledge", "UPDATE facts SET entity_id = ? WHERE entity_id = ?", intoId, fromId);
  db.run(
    "knowledge",
    `INSERT OR IGNORE INTO entity_aliases(name_key, entity_id, name, merged_from, created_at)
     SELECT name_key, ?, name, merged_from, created_at FROM entity_aliases WHERE entity_id = ?`,
    intoId,
    fromId,
  );
  if (options.keepAlias ?? true) addAlias(db, intoId, from.name, fromId, at);
  const intoAttributes = attributesOf(into);
  const fromAttributes = attributesOf(from);
  const aliases = [...new Set([...(intoAttributes.aliases as string[] ?? []), from.name])]
    .filter((name) => name !== into.name);
  const mergedFrom = [...(intoAttributes.merged_from as string[] ?? []), `${ID_PREFIX.entity}_${fromId}`];
  const { placeholder: _p, ...inherited } = fromAttributes;
  const attributes: Record<string, unknown> = { ...inherited, ...intoAttributes, merged_from: mergedFrom };
  if (options.keepAlias ?? true) Object.assign(attributes, { aliases });
  if (fromAttributes.self) attributes.self = true;
  db.run(
    "knowledge",
    "UPDATE entities SET attributes = ?, updated_at = ? WHERE id = ?",
    jsonOrNull(attributes),
    at,
    intoId,
  );
  if (into.type === "thing" && from.type !== "thing") {
    db.run("knowledge", "UPDATE OR IGNORE entities SET type = ? WHERE id = ?", from.type, intoId);
  }
  if (stateGet(db, SELF_KEY) === String(fromId)) stateSet(db, SELF_KEY, String(intoId));
  db.run("knowledge", "DELETE FROM entities WHERE id = ?", fromId);
  // the newest current fact of each predicate retires what it now contradicts
  const newest = db.all<{ id: number }>(
    "knowledge",
    `SELECT max(id) AS id FROM facts WHERE entity_id = ? AND valid_to IS NULL AND predicate IS NOT NULL
     GROUP BY predicate HAVING count(*) > 1`,
    intoId,
  );
  for (const { id } of newest) {
    const row = db.get<Parameters<typeof retireContradicted>[1]>(
      "knowledge",
      "SELECT * FROM facts WHERE id = ?",
      id,
    )!;
    retireContradicted(db, row);
  }
  return {
    into: `${ID_PREFIX.entity}_${intoId}`,
    from: `${ID_PREFIX.entity}_${fromId}`,
    name: from.name,
    reason: options.reason,
    similarity: options.similarity,
  };
}

/** Merges entities that share a name key (or one's alias), each into the oldest compatible one. */
export function mergeByName(db: StoreAccess): Merge[] {
  const merges: Merge[] = [];
  const groups = db.all<{ name_key: string }>(
    "knowledge",
    `SELECT name_key FROM (
       SELECT name_key FROM entities WHERE name_key IS NOT NULL
       UNION ALL SELECT a.name_key FROM entity_aliases a)
     GROUP BY name_key HAVING count(*) > 1`,
  );
  for (const { name_key } of groups) {
    const rows = candidates(db, name_key);
    const kept: EntityRow[] = [];
    for (const row of rows) {
      const into = kept.find((other) => compatible(other.type, row.type));
      if (!into) {
        kept.push(row);
        continue;
      }
      const merge = mergeEntities(db, into.id, row.id, { reason: "name", similarity: null });
      if (merge) merges.push(merge);
    }
  }
  return merges;
}

/** The text an entity's vector is computed from: its name, and its description when it has one. */
export function entityText(row: EntityRow): string {
  const description = attributesOf(row).description;
  return typeof description === "string" && description ? `${row.name}: ${description}` : row.name;
}

/** Entities whose vector (for `model`) is missing or out of date, oldest first. */
export function entitiesToEmbed(db: StoreAccess, model: string, limit: number): EntityRow[] {
  return db.all<EntityRow>(
    "knowledge",
    `SELECT e.* FROM entities e LEFT JOIN entity_vectors v ON v.entity_id = e.id
     WHERE v.entity_id IS NULL OR v.model <> ? ORDER BY e.id LIMIT ?`,
    model,
    limit,
  ).filter((row) => !attributesOf(row).placeholder);
}

/** Stores an entity's vector (call after embedding {@link entityText}). */
export function putEntityVector(db: StoreAccess, id: number, model: string, text: string, vector: Float32Array): void {
  db.run(
    "knowledge",
    `INSERT INTO entity_vectors(entity_id, model, text, vector) SELECT ?, ?, ?, ? WHERE EXISTS
       (SELECT 1 FROM entities WHERE id = ?)
     ON CONFLICT(entity_id) DO UPDATE SET model = excluded.model, text = excluded.text, vector = excluded.vector`,
    id,
    model,
    text,
    new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength),
    id,
  );
}

/**
 * Merges entities whose name vectors are at least `threshold` similar (cosine), newer into older
 * and only between compatible types; with `since`, only entities newer than that row id are
 * compared (against all). Returns the merges.
 */
export function mergeBySimilarity(db: StoreAccess, model: string, threshold: number, since = 0): Merge[] {
  const rows = db.all<{ entity_id: number; vector: Uint8Array; type: string }>(
    "knowledge",
    `SELECT v.entity_id, v.vector, e.type FROM entity_vectors v JOIN entities e ON e.id = v.entity_id
     WHERE v.model = ? ORDER BY v.entity_id`,
    model,
  );
  const vectors = rows.map((row) => ({
    id: row.entity_id,
    type: row.type,
    v: new Float32Array(row.vector.buffer.slice(row.vector.byteOffset, row.vector.byteOffset + row.vector.byteLength)),
  }));
  const gone = new Set<number>();
  const merges: Merge[] = [];
  for (let j = 0; j < vectors.length; j++) {
    const b = vectors[j];
    if (b.id <= since || gone.has(b.id)) continue;
    let best: { id: number; similarity: number } | null = null;
    for (let i = 0; i < j; i++) {
      const a = vectors[i];
      if (gone.has(a.id) || !compatible(a.type, b.type) || a.v.length !== b.v.length) continue;
      let dot = 0, na = 0, nb = 0;
      for (let k = 0; k < a.v.length; k++) {
        dot += a.v[k] * b.v[k];
        na += a.v[k] * a.v[k];
        nb += b.v[k] * b.v[k];
      }
      const similarity = dot / (Math.sqrt(na * nb) || 1);
      if (similarity >= threshold && (!best || similarity > best.similarity)) best = { id: a.id, similarity };
    }
    if (!best) continue;
    const merge = mergeEntities(db, best.id, b.id, {
      reason: "embedding",
      similarity: Math.round(best.similarity * 1e4) / 1e4,
    });
    if (merge) {
      merges.push(merge);
      gone.add(b.id);
    }
  }
  return merges;
}
