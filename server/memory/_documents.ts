/**
 * Pages the user brought into a chat, kept as documents: URL, title, time and the text in chunks
 * (full-text indexed by triggers, embedded through the outbox like messages). A document goes with
 * its conversation; deleting it takes its chunks' embeddings along through the outbox.
 */
import { type MemoryContext, parse } from "./_context.ts";
import { conversationRow } from "./_conversations.ts";
import { OUTBOX_OPS } from "./_outbox.ts";
import { formatId, ID_PREFIX, iso, notFound, requireId } from "./_rows.ts";
import { type Document, type NewDocument, NewDocumentSchema } from "./types.ts";

/** Characters a chunk aims for: a few sentences, well inside MiniLM's 256 tokens. */
export const CHUNK_CHARS = 800;

/** Splits `text` into chunks of about {@link CHUNK_CHARS}, at paragraph, then sentence, then word ends. */
export function chunkText(text: string, size = CHUNK_CHARS): string[] {
  const chunks: string[] = [];
  let current = "";
  const pieces = text.replace(/\r\n?/g, "\n").split(/(?<=\n\n)|(?<=[.!?])\s+/);
  for (const raw of pieces) {
    let piece = raw.trim();
    while (piece.length > size) {
      const cut = piece.lastIndexOf(" ", size) > size / 2 ? piece.lastIndexOf(" ", size) : size;
      if (current) chunks.push(current), current = "";
      chunks.push(piece.slice(0, cut).trim());
      piece = piece.slice(cut).trim();
    }
    if (!piece) continue;
    if (current && current.length + 1 + piece.length > size) {
      chunks.push(current);
      current = piece;
    } else current = current ? `${current} ${piece}` : piece;
  }
  if (current) chunks.push(current);
  return chunks;
}

interface DocumentRow {
  id: number;
  conversation_id: string | null;
  url: string;
  title: string | null;
  created_at: number;
}

function documentOf(row: DocumentRow, chunks: number): Document {
  return {
    id: formatId(ID_PREFIX.document, row.id),
    conversation_id: row.conversation_id,
    url: row.url,
    title: row.title,
    chunks,
    created_at: iso(row.created_at),
  };
}

/**
 * Keeps a page as a document in chunks, in one transaction. The same page (URL and text) brought
 * into the same conversation again is kept once: the existing document is returned, so asking
 * several questions about a page does not store it on every question.
 */
export async function addDocument(ctx: MemoryContext, input: NewDocument): Promise<Document> {
  const parsed = parse(NewDocumentSchema, input, "document");
  await ctx.writable();
  const db = ctx.db;
  if (parsed.conversation_id) conversationRow(db, parsed.conversation_id);
  const chunks = chunkText(parsed.text);
  const now = Date.now();
  const row = db.transaction("conversations", () => {
    const kept = sameDocument(ctx, parsed.conversation_id ?? null, parsed.url, chunks);
    if (kept) return kept;
    const doc = db.get<DocumentRow>(
      "conversations",
      "INSERT INTO documents(conversation_id, url, title, created_at) VALUES (?, ?, ?, ?) RETURNING *",
      parsed.conversation_id ?? null,
      parsed.url,
      parsed.title ?? null,
      now,
    )!;
    chunks.forEach((text, seq) =>
      db.run(
        "conversations",
        "INSERT INTO document_chunks(document_id, seq, text, created_at) VALUES (?, ?, ?, ?)",
        doc.id,
        seq,
        text,
        now,
      )
    );
    return doc;
  });
  return documentOf(row, chunks.length);
}

/** A document of `conversationId` with this URL whose chunks are exactly `chunks`, if any. */
function sameDocument(
  ctx: MemoryContext,
  conversationId: string | null,
  url: string,
  chunks: string[],
): DocumentRow | null {
  const candidates = ctx.db.all<DocumentRow>(
    "conversations",
    "SELECT * FROM documents WHERE url = ? AND conversation_id IS ? ORDER BY id DESC",
    url,
    conversationId,
  );
  for (const candidate of candidates) {
    const stored = ctx.db.all<{ text: string }>(
      "conversations",
      "SELECT text FROM document_chunks WHERE document_id = ? ORDER BY seq",
      candidate.id,
    );
    if (stored.length === chunks.length && stored.every((c, i) => c.text === chunks[i])) return candidate;
  }
  return null;
}

/** A document (without its text). */
export async function getDocument(ctx: MemoryContext, id: string): Promise<Document> {
  await ctx.ready();
  const n = requireId(ID_PREFIX.document, "document", String(id));
  const row = ctx.db.get<DocumentRow>("conversations", "SELECT * FROM documents WHERE id = ?", n);
  if (!row) throw notFound("document", String(id));
  const { chunks } = ctx.db.get<{ chunks: number }>(
    "conversations",
    "SELECT count(*) AS chunks FROM document_chunks WHERE document_id = ?",
    n,
  )!;
  return documentOf(row, chunks);
}

/** Deletes a document and its chunks; their embeddings follow through the outbox. */
export async function deleteDocument(ctx: MemoryContext, id: string): Promise<void> {
  await ctx.writable();
  const db = ctx.db;
  const n = requireId(ID_PREFIX.document, "document", String(id));
  db.transaction("conversations", () => {
    const chunks = db.all<{ id: number }>("conversations", "SELECT id FROM document_chunks WHERE document_id = ?", n)
      .map((row) => row.id);
    if (db.run("conversations", "DELETE FROM documents WHERE id = ?", n).changes === 0) {
      throw notFound("document", String(id));
    }
    db.outboxAdd("conversations", OUTBOX_OPS.documentDeleted, { id: n, chunks });
  });
}
