/**
 * Reading the knowledge graph: the entities within `depth` hops of one entity (either direction of
 * a relation), found with one recursive CTE, with the relations among them and each one's distance;
 * and the shortest path between two entities. Both follow current relations only: one whose fact a
 * newer fact retired (`valid_to` set) is history, still listed by the entity's relations.
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

/** Walk every current relation (no extra condition). */
const WALK_ALL = "";
/** Stop walking at the goal: its node is the extra `?` parameter after the depth. */
const WALK_UNTIL_GOAL = "AND walk.node <> ?";

/**
 * The recursive CTE `walk(node, depth)` over current relations in either direction, from the node
 * in its first `?` up to the depth in its second; `extra` narrows which nodes it walks on from.
 * UNION (not UNION ALL) drops repeated (node, depth) pairs, so cycles end at the depth limit.
 */
function walkFrom(extra: typeof WALK_ALL | typeof WALK_UNTIL_GOAL): string {
  return `WITH RECURSIVE walk(node, depth) AS (
       SELECT ?, 0
       UNION
       SELECT CASE WHEN r.subject_id = walk.node THEN r.object_id ELSE r.subject_id END, walk.depth + 1
       FROM walk JOIN relations r ON r.subject_id = walk.node OR r.object_id = walk.node
       WHERE walk.depth < ? AND r.valid_to IS NULL ${extra}
     )`;
}

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
  const reached = db.all<EntityRow & { depth: number }>(
    "knowledge",
    `${walkFrom(WALK_ALL)}
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
    `SELECT * FROM relations WHERE subject_id IN (${marks}) AND object_id IN (${marks}) AND valid_to IS NULL
     ORDER BY id`,
    ...ids,
    ...ids,
  );
  return {
    entity: entityFromRow(root),
    neighbors: reached.map(({ depth, ...row }) => ({ entity: entityFromRow(row as EntityRow), depth })),
    relations: relations.map(relationFromRow),
  };
}

/** The longest path {@link graphPath} looks for. */
export const MAX_PATH_LENGTH = 6;

/** What {@link graphPath} returns: the entities from `from` to `to` and the relation of each hop. */
export const GraphPathSchema = z.object({
  found: z.boolean(),
  length: z.number().int().nullable().describe("Hops from `from` to `to`; null when not connected within max_depth"),
  entities: z.array(EntitySchema).describe("From `from` to `to`, in order"),
  relations: z.array(RelationSchema).describe("relations[i] links entities[i] and entities[i + 1] (either way)"),
}).meta({ id: "GraphPath" });
/** A path between two entities. */
export type GraphPath = z.infer<typeof GraphPathSchema>;

/**
 * The shortest path between two entities over current relations, either direction, at most
 * `maxDepth` hops (1–{@link MAX_PATH_LENGTH}, default 4). A recursive CTE finds each reachable
 * entity's distance from `from` (UNION keeps one row per entity and distance, so cycles stop at the
 * limit); the path is then read back from `to`, one relation at a time to an entity one hop nearer.
 */
export async function graphPath(ctx: MemoryContext, from: string, to: string, maxDepth = 4): Promise<GraphPath> {
  if (!Number.isInteger(maxDepth) || maxDepth < 1 || maxDepth > MAX_PATH_LENGTH) {
    throw validationError("path", [{
      path: ["max_depth"],
      message: `must be an integer from 1 to ${MAX_PATH_LENGTH}`,
    }]);
  }
  await ctx.ready();
  const db = ctx.db;
  const ends = [from, to].map((id) => {
    const n = requireId(ID_PREFIX.entity, "entity", String(id));
    const row = db.get<EntityRow>("knowledge", "SELECT * FROM entities WHERE id = ?", n);
    if (!row) throw notFound("entity", String(id));
    return row;
  });
  const [start, goal] = ends;
  if (start.id === goal.id) return { found: true, length: 0, entities: [entityFromRow(start)], relations: [] };
  const distances = db.all<{ node: number; depth: number }>(
    "knowledge",
    `${walkFrom(WALK_UNTIL_GOAL)}
     SELECT node, min(depth) AS depth FROM walk GROUP BY node`,
    start.id,
    maxDepth,
    goal.id,
  );
  const depthOf = new Map(distances.map((row) => [row.node, row.depth]));
  const length = depthOf.get(goal.id);
  if (length === undefined) return { found: false, length: null, entities: [], relations: [] };
  const nodes = [goal.id];
  const hops: RelationRow[] = [];
  for (let depth = length; depth > 0; depth--) {
    const here = nodes[nodes.length - 1];
    const links = db.all<RelationRow>(
      "knowledge",
      "SELECT * FROM relations WHERE (subject_id = ? OR object_id = ?) AND valid_to IS NULL ORDER BY id",
      here,
      here,
    );
    const step = links.find((r) => depthOf.get(r.subject_id === here ? r.object_id : r.subject_id) === depth - 1)!;
    hops.push(step);
    nodes.push(step.subject_id === here ? step.object_id : step.subject_id);
  }
  nodes.reverse();
  hops.reverse();
  const entities = nodes.map((n) => db.get<EntityRow>("knowledge", "SELECT * FROM entities WHERE id = ?", n)!);
  return { found: true, length, entities: entities.map(entityFromRow), relations: hops.map(relationFromRow) };
}
