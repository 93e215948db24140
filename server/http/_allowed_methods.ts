/**
 * Which methods a path is served with, for the `405 Method Not Allowed` a request with another
 * method gets (RFC 9110 §15.5.6: with an `Allow` header naming them) instead of a 404 that says the
 * path does not exist. Read from the app's OpenAPI document and route table, so it cannot drift
 * from either.
 * @module
 */

/** The methods Hono registers real routes under; middleware is registered under "ALL". */
const ROUTE_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** `text` matched literally in a regular expression. */
function literal(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
}

/** One path pattern of the route table and the methods it is served with. */
interface PathMethods {
  pattern: RegExp;
  methods: Set<string>;
}

/**
 * A Hono path pattern as an anchored regular expression: `:name` is one segment, `:name{re}` the
 * given expression, `*` anything.
 */
export function patternToRegExp(path: string): RegExp {
  let source = "";
  for (let i = 0; i < path.length;) {
    const char = path[i];
    if (char === ":") {
      let end = i + 1;
      while (end < path.length && /[A-Za-z0-9_]/.test(path[end])) end++;
      if (path[end] === "{") {
        // The parameter's own expression: balanced braces, as Hono reads it.
        let depth = 0;
        let close = end;
        for (; close < path.length; close++) {
          if (path[close] === "{") depth++;
          else if (path[close] === "}" && --depth === 0) break;
        }
        source += `(?:${path.slice(end + 1, close)})`;
        i = close + 1;
      } else {
        source += "[^/]+";
        i = end;
      }
      if (path[i] === "?") i++; // an optional parameter still needs its segment to say which route it is
    } else if (char === "*") {
      source += ".*";
      i++;
    } else {
      source += literal(char);
      i++;
    }
  }
  return new RegExp(`^${source}/?$`);
}

/** An OpenAPI path template (`/v1/models/{org}/{name}`) as an anchored regular expression. */
export function templateToRegExp(template: string): RegExp {
  const source = template.split(/(\{[^}]+\})/).map((part) => part.startsWith("{") ? "[^/]+" : literal(part))
    .join("");
  return new RegExp(`^${source}/?$`);
}

function tableOf(
  routes: readonly { method: string; path: string }[],
  toRegExp: (path: string) => RegExp,
): PathMethods[] {
  const byPath = new Map<string, Set<string>>();
  for (const route of routes) {
    const method = route.method.toUpperCase();
    if (!ROUTE_METHODS.has(method) || route.path === "/*" || route.path === "*") continue;
    const methods = byPath.get(route.path) ?? new Set<string>();
    methods.add(method);
    if (method === "GET") methods.add("HEAD");
    byPath.set(route.path, methods);
  }
  return [...byPath].map(([path, methods]) => ({ pattern: toRegExp(path), methods }));
}

function methodsIn(table: PathMethods[], path: string): string[] | null {
  const methods = new Set<string>();
  for (const entry of table) {
    if (entry.pattern.test(path)) { for (const method of entry.methods) methods.add(method); }
  }
  return methods.size ? [...methods].sort() : null;
}

/**
 * Returns a function giving the methods `path` is served with (HEAD wherever GET is), or null when
 * no route serves the path with any method. A path the OpenAPI document describes gets the methods
 * it documents (`documented`: its operations, with `{param}` templates); the document is the
 * contract, and one Hono route can serve several documented paths (`/v1/models/:rest{.+}`). Other
 * paths (the docs pages) get their Hono routes' methods (`routes`). Both are read at the first
 * call, once every router is mounted.
 *
 * @example
 * ```ts
 * const allowed = allowedMethods(() => app.routes, () => [{ method: "get", path: "/v1/health" }]);
 * allowed("/v1/health"); // ["GET", "HEAD"]
 * ```
 */
export function allowedMethods(
  routes: () => readonly { method: string; path: string }[],
  documented: () => readonly { method: string; path: string }[] = () => [],
): (path: string) => string[] | null {
  let tables: { documented: PathMethods[]; routes: PathMethods[] } | undefined;
  return (path) => {
    tables ??= { documented: tableOf(documented(), templateToRegExp), routes: tableOf(routes(), patternToRegExp) };
    return methodsIn(tables.documented, path) ?? methodsIn(tables.routes, path);
  };
}
