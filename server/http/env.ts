/** The Hono environment of every route (its own file: router.ts and problem.ts both need it). @module */
import type { Logger } from "../log/mod.ts";

/** Per-request values every handler can read with `c.get()`. */
export interface HttpEnv {
  Variables: {
    requestId: string;
    log: Logger;
    /** The request's `Origin` when it is an allowed one: its response gets CORS headers. */
    corsOrigin?: string;
  };
}
