/**
 * The baseline for the `http` suite: a bare `Deno.serve` answering every request with the same
 * JSON our `/v1/health` returns, with no framework and no middleware. Prints its URL on stdout.
 * @module
 */
const body = Deno.args[0] ?? "{}";
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  () => new Response(body, { headers: { "content-type": "application/json" } }),
);
console.log(`http://127.0.0.1:${server.addr.port}`);
Deno.addSignalListener("SIGTERM", () => server.shutdown().then(() => Deno.exit(0)));
