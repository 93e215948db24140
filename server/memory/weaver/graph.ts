/**
 * Reading the knowledge graph: the entities within `depth` hops of one entity (either direction of
 * a relation), found with one recursive CTE, with the relations among them and each one's distance.
 */
import { z } from "zod";
import { validationError } from "../../errors/mod.ts";
import type { MemoryContext } from "../_context.ts";
import {
  entityFromRow,
  type EntityRow,
  ID_PREFIX,
  notFound,
  relationFromRow,
  type RelationRow,
  requireId,
} from "../_rows.ts";
import { EntitySchema, RelationSchema } from "../types.ts";

/** The deepest traversal one call may ask for. */
export const MAX_GRAPH_DEPTH = 4;
/** Most entities one traversal returns (nearest first). */
export const MAX_GRAPH_NODES = 500;

/** What {@link entityNeighbors} returns. */
export const NeighborhoodSchema = z.object({
  entity: EntitySchema,
  neighbors: z.array(z.object({ entity: EntitySchema, depth: z.number().int() })),
  relations: z.array(RelationSchema),
});
/** An entity's neighbourhood. */
export type Neighborhood = z.infer<typeof NeighborhoodSchema>;

/** The k-hop neighbourhood of entity `id` (1 ≤ depth ≤ {@link MAX_GRAPH_DEPTH}). */
export async function entityNeighbors(ctx: MemoryContext, id: string, depth = 1): Promise<Neighborhood> {
  if (!Number.isInteger(depth) || depth < 1 || depth > MAX_GRAPH_DEPTH) {
    throw validationError("neighbors", [{
      path: ["depth"],
      message: `must be an integer from 1 to ${MAX_GRAPH_DEPTH}`,
    }]);
  }
  await ctx.ready();
  const n = requireId(ID_PREFIX.entity, "entity", String(id));
  const db = ctx.db;
  const root = db.get<EntityRow>("knowledge", "SELECT * FROM entities WHERE id = ?", n);
  if (!root) throw notFound("entity", String(id));
  // UNION (not UNION ALL) drops repeated (node, depth) pairs, so cycles end at the depth limit
  const reached = db.all<EntityRow & { depth: number }>(
    "knowledge",
    `WITH RECURSIVE walk(node, depth) AS (
       SELECT ?, 0
       UNION
       SELECT CASE WHEN r.subject_id = walk.node THEN r.object_id ELSE r.subject_id END, walk.depth + 1
       FROM walk JOIN relations r ON r.subject_id = walk.node OR r.object_id = walk.node
       WHERE walk.depth < ?
     )
     SELECT e.*, min(walk.depth) AS depth FROM walk JOIN entities e ON e.id = walk.node
     WHERE walk.node <> ? GROUP BY e.id ORDER BY depth, e.id LIMIT ?`,
    n,
    depth,
    n,
    MAX_GRAPH_NODES,
  );
  const ids = [n, ...reached.map((row) => row.id)];
  const marks = ids.map(() => "?").join(", ");
  const relations = db.all<RelationRow>(
    "knowledge",
    `SELECT * FROM relations WHERE subject_id IN (${marks}) AND object_id IN (${marks}) ORDER BY id`,
    ...ids,
    ...ids,
  );
  return {
    entity: entityFromRow(root),
    neighbors: reached.map(({ depth, ...row }) => ({ entity: entityFromRow(row as EntityRow), depth })),
    relations: relations.map(relationFromRow),
  };
}
