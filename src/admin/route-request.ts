/**
 * What a route handler sees of its request, whichever server runs it: the data routes (KV and
 * SQL) run on the plain router in front of Hono (plain-router.ts), the other routes on Hono, and
 * the helpers both use (body reading, query parameters, idempotency keys, read levels) take a
 * `RouteRequest` so they are written once. `honoRequest(c)` gives a Hono context's view.
 */
import type { Context } from "hono";
import type { RequestTrace } from "../runtime/request-trace.ts";
import { setAnswerHeader } from "./direct-answer.ts";
import { readHonoBody } from "./request-body.ts";

/** One request, as route handlers and their helpers read it. */
export interface RouteRequest {
  /** The header's value (`name` in lower case), or undefined. */
  header(name: string): string | undefined;
  /** The query parameter's decoded value, or undefined. */
  query(name: string): string | undefined;
  /** The body, at most `limitBytes` (413 naming `what` past it; see request-body.ts). */
  bodyBytes(limitBytes: number, what: string): Promise<Uint8Array>;
  /** Adds a header to the answer, error answers included (e.g. `Idempotency-Replayed`). */
  setAnswerHeader(name: string, value: string): void;
  /** The request's step timings, on the data routes (plain-router.ts; src/admin/slow-requests.ts). */
  readonly trace?: RequestTrace | undefined;
}

/** An answer of the plain router: status, content type and the whole body. */
export interface RouteAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string | Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A JSON answer. */
export function jsonAnswer(body: unknown, status = 200): RouteAnswer {
  return { status, contentType: "application/json", body: JSON.stringify(body) };
}

/** The view of a Hono route's request. */
export function honoRequest(c: Context): RouteRequest {
  return {
    header: (name) => c.req.header(name),
    query: (name) => c.req.query(name),
    bodyBytes: (limitBytes, what) => readHonoBody(c, limitBytes, what),
    setAnswerHeader: (name, value) => setAnswerHeader(c, name, value),
  };
}
