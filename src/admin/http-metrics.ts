/**
 * Counts of the HTTP API's requests by method, route and status, and their durations by route,
 * for `GET /v1/metrics` (`conclave_http_requests_total`, `conclave_http_request_duration_seconds`).
 * The route is the registered pattern (`/v1/kv/*`, `/v1/leases/:id/keepalive`), never the path a
 * client sent, and a request no route matched counts as `unmatched`: series stay few however
 * many keys or bad paths clients use. A duration runs from the request's headers to the answer
 * handed to Node (for a watch: until its stream starts).
 *
 * @example
 * ```ts
 * const metrics = new HttpMetrics();
 * metrics.record("PUT", "/v1/kv/*", 200, 0.0031);
 * renderFamilies(metrics.families());
 * ```
 */
import { Histogram } from "../lib/histogram.ts";
import type { MetricFamily } from "./metrics.ts";

/** Upper bounds (seconds) of the duration buckets. */
export const httpDurationBucketsSeconds: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Methods kept as they are; any other counts as "other". */
const knownMethods: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "PUT",
  "POST",
  "DELETE",
  "PATCH",
  "OPTIONS",
]);

/**
 * Most distinct (method, route, status) series kept; later ones count under route "other". The
 * routes are a fixed list, so this is only a guard against a bug labelling by something unbounded.
 */
const seriesMax = 500;

interface RequestSeries {
  readonly method: string;
  readonly route: string;
  readonly code: string;
  count: number;
}

export class HttpMetrics {
  readonly #requests = new Map<string, RequestSeries>();
  readonly #durations = new Map<string, Histogram>();

  /** One answered request. */
  record(method: string, route: string, status: number, seconds: number): void {
    const knownMethod = knownMethods.has(method) ? method : "other";
    const code = String(status);
    let key = `${knownMethod} ${route} ${code}`;
    let series = this.#requests.get(key);
    if (series === undefined) {
      const kept = this.#requests.size < seriesMax ? route : "other";
      key = `${knownMethod} ${kept} ${code}`;
      series = this.#requests.get(key);
      if (series === undefined) {
        series = { method: knownMethod, route: kept, code, count: 0 };
        this.#requests.set(key, series);
      }
    }
    series.count++;
    const durationRoute = this.#durations.has(route) || this.#durations.size < seriesMax ? route : "other";
    let duration = this.#durations.get(durationRoute);
    if (duration === undefined) {
      duration = new Histogram(httpDurationBucketsSeconds);
      this.#durations.set(durationRoute, duration);
    }
    duration.observe(seconds);
  }

  families(): MetricFamily[] {
    const series = [...this.#durations].map(([route, histogram]) => ({
      labels: { route },
      ...histogram.snapshot(),
    }));
    return [
      {
        name: "conclave_http_requests_total",
        help: "HTTP API requests answered, by method, route (the registered pattern) and status code.",
        type: "counter",
        samples: [...this.#requests.values()].map((s) => ({
          labels: { method: s.method, route: s.route, code: s.code },
          value: s.count,
        })),
      },
      {
        name: "conclave_http_request_duration_seconds",
        help: "Time from a request's headers to its answer handed to Node, by route.",
        type: "histogram",
        bucketsSeconds: httpDurationBucketsSeconds,
        series,
      },
    ];
  }
}
