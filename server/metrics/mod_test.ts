import assert from "node:assert/strict";
import { MetricsRegistry } from "./mod.ts";

Deno.test("renders counters, gauges and cumulative histogram buckets", () => {
  const registry = new MetricsRegistry();
  const counter = registry.counter("t_requests_total", "Requests", ["route"]);
  counter.inc({ route: "/a" });
  counter.inc({ route: "/a" }, 2);
  counter.inc({ route: 'we"ird' });
  registry.gauge("t_up", "Up", [], (g) => g.set(undefined, 1));
  const histogram = registry.histogram("t_seconds", "Latency", ["route"], [0.1, 1]);
  histogram.observe({ route: "/a" }, 0.05);
  histogram.observe({ route: "/a" }, 0.5);
  histogram.observe({ route: "/a" }, 5);
  const text = registry.render();
  assert.match(text, /# TYPE t_requests_total counter\nt_requests_total\{route="\/a"\} 3\n/);
  assert.match(text, /t_requests_total\{route="we\\"ird"\} 1/);
  assert.match(text, /t_up 1/);
  assert.match(text, /t_seconds_bucket\{route="\/a",le="0.1"\} 1\nt_seconds_bucket\{route="\/a",le="1"\} 2\n/);
  assert.match(
    text,
    /t_seconds_bucket\{route="\/a",le="\+Inf"\} 3\nt_seconds_sum\{route="\/a"\} 5.55\nt_seconds_count\{route="\/a"\} 3/,
  );
});

Deno.test("registering a name twice returns the same metric", () => {
  const registry = new MetricsRegistry();
  const a = registry.counter("t_total", "x");
  const b = registry.counter("t_total", "x");
  a.inc();
  assert.deepEqual(b.get(), 1);
});
