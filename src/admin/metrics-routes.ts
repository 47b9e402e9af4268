/**
 * `GET /v1/metrics`: Prometheus metrics of this node (metrics.ts lists Conclave's; prom-client's
 * default collectors add the Node.js process: CPU, memory, heap, event-loop delay, GC). Under
 * `/v1/`, so it needs the API token like every other `/v1` route: in Prometheus,
 * `authorization: { credentials_file: <the token file> }` (docs/operations.md "Metrics").
 *
 * The process collectors start at the first scrape, so a node nobody scrapes pays nothing for
 * them (prom-client's event-loop monitor wakes the process on a timer).
 */
import { collectDefaultMetrics, Registry } from "prom-client";
import type { RouteModule } from "./admin-context.ts";
import { nodeFamilies, renderFamilies } from "./metrics.ts";

/** How often prom-client samples the event-loop delay, in ms (its default, 10, wakes an idle node 100 times a second). */
const eventLoopSampleMs = 100;

export const registerMetricsRoutes: RouteModule = (app, context) => {
  let processMetrics: Registry | null = null;
  app.get("/v1/metrics", async (c) => {
    if (processMetrics === null) {
      processMetrics = new Registry();
      collectDefaultMetrics({ register: processMetrics, eventLoopMonitoringPrecision: eventLoopSampleMs });
    }
    const families = [...nodeFamilies(context.node.metrics()), ...context.httpMetrics.families()];
    const text = renderFamilies(families) + (await processMetrics.metrics());
    return c.body(text, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  });
};
