/**
 * `tabagent memory stats`: what the memory holds, how far the background work is behind, and the
 * state of each vector index. Asks the running server when one answers (its index worker knows
 * the open indexes), and reads the files read-only otherwise.
 * @module
 */
import type { Config } from "../config/mod.ts";
import { readStatsForCommand } from "../memory/mod.ts";
import type { MemoryStats } from "../memory/types.ts";
import { formatBytes } from "./models_command.ts";

/** `tabagent memory stats [--json]`. */
export interface MemoryStatsCommand {
  kind: "memory";
  action: "stats";
  json: boolean;
}

/** The stats as a short report for a terminal. */
export function formatMemoryStats(stats: MemoryStats, where: { dbPath: string; via: "server" | "files" }): string {
  const via = where.via === "server" ? "from the running server" : "read from the files; no server answered";
  const bytes = stats.stores.reduce((sum, store) => sum + store.bytes, 0);
  const rows: [string, string][] = [
    ["conversations", String(stats.conversations)],
    ["messages", String(stats.messages)],
    ["documents", `${stats.documents} (${stats.document_chunks} chunks)`],
    ["facts", String(stats.facts)],
    ["entities", String(stats.entities)],
    ["relations", String(stats.relations)],
    ["tool results", String(stats.tool_results)],
    ["episodes", String(stats.episodes)],
    ["summaries", String(stats.summaries)],
    ["embeddings", String(stats.embeddings)],
  ];
  const kinds = Object.entries(stats.pending_by_kind).map(([kind, n]) => `${kind} ${n}`).join(", ");
  rows.push(["waiting to embed", `${stats.pending_embeddings}${kinds ? ` (${kinds})` : ""}`]);
  rows.push(["outbox backlog", String(stats.outbox_pending)]);
  const width = Math.max(...rows.map(([name]) => name.length));
  const lines = [`Memory at ${where.dbPath} (${formatBytes(bytes)}, ${via})`];
  for (const [name, value] of rows) lines.push(`  ${name.padEnd(width)}  ${value}`);
  lines.push("Vector indexes:");
  if (!stats.indexes.length) lines.push("  none (nothing embedded yet)");
  for (const index of stats.indexes) {
    const dims = index.dimensions === null ? "" : `, ${index.dimensions}-d`;
    const state = index.state === "open"
      ? `open in the server (${index.backend}), ${index.indexed} indexed, ${index.unsaved} unsaved`
      : index.state === "saved"
      ? `saved (${index.backend}), ${index.indexed} indexed`
      : "not built yet (built on first use)";
    const behind = index.behind ? `, ${index.behind} change(s) to catch up` : "";
    lines.push(`  ${index.model}: ${index.vectors} vectors${dims}; ${state}${behind}`);
  }
  return lines.join("\n");
}

/** Runs the command; returns the exit code. */
export async function runMemoryCommand(
  command: MemoryStatsCommand,
  config: Config,
  token: string | null,
): Promise<number> {
  const { stats, via } = await readStatsForCommand(config, token);
  console.log(
    command.json
      ? JSON.stringify({ db_path: config.dbPath, via, ...stats }, null, 2)
      : formatMemoryStats(stats, { dbPath: config.dbPath, via }),
  );
  return 0;
}
