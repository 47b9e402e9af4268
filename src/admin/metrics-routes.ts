/**
 * `GET /v1/metrics`: Prometheus metrics of this node (metrics.ts lists Conclave's; prom-client's
 * default collectors add the Node.js process: CPU, memory, heap, event-loop delay, GC). Under
 * `/v1/`, so it needs the API token like every other `/v1` route: in Prometheus,
 * `authorization: { credentials_file: <the token file> }` (docs/operations.md "Metrics").
 *
 * prom-client is loaded and its collectors started at the first scrape, so a node nobody scrapes
 * pays nothing for them: not the module's start-up and memory, nor the event-loop monitor's
 * timer that wakes the process. The CPU counters still count from the start of the process.
 */
import type { Registry } from "prom-client";
import type { RouteModule } from "./admin-context.ts";
import { nodeFamilies, renderFamilies } from "./metrics.ts";

/** How often prom-client samples the event-loop delay, in ms (its default, 10, wakes an idle node 100 times a second). */
const eventLoopSampleMs = 100;

export const registerMetricsRoutes: RouteModule = (app, context) => {
  // One promise, so that two first scrapes at once register the collectors once.
  let processMetrics: Promise<Registry> | null = null;
  app.get("/v1/metrics", async (c) => {
    processMetrics ??= import("prom-client").then(({ collectDefaultMetrics, Registry }) => {
      const registry = new Registry();
      const usedBefore = process.cpuUsage();
      collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: eventLoopSampleMs });
      countCpuSinceStart(registry, usedBefore);
      return registry;
    });
    const processText = await (await processMetrics).metrics();
    const families = [...nodeFamilies(context.node.metrics()), ...context.httpMetrics.families()];
    const text = renderFamilies(families) + processText;
    return c.body(text, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  });
};

/**
 * prom-client's CPU counters count from when they are registered (at the first scrape here), not
 * from the start of the process as Prometheus' process collectors do: they get the CPU used
 * before, `process.cpuUsage()` being since start. Read just before registering, so no CPU time
 * is counted twice (what the registration itself used is missed: a few ms at most).
 */
function countCpuSinceStart(registry: Registry, usedBefore: NodeJS.CpuUsage): void {
  const seconds = (micros: number): number => micros / 1e6;
  const counters: [string, number][] = [
    ["process_cpu_user_seconds_total", seconds(usedBefore.user)],
    ["process_cpu_system_seconds_total", seconds(usedBefore.system)],
    ["process_cpu_seconds_total", seconds(usedBefore.user + usedBefore.system)],
  ];
  for (const [name, value] of counters) {
    const metric = registry.getSingleMetric(name);
    if (metric !== undefined && "inc" in metric) metric.inc(value);
  }
}
