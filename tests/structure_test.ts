/**
 * The code's shape as a specification: no hand-written function in `server/` or `scripts/` runs past
 * {@link MAX_FUNCTION_LINES} lines, and `server/`'s import graph has no cycles. Generated code
 * (`server/ml/_generated/`) is exempt.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
/** The bar ("no function is over about 80 lines"), with the signature and closing brace counted. */
const MAX_FUNCTION_LINES = 80;
const SKIPPED_DIRS = new Set(["_generated", "node_modules", ".fixtures"]);

async function* typeScriptFiles(dir: URL): AsyncGenerator<URL> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory && !SKIPPED_DIRS.has(entry.name)) yield* typeScriptFiles(new URL(`${entry.name}/`, dir));
    else if (entry.isFile && entry.name.endsWith(".ts")) yield new URL(entry.name, dir);
  }
}

/** Reports every function, method and arrow function with its source range. */
const functionsPlugin: Deno.lint.Plugin = {
  name: "structure",
  rules: {
    functions: {
      create(context) {
        const report = (node: Deno.lint.Node) => context.report({ node, message: node.type });
        return { FunctionDeclaration: report, FunctionExpression: report, ArrowFunctionExpression: report };
      },
    },
  },
};

function lineOf(source: string, offset: number): number {
  let line = 1;
  for (let i = source.indexOf("\n"); i !== -1 && i < offset; i = source.indexOf("\n", i + 1)) line++;
  return line;
}

Deno.test("no function in server/ or scripts/ is over 80 lines", async () => {
  const tooLong: string[] = [];
  for (const dir of ["server/", "scripts/"]) {
    for await (const file of typeScriptFiles(new URL(dir, ROOT))) {
      const source = await Deno.readTextFile(file);
      const path = file.pathname.slice(ROOT.pathname.length);
      for (const { range: [start, end], message } of Deno.lint.runPlugin(functionsPlugin, path, source)) {
        const first = lineOf(source, start);
        const lines = lineOf(source, end) - first + 1;
        if (lines > MAX_FUNCTION_LINES) tooLong.push(`${path}:${first} ${message} (${lines} lines)`);
      }
    }
  }
  assert.deepEqual(tooLong, []);
});

interface DenoInfo {
  modules: { specifier: string; dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[] }[];
}

/** The strongly connected components with more than one module (or a module importing itself). */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, index.get(next)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || graph.get(node)?.includes(node)) found.push(component.sort());
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

Deno.test("server/'s import graph has no cycles", async () => {
  const server = new URL("server/", ROOT).href;
  // One root importing every server module, so workers and other dynamically loaded files count too.
  const dir = await Deno.makeTempDir();
  const root = `${dir}/all.ts`;
  const imports: string[] = [];
  for await (const file of typeScriptFiles(new URL("server/", ROOT))) imports.push(`import "${file.href}";`);
  await Deno.writeTextFile(root, imports.join("\n"));
  try {
    const { stdout, stderr, success } = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--config", new URL("deno.json", ROOT).pathname, root],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(success, true, new TextDecoder().decode(stderr));
    const info: DenoInfo = JSON.parse(new TextDecoder().decode(stdout));
    const graph = new Map<string, string[]>();
    for (const module of info.modules) {
      if (!module.specifier.startsWith(server)) continue;
      const deps = (module.dependencies ?? []).flatMap((d) => [d.code?.specifier, d.type?.specifier])
        .filter((s): s is string => s !== undefined && s.startsWith(server));
      graph.set(module.specifier.slice(server.length), [...new Set(deps)].map((s) => s.slice(server.length)));
    }
    assert.equal(graph.size > 100, true, "the graph should hold every server module");
    assert.deepEqual(cycles(graph), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
