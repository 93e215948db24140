/**
 * The baseline for the `http` suite: a bare `Deno.serve` answering every request with the same
 * response our `/v1/health` sends (the JSON body, `content-type`, and an `x-request-id` in the same
 * form), with no framework and no middleware. Prints its URL on stdout.
 *
 * The id is set on the built response, Deno's cheapest way to send a second header: a response
 * constructed with two headers goes through a native response object and costs more.
 * @module
 */
const body = Deno.args[0] ?? "{}";
const prefix = crypto.randomUUID().slice(0, 8);
let sequence = 0;
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  () => {
    const response = new Response(body, { headers: { "content-type": "application/json" } });
    response.headers.set("x-request-id", `${prefix}-${(++sequence).toString(36)}`);
    return response;
  },
);
console.log(`http://127.0.0.1:${server.addr.port}`);
Deno.addSignalListener("SIGTERM", () => server.shutdown().then(() => Deno.exit(0)));
