/** The tool_results store: each tool call's arguments, result, status and duration. */
import type { SQLInputValue } from "node:sqlite";
import { MEMORY_MAX_MESSAGE_BYTES } from "../config/mod.ts";
import { type MemoryContext, pageOf, pageOptions, parse, type StoreAccess, tooLarge } from "./_context.ts";
import {
  decodeCursor,
  ID_PREFIX,
  jsonOrNull,
  notFound,
  requireId,
  toolResultFromRow,
  type ToolResultRow,
} from "./_rows.ts";
import { type NewToolResult, NewToolResultSchema, type Page, type PageOptions, type ToolResult } from "./types.ts";

/** Records one tool call's outcome. */
export async function recordToolResult(ctx: MemoryContext, input: NewToolResult): Promise<ToolResult> {
  const parsed = parse(NewToolResultSchema, input, "tool result");
  const args = jsonOrNull(parsed.arguments);
  const result = jsonOrNull(parsed.result);
  const bytes = (args?.length ?? 0) + (result?.length ?? 0);
  if (bytes > MEMORY_MAX_MESSAGE_BYTES) throw tooLarge("The tool result", bytes);
  await ctx.writable();
  return toolResultFromRow(insertToolResult(ctx.db, parsed, Date.now()));
}

/** Inserts a tool result created at `createdAt` (ms); the live call and import both write here. */
export function insertToolResult(db: StoreAccess, input: NewToolResult, createdAt: number): ToolResultRow {
  return db.get<ToolResultRow>(
    "tool_results",
    `INSERT INTO tool_results(conversation_id, message_id, call_id, tool_name, arguments, result, status, error,
         duration_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
    input.conversation_id ?? null,
    input.message_id ?? null,
    input.call_id ?? null,
    input.tool_name,
    jsonOrNull(input.arguments),
    jsonOrNull(input.result),
    input.status,
    input.error ?? null,
    input.duration_ms,
    createdAt,
  )!;
}

/** Tool result `id`. */
export async function getToolResult(ctx: MemoryContext, id: string): Promise<ToolResult> {
  await ctx.ready();
  const n = requireId(ID_PREFIX.tool_result, "tool result", String(id));
  const row = ctx.db.get<ToolResultRow>("tool_results", "SELECT * FROM tool_results WHERE id = ?", n);
  if (!row) throw notFound("tool result", String(id));
  return toolResultFromRow(row);
}

/** Tool results, optionally of one conversation or tool, oldest first. */
export async function listToolResults(
  ctx: MemoryContext,
  options: PageOptions & { conversationId?: string; toolName?: string } = {},
): Promise<Page<ToolResult>> {
  const { limit, cursor } = pageOptions({ cursor: options.cursor, limit: options.limit });
  await ctx.ready();
  const after = cursor ? decodeCursor<[number]>(cursor, ["number"])[0] : 0;
  const where = ["id > ?"];
  const args: SQLInputValue[] = [after];
  if (options.conversationId !== undefined) {
    where.push("conversation_id = ?");
    args.push(String(options.conversationId));
  }
  if (options.toolName !== undefined) {
    where.push("tool_name = ?");
    args.push(String(options.toolName));
  }
  const rows = ctx.db.all<ToolResultRow>(
    "tool_results",
    `SELECT * FROM tool_results WHERE ${where.join(" AND ")} ORDER BY id LIMIT ?`,
    ...args,
    limit + 1,
  );
  return pageOf(rows, limit, toolResultFromRow, (row) => [row.id]);
}
