/**
 * `deno task bench <suite>`: runs `tests/bench/<suite>.ts` and prints its JSON lines.
 * `deno task bench` alone lists the suites.
 * @module
 */
import { type BenchSuite, createContext } from "./_harness.ts";

const here = new URL("./", import.meta.url);

async function suites(): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(here)) {
    if (entry.isFile && entry.name.endsWith(".ts") && !entry.name.startsWith("_") && entry.name !== "main.ts") {
      names.push(entry.name.slice(0, -3));
    }
  }
  return names.sort();
}

const [name] = Deno.args;
const available = await suites();
if (!name || !available.includes(name)) {
  console.error(`usage: deno task bench <suite>\nsuites: ${available.join(", ")}`);
  Deno.exit(name ? 2 : 0);
}
const module = await import(new URL(`${name}.ts`, here).href) as { default: BenchSuite };
await module.default(createContext(name));
