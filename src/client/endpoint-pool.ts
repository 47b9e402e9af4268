/**
 * The client's way to a node: tries the endpoints in turn, remembers the primary, follows 421
 * answers (the body names the primary's Raft id; the pool maps it to an endpoint by asking each
 * endpoint's `/v1/status`), and retries only what is safe:
 * - reads: any failure, on the next endpoint;
 * - writes: only when nothing was applied — the server said `outcome: "not-applied"` (not the
 *   primary, busy, proposal lost) or the connection was refused before the request was sent.
 *   A timeout, a reset connection or a 504 leaves the outcome unknown: a write without an
 *   idempotency key is then not retried (the error says so: `CONCLAVE_OUTCOME_UNKNOWN` / the
 *   server's code); a write with one (the client gives every write a key) is retried with the
 *   same key, which the cluster applies at most once.
 */
import { ConclaveError } from "../lib/errors.ts";

/**
 * Most attempts of one call (over all endpoints). With the pauses below, 2.25 s of retrying: a
 * failover must fit, a second election round after a split vote included (the `lan` profile's
 * election timeout is 400–600 ms; failover took up to 1.1 s in the bench). With 6 attempts
 * (0.75 s) a write during a slow election failed with "no primary is known right now".
 */
export const attemptsMax = 12;
/** Pause between attempts, times the attempt number, at most {@link backoffMaxMs}. */
const backoffStepMs = 50;
const backoffMaxMs = 250;

export interface PoolOptions {
  readonly endpoints: readonly string[];
  readonly timeoutMs: number;
  /** The cluster's API token, sent as `Authorization: Bearer`. */
  readonly token?: string | undefined;
}

/** One HTTP request of the API. */
export interface ApiRequest {
  readonly method: string;
  readonly path: string;
  readonly body?: string | Uint8Array;
  readonly contentType?: string;
  /** Writes and primary-only reads go to the primary; others may use any endpoint. */
  readonly primary: boolean;
  /** True when repeating it cannot apply anything twice (reads, writes with an idempotency key). */
  readonly idempotent: boolean;
  /** Extra request headers (e.g. `idempotency-key`). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  /** Keep the response body as a stream (watch): no timeout once headers arrived. */
  readonly stream?: boolean;
}

/** An error answer of the API as an exception: `code` from the server, plus `status`. */
function apiError(status: number, body: Record<string, unknown>): ConclaveError {
  const code = typeof body.code === "string" ? body.code : `HTTP_${status}`;
  const message = typeof body.error === "string" ? body.error : `HTTP ${status}`;
  return new ConclaveError(code, message, { ...body, status });
}

/**
 * The error of a keyed write that some attempt may have applied: `CONCLAVE_OUTCOME_UNKNOWN`,
 * naming the key (a later retry with it is safe), with the last answer as its cause.
 */
function unknownIfKeyed(error: unknown, key: string | undefined, outcomeUnknown: boolean): unknown {
  if (key === undefined || !outcomeUnknown) return error;
  const last = error instanceof Error ? error.message : String(error);
  return new ConclaveError(
    "CONCLAVE_OUTCOME_UNKNOWN",
    `the write's outcome is unknown: it may or may not be applied (last answer: ${last}); retrying it with the same idempotency key (${key}) is safe`,
    { idempotencyKey: key, outcome: "unknown" },
    { cause: error },
  );
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function refusedBeforeSending(error: unknown): boolean {
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  return cause?.code === "ECONNREFUSED";
}

export class EndpointPool {
  readonly #endpoints: readonly string[];
  readonly #timeoutMs: number;
  readonly #authorization: Record<string, string>;
  #primary: string | null = null;
  #next = 0;

  constructor(options: PoolOptions) {
    if (options.endpoints.length === 0) {
      throw new ConclaveError(
        "CONCLAVE_CLIENT_CONFIG",
        "the client needs at least one endpoint, e.g. http://127.0.0.1:4380",
      );
    }
    this.#endpoints = options.endpoints.map((endpoint) => endpoint.replace(/\/+$/, ""));
    this.#timeoutMs = options.timeoutMs;
    this.#authorization = options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
  }

  /** Sends `request`, retrying as the module comment says; resolves with a 2xx response. */
  async send(request: ApiRequest): Promise<Response> {
    let lastError: unknown = null;
    const key = request.headers?.["idempotency-key"];
    // An attempt whose outcome is unknown (no answer, 504) makes the whole call's outcome unknown,
    // whatever later attempts answer: the final error must say so.
    let outcomeUnknown = false;
    // Bounded in attempts and in time: retries stop once twice the request timeout has passed.
    const deadline = performance.now() + 2 * this.#timeoutMs;
    for (let attempt = 0; attempt < attemptsMax; attempt++) {
      const pauseMs = Math.min(backoffStepMs * attempt, backoffMaxMs);
      if (attempt > 0 && performance.now() + pauseMs >= deadline) break;
      if (attempt > 0) await sleep(pauseMs);
      const endpoint = this.#pick(request.primary);
      let response: Response;
      try {
        response = await this.#fetch(endpoint, request);
      } catch (error) {
        if (request.signal?.aborted) throw error;
        lastError = error;
        if (this.#primary === endpoint) this.#primary = null;
        this.#next++;
        if (!refusedBeforeSending(error)) outcomeUnknown = true;
        if (request.idempotent || refusedBeforeSending(error)) continue;
        throw new ConclaveError(
          "CONCLAVE_OUTCOME_UNKNOWN",
          `no answer from ${endpoint} (${error instanceof Error ? error.message : String(error)}); the write may or may not be applied`,
          { endpoint },
          { cause: error },
        );
      }
      if (response.ok) return response;
      const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
      lastError = apiError(response.status, body);
      if (body.outcome === "unknown") outcomeUnknown = true;
      if (!this.#retryable(response.status, body, request))
        throw unknownIfKeyed(lastError, key, outcomeUnknown);
      if (response.status === 421 || body.code === "CONCLAVE_NOT_PRIMARY") {
        this.#primary = await this.#locate(typeof body.leader === "string" ? body.leader : null);
      } else this.#next++;
    }
    if (key !== undefined && (outcomeUnknown || !(lastError instanceof ConclaveError))) {
      throw unknownIfKeyed(lastError, key, true);
    }
    if (lastError instanceof ConclaveError) throw lastError;
    throw new ConclaveError(
      "CONCLAVE_UNAVAILABLE",
      `no endpoint answered (${this.#endpoints.join(", ")}): ${String(lastError)}`,
      {},
      { cause: lastError },
    );
  }

  #retryable(status: number, body: Record<string, unknown>, request: ApiRequest): boolean {
    if (status === 421 || status === 503) return request.idempotent || body.outcome === "not-applied";
    if (status === 504) return request.idempotent;
    return false;
  }

  #pick(primary: boolean): string {
    if (primary && this.#primary !== null) return this.#primary;
    const endpoint = this.#endpoints[this.#next % this.#endpoints.length] as string;
    return endpoint;
  }

  async #fetch(endpoint: string, request: ApiRequest): Promise<Response> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = request.signal === undefined ? timeout : AbortSignal.any([request.signal, timeout]);
    const headers: Record<string, string> = { ...this.#authorization, ...request.headers };
    if (request.contentType !== undefined) headers["content-type"] = request.contentType;
    const init: RequestInit = {
      method: request.method,
      headers,
      signal: request.stream ? (request.signal ?? null) : signal,
    };
    if (request.body !== undefined) init.body = request.body;
    return fetch(`${endpoint}${request.path}`, init);
  }

  /** The endpoint of the primary named `leader` (or reporting itself primary), or null. */
  async #locate(leader: string | null): Promise<string | null> {
    const statuses = await Promise.all(
      this.#endpoints.map(async (endpoint) => {
        try {
          const response = await fetch(`${endpoint}/v1/status`, {
            headers: this.#authorization,
            signal: AbortSignal.timeout(Math.min(this.#timeoutMs, 2000)),
          });
          return { endpoint, status: (await response.json()) as { raftId?: string; role?: string } };
        } catch {
          return null;
        }
      }),
    );
    const found = statuses.find(
      (entry) =>
        entry !== null && (leader !== null ? entry.status.raftId === leader : entry.status.role === "leader"),
    );
    return found?.endpoint ?? null;
  }
}
