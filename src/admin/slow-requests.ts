/**
 * The slow-request log: a data request (KV or SQL, the plain routes) that took at least
 * `log.slow_request_ms` from its headers to its answer is logged at warn with every step the
 * node measured (src/runtime/request-trace.ts), as etcd logs its "apply request took too long"
 * traces. The steps say where the time went: waiting for the node's loop, its own log write,
 * the followers (committed), the apply, or the hop to the primary and back.
 *
 * Bounded: at most `log.slow_request_logs_per_second` lines a second, so an overloaded node,
 * where every request is slow, does not also flood its log; the next line says how many were
 * left out. `slow_request_ms = 0` logs every request up to that rate (a sample, for latency work).
 *
 * @example
 * ```ts
 * const slow = new SlowRequestLog({ thresholdMs: 1000, linesPerSecondMax: 10, logger });
 * slow.finish(trace, "PUT", "/v1/kv/a", 200);
 * ```
 */
import type { Logger } from "../ports/logger.ts";
import { type RequestTrace, roundMicros } from "../runtime/request-trace.ts";

export interface SlowRequestLogOptions {
  /** Requests at least this slow are logged (0: every one). */
  readonly thresholdMs: number;
  /** Most lines a second; the rest are counted and reported on the next line. */
  readonly linesPerSecondMax: number;
  readonly logger: Logger;
  /** Milliseconds, for the rate limit (default `performance.now`). */
  readonly nowMs?: () => number;
}

/** Longest path kept in a log line (a key can be 4 KiB). */
const pathCharsMax = 200;

export class SlowRequestLog {
  readonly #options: SlowRequestLogOptions;
  readonly #nowMs: () => number;
  #windowStartMs = Number.NEGATIVE_INFINITY;
  #linesInWindow = 0;
  #notLogged = 0;

  /** Requests at least this slow are logged. */
  get thresholdMs(): number {
    return this.#options.thresholdMs;
  }

  constructor(options: SlowRequestLogOptions) {
    this.#options = options;
    this.#nowMs = options.nowMs ?? (() => performance.now());
  }

  /** The request answered `status`: logs it when it was slow (and the rate allows). */
  finish(trace: RequestTrace, method: string, path: string, status: number): void {
    const tookMs = trace.elapsedMs();
    if (tookMs < this.#options.thresholdMs) return;
    const now = this.#nowMs();
    if (now - this.#windowStartMs >= 1000) {
      this.#windowStartMs = now;
      this.#linesInWindow = 0;
    }
    if (this.#linesInWindow >= this.#options.linesPerSecondMax) {
      this.#notLogged++;
      return;
    }
    this.#linesInWindow++;
    const notLogged = this.#notLogged;
    this.#notLogged = 0;
    this.#options.logger.warn(
      {
        request: `${method} ${path.length > pathCharsMax ? `${path.slice(0, pathCharsMax)}…` : path}`,
        status,
        tookMs: roundMicros(tookMs),
        steps: trace.steps().map((step) => ({ ...step, atMs: roundMicros(step.atMs) })),
        ...(notLogged > 0 ? { slowRequestsNotLogged: notLogged } : {}),
      },
      "slow request",
    );
  }
}
