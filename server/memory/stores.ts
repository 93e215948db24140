/**
 * The seven store files, their versioned migrations, and opening them safely: WAL, busy timeout,
 * foreign keys, an `application_id` per store so a foreign or swapped file is recognised, a
 * `quick_check` so a damaged file is refused (never recreated), and a refusal of any schema newer
 * than this code knows.
 */
import { DatabaseSync } from "node:sqlite";
import { TabAgentError } from "../errors/mod.ts";
import { makePrivateSync, makeStoreFilesPrivateSync } from "./_private.ts";
import { pathExistsSync } from "../fs/mod.ts";

/** The stores, in open order. Truth stores first; `embeddings`, `summaries` and `meta` are derived. */
export const STORE_NAMES = [
  "conversations",
  "knowledge",
  "tool_results",
  "experience",
  "embeddings",
  "summaries",
  "meta",
] as const;
/** A store name. */
export type StoreName = typeof STORE_NAMES[number];

/** `PRAGMA application_id` of each store: "TA" and the store's number, so a swapped file is caught. */
export function applicationId(store: StoreName): number {
  return 0x5441_0000 + STORE_NAMES.indexOf(store) + 1;
}

/**
 * `synchronous=NORMAL` in WAL mode: a commit is durable once it is in the WAL, which survives any
 * crash of the process (SIGKILL included); only an OS crash or power cut can lose the last few
 * commits, and the files stay consistent even then. FULL would fsync every commit and cost about 3×
 * on single inserts. Changing it is a product decision.
 */
export const SYNCHRONOUS = "NORMAL";
/** How long a connection waits for another's lock before `SQLITE_BUSY` (ms). */
export const BUSY_TIMEOUT_MS = 5_000;
/**
 * Page cache per connection (KiB) and memory-mapped reads (bytes): point reads over a large
 * conversation store are several times faster when pages come from the map instead of read(2).
 */
export const CACHE_KIB = 32 * 1024;
/** Bytes of each store file that reads may memory-map. */
export const MMAP_BYTES = 256 * 1024 * 1024;

const OUTBOX = `CREATE TABLE outbox(
  id INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL);`;
const APPLIED = `CREATE TABLE applied(source TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;`;

/** Migrations per store: entry `i` takes the schema from version `i` to `i + 1`. Append only. */
export const MIGRATIONS: Record<StoreName, string[]> = {
  conversations: [
    `CREATE TABLE conversations(
      id TEXT PRIMARY KEY, title TEXT, metadata TEXT, message_count INTEGER NOT NULL DEFAULT 0,
      created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
    CREATE INDEX conversations_recent ON conversations(updated_at, id);
    CREATE TABLE messages(
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
      role TEXT NOT NULL, content TEXT NOT NULL, parts TEXT, model TEXT, tool_calls TEXT, tool_call_id TEXT,
      prompt_tokens INTEGER, completion_tokens INTEGER, metadata TEXT, created_at INTEGER NOT NULL);
    CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
    CREATE VIRTUAL TABLE messages_fts USING fts5(
      content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
    CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
      INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
      UPDATE conversations SET message_count = message_count + 1, updated_at = max(updated_at, new.created_at)
        WHERE id = new.conversation_id;
    END;
    CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
      INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    END;
    ${OUTBOX}`,
    // v2: the message count and full-text index are kept in code, once per append (see
    // _message_index.ts): the insert trigger wrote an FTS segment and updated the conversation
    // row once per message. `fts_indexed` records how far the index got; every message written
    // so far was indexed by the old trigger. A deleted message leaves the index only if it is in it.
    `DROP TRIGGER messages_ai;
    DROP TRIGGER messages_ad;
    CREATE TABLE fts_indexed(name TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO fts_indexed(name, seq) VALUES ('messages_fts', (SELECT coalesce(max(id), 0) FROM messages));
    CREATE TRIGGER messages_ad AFTER DELETE ON messages
      WHEN old.id <= (SELECT seq FROM fts_indexed WHERE name = 'messages_fts') BEGIN
      INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    END;`,
    // v3: pages the user brought into a chat, kept as documents in chunks (full-text indexed here,
    // embedded through the outbox like messages). They go with their conversation.
    `CREATE TABLE documents(
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      conversation_id TEXT REFERENCES conversations(id) ON DELETE CASCADE,
      url TEXT NOT NULL, title TEXT, created_at INTEGER NOT NULL);
    CREATE INDEX documents_by_conversation ON documents(conversation_id, id);
    CREATE INDEX documents_by_url ON documents(url, id);
    CREATE TABLE document_chunks(
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
      seq INTEGER NOT NULL, text TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE INDEX document_chunks_by_document ON document_chunks(document_id, seq);
    CREATE VIRTUAL TABLE document_chunks_fts USING fts5(
      text, content='document_chunks', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
    CREATE TRIGGER document_chunks_ai AFTER INSERT ON document_chunks BEGIN
      INSERT INTO document_chunks_fts(rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER document_chunks_ad AFTER DELETE ON document_chunks BEGIN
      INSERT INTO document_chunks_fts(document_chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END;`,
  ],
  knowledge: [
    `CREATE TABLE entities(
      id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, name TEXT NOT NULL, attributes TEXT,
      created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, UNIQUE(type, name));
    CREATE TABLE facts(
      id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT NULL, subject TEXT, predicate TEXT, object TEXT,
      entity_id INTEGER REFERENCES entities(id) ON DELETE SET NULL, confidence REAL,
      source_kind TEXT NOT NULL, source_id TEXT, conversation_id TEXT, metadata TEXT, created_at INTEGER NOT NULL);
    CREATE INDEX facts_by_entity ON facts(entity_id, id);
    CREATE TABLE relations(
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      subject_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE, predicate TEXT NOT NULL,
      object_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE, weight REAL,
      fact_id INTEGER REFERENCES facts(id) ON DELETE SET NULL, created_at INTEGER NOT NULL);
    CREATE INDEX relations_by_subject ON relations(subject_id, id);
    CREATE INDEX relations_by_object ON relations(object_id, id);
    CREATE VIRTUAL TABLE facts_fts USING fts5(
      text, content='facts', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
    CREATE TRIGGER facts_ai AFTER INSERT ON facts BEGIN
      INSERT INTO facts_fts(rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER facts_ad AFTER DELETE ON facts BEGIN
      INSERT INTO facts_fts(facts_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    ${OUTBOX}`,
    // v2: the weaver (weaver/) writes the graph from messages. Facts and relations get a validity
    // interval (a newer contradicting fact sets the older one's valid_to); facts record which
    // extractor wrote them, and one message's extracted triple is stored once. Entities get a
    // normalised name key (the weaver's lookup; lower(trim()) here, the weaver's own rule for new
    // rows) and the names of the duplicates merged into them. The outbox queues messages for
    // weaving (`weave_pending`, `applied`); `woven` records each message woven, so re-running
    // changes nothing. `entity_vectors` caches the embedding of each entity's name for merging.
    `ALTER TABLE entities ADD COLUMN name_key TEXT;
    UPDATE entities SET name_key = lower(trim(name));
    CREATE INDEX entities_by_key ON entities(name_key, id);
    CREATE TABLE entity_aliases(
      name_key TEXT NOT NULL, entity_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
      name TEXT NOT NULL, merged_from INTEGER, created_at INTEGER NOT NULL, PRIMARY KEY (name_key, entity_id));
    CREATE INDEX entity_aliases_by_entity ON entity_aliases(entity_id);
    CREATE TABLE entity_vectors(
      entity_id INTEGER PRIMARY KEY REFERENCES entities(id) ON DELETE CASCADE, model TEXT NOT NULL,
      text TEXT NOT NULL, vector BLOB NOT NULL);
    ALTER TABLE facts ADD COLUMN valid_from INTEGER;
    ALTER TABLE facts ADD COLUMN valid_to INTEGER;
    ALTER TABLE facts ADD COLUMN superseded_by INTEGER;
    ALTER TABLE facts ADD COLUMN extractor TEXT;
    UPDATE facts SET valid_from = created_at;
    CREATE INDEX facts_current ON facts(entity_id, predicate) WHERE valid_to IS NULL;
    CREATE INDEX facts_by_validity ON facts(valid_from, valid_to);
    CREATE UNIQUE INDEX facts_extracted ON facts(source_id, subject, predicate, object) WHERE extractor IS NOT NULL;
    ALTER TABLE relations ADD COLUMN valid_from INTEGER;
    ALTER TABLE relations ADD COLUMN valid_to INTEGER;
    UPDATE relations SET valid_from = created_at;
    CREATE INDEX relations_by_fact ON relations(fact_id);
    CREATE TABLE weave_pending(
      message_id INTEGER PRIMARY KEY, conversation_id TEXT, queued_at INTEGER NOT NULL);
    CREATE INDEX weave_pending_by_conversation ON weave_pending(conversation_id);
    CREATE TABLE woven(
      message_id INTEGER PRIMARY KEY, extractor TEXT NOT NULL, entities INTEGER NOT NULL, facts INTEGER NOT NULL,
      woven_at INTEGER NOT NULL);
    CREATE TABLE weaver_state(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    ${APPLIED}`,
  ],
  tool_results: [
    `CREATE TABLE tool_results(
      id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT, message_id TEXT, call_id TEXT,
      tool_name TEXT NOT NULL, arguments TEXT, result TEXT, status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
      error TEXT, duration_ms REAL NOT NULL, created_at INTEGER NOT NULL);
    CREATE INDEX tool_results_by_conversation ON tool_results(conversation_id, id);
    CREATE INDEX tool_results_by_tool ON tool_results(tool_name, id);
    ${OUTBOX}`,
    // v2: tool results are found by hybrid queries (query/), so the keyword side needs an index;
    // the results recorded so far are indexed by the rebuild.
    `CREATE VIRTUAL TABLE tool_results_fts USING fts5(
      tool_name, arguments, result, error, content='tool_results', content_rowid='id',
      tokenize='unicode61 remove_diacritics 2');
    CREATE TRIGGER tool_results_ai AFTER INSERT ON tool_results BEGIN
      INSERT INTO tool_results_fts(rowid, tool_name, arguments, result, error)
        VALUES (new.id, new.tool_name, new.arguments, new.result, new.error);
    END;
    CREATE TRIGGER tool_results_ad AFTER DELETE ON tool_results BEGIN
      INSERT INTO tool_results_fts(tool_results_fts, rowid, tool_name, arguments, result, error)
        VALUES ('delete', old.id, old.tool_name, old.arguments, old.result, old.error);
    END;
    INSERT INTO tool_results_fts(tool_results_fts) VALUES ('rebuild');`,
  ],
  experience: [
    `CREATE TABLE episodes(
      id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT, task TEXT NOT NULL, outcome TEXT NOT NULL,
      reward REAL, metadata TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
    CREATE TABLE feedback(
      id INTEGER PRIMARY KEY AUTOINCREMENT, episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
      rating INTEGER NOT NULL CHECK (rating IN (-1, 0, 1)), comment TEXT, created_at INTEGER NOT NULL);
    CREATE INDEX feedback_by_episode ON feedback(episode_id, id);
    ${OUTBOX}`,
  ],
  embeddings: [
    `CREATE TABLE embeddings(
      item_kind TEXT NOT NULL, item_id INTEGER NOT NULL, model TEXT NOT NULL, dimensions INTEGER NOT NULL,
      vector BLOB NOT NULL, conversation_id TEXT, created_at INTEGER NOT NULL,
      PRIMARY KEY (item_kind, item_id, model));
    CREATE INDEX embeddings_by_conversation ON embeddings(conversation_id);
    CREATE TABLE pending(
      seq INTEGER PRIMARY KEY AUTOINCREMENT, item_kind TEXT NOT NULL, item_id INTEGER NOT NULL,
      conversation_id TEXT, queued_at INTEGER NOT NULL, UNIQUE (item_kind, item_id));
    CREATE INDEX pending_by_conversation ON pending(conversation_id);
    ${APPLIED}`,
    // v2: every change to `embeddings` is logged, so each model's vector index (index/) catches up
    // incrementally from the sequence number it saved, and knows it is stale when the log's
    // high-water mark is behind it (a restored store). The index prunes what it has saved.
    `CREATE TABLE vector_log(
      seq INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL, item_kind TEXT NOT NULL, item_id INTEGER NOT NULL);
    CREATE INDEX vector_log_by_model ON vector_log(model, seq);
    CREATE TRIGGER embeddings_log_ai AFTER INSERT ON embeddings BEGIN
      INSERT INTO vector_log(model, item_kind, item_id) VALUES (new.model, new.item_kind, new.item_id);
    END;
    CREATE TRIGGER embeddings_log_ad AFTER DELETE ON embeddings BEGIN
      INSERT INTO vector_log(model, item_kind, item_id) VALUES (old.model, old.item_kind, old.item_id);
    END;
    CREATE TRIGGER embeddings_log_au AFTER UPDATE ON embeddings BEGIN
      INSERT INTO vector_log(model, item_kind, item_id) VALUES (new.model, new.item_kind, new.item_id);
    END;`,
  ],
  summaries: [
    `CREATE TABLE summaries(
      id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL, from_message_id INTEGER NOT NULL,
      to_message_id INTEGER NOT NULL, text TEXT NOT NULL, model TEXT, created_at INTEGER NOT NULL);
    CREATE INDEX summaries_by_conversation ON summaries(conversation_id, id);
    ${APPLIED}`,
  ],
  meta: [
    `CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL);
    CREATE TABLE schema_versions(store TEXT PRIMARY KEY, version INTEGER NOT NULL, updated_at INTEGER NOT NULL);
    CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    ${APPLIED}`,
  ],
};

/** The schema version this code writes for `store`. */
export function latestVersion(store: StoreName): number {
  return MIGRATIONS[store].length;
}

/** The file name of a store inside the db dir. */
export function storeFile(store: StoreName): string {
  return `${store}.db`;
}

/** The seven open connections. */
export type Stores = Record<StoreName, DatabaseSync>;

const SQLITE_HEADER = "SQLite format 3\0";

function corrupt(path: string, why: string, cause?: unknown): TabAgentError {
  return new TabAgentError(
    "storage_corrupt",
    `The database file ${path} ${why}. TabAgent will not overwrite it: restore a backup ('tabagent restore <dir>') or move the file away.`,
    { path },
    { cause },
  );
}

function describeOpenError(path: string, error: unknown): TabAgentError {
  if (error instanceof TabAgentError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/not a database|malformed|corrupt/i.test(message)) return corrupt(path, `is damaged (${message})`, error);
  if (/readonly|read-only|unable to open|permission/i.test(message)) {
    return new TabAgentError(
      "config_invalid",
      `The database file ${path} cannot be opened for writing (${message}); check that --db-path is writable`,
      { path },
      { cause: error },
    );
  }
  return new TabAgentError("internal", `Opening ${path} failed: ${message}`, { path }, { cause: error });
}

function headerOf(path: string): { size: number; header: string } | null {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw describeOpenError(path, error);
  }
  try {
    const size = file.statSync().size;
    const bytes = new Uint8Array(16);
    const read = file.readSync(bytes) ?? 0;
    return { size, header: new TextDecoder("latin1").decode(bytes.subarray(0, read)) };
  } finally {
    file.close();
  }
}

/** Applies the connection settings every read-write connection uses. */
function configure(db: DatabaseSync, path: string): void {
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  const mode = (db.prepare("PRAGMA journal_mode = WAL").get() as { journal_mode: string }).journal_mode;
  if (mode !== "wal") throw corrupt(path, `could not be switched to WAL (journal_mode is ${mode})`);
  db.exec(`PRAGMA synchronous = ${SYNCHRONOUS}; PRAGMA foreign_keys = ON;`);
  db.exec(`PRAGMA cache_size = -${CACHE_KIB}; PRAGMA mmap_size = ${MMAP_BYTES};`);
}

/**
 * Opens (creating if absent) one store at `path` and migrates it. Refuses a file that is not
 * SQLite, belongs to something else, fails `quick_check`, or has a schema newer than this code.
 */
export function openStore(store: StoreName, path: string): DatabaseSync {
  const head = headerOf(path);
  if (head && head.size > 0 && head.header !== SQLITE_HEADER) throw corrupt(path, "is not a SQLite database");
  // A zero-length file with no WAL holds nothing: it is what a crash during the very first open leaves.
  const fresh = !head || (head.size === 0 && !pathExistsSync(`${path}-wal`));
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path);
    configure(db, path);
    const appId = (db.prepare("PRAGMA application_id").get() as { application_id: number }).application_id;
    const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_schema").get() as { n: number }).n;
    const expected = applicationId(store);
    if (appId !== expected && !(appId === 0 && tables === 0 && fresh)) {
      const owner = STORE_NAMES.find((name) => applicationId(name) === appId);
      throw corrupt(
        path,
        owner
          ? `holds TabAgent's '${owner}' store, not '${store}'`
          : `is not a TabAgent '${store}' store (application_id ${appId})`,
      );
    }
    const check = db.prepare("PRAGMA quick_check").all() as { quick_check: string }[];
    if (check.length !== 1 || check[0].quick_check !== "ok") {
      throw corrupt(path, `failed its integrity check (${check.slice(0, 3).map((r) => r.quick_check).join("; ")})`);
    }
    migrate(db, store, path);
    return db;
  } catch (error) {
    db?.close();
    throw describeOpenError(path, error);
  }
}

function migrate(db: DatabaseSync, store: StoreName, path: string): void {
  const current = (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
  const latest = latestVersion(store);
  if (current > latest) {
    throw new TabAgentError(
      "storage_corrupt",
      `The database file ${path} has schema version ${current}, newer than this TabAgent knows (${latest}); ` +
        "upgrade TabAgent, or restore a backup made by this version",
      { path, version: current, supported: latest },
    );
  }
  for (let version = current; version < latest; version++) {
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(MIGRATIONS[store][version]);
      db.exec(`PRAGMA application_id = ${applicationId(store)}; PRAGMA user_version = ${version + 1}`);
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
  }
}

/** The schema version of an open store. */
export function schemaVersion(db: DatabaseSync): number {
  return (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
}

/**
 * Opens all seven stores under `dir` (created if missing), or none: on any failure the ones
 * already open are closed and the error names the file.
 */
export function openStores(dir: string): Stores {
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new TabAgentError(
      "config_invalid",
      `The database directory ${dir} cannot be created (${error instanceof Error ? error.message : error}); ` +
        "check --db-path",
      { path: dir },
      { cause: error },
    );
  }
  // An existing --db-path keeps the mode it was made with: set it, the files hold every conversation.
  makePrivateSync(dir, "dir");
  const opened: Partial<Stores> = {};
  try {
    for (const store of STORE_NAMES) {
      opened[store] = openStore(store, `${dir}/${storeFile(store)}`);
      makeStoreFilesPrivateSync(`${dir}/${storeFile(store)}`);
    }
  } catch (error) {
    for (const db of Object.values(opened)) db.close();
    throw error;
  }
  const stores = opened as Stores;
  const now = Date.now();
  const record = stores.meta.prepare(
    "INSERT INTO schema_versions(store, version, updated_at) VALUES (?, ?, ?) " +
      "ON CONFLICT(store) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at " +
      "WHERE version <> excluded.version",
  );
  for (const store of STORE_NAMES) record.run(store, schemaVersion(stores[store]), now);
  return stores;
}

/** Opens one store read-only (for search workers and backup verification); no migration. */
export function openStoreReadOnly(path: string): DatabaseSync {
  try {
    const db = new DatabaseSync(path, { readOnly: true });
    db.exec(
      `PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}; PRAGMA cache_size = -${CACHE_KIB}; PRAGMA mmap_size = ${MMAP_BYTES}`,
    );
    return db;
  } catch (error) {
    throw describeOpenError(path, error);
  }
}

/** Closes every store, checkpointing the WAL so the files stand alone. */
export function closeStores(stores: Stores): void {
  for (const store of STORE_NAMES) {
    const db = stores[store];
    if (!db.isOpen) continue;
    try {
      db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } finally {
      db.close();
    }
  }
}
