/**
 * Hono's answers written straight to node:http's ServerResponse, bypassing WHATWG `Response`
 * objects: the error handler's JSON, and the body reading Hono routes use. (The KV and SQL routes
 * now run on the plain router, plain-router.ts, which never builds either.)
 *
 * Why: we serve Hono through `@hono/node-server` without replacing the global `Request` and
 * `Response` (an embedding application keeps its own). A `c.json()` answer is then a real
 * undici `Response` whose body node-server reads back through a `ReadableStream` reader, and a
 * request body read through `c.req.raw.body` first builds a full undici `Request` and a web
 * stream over the socket. When the KV and SQL routes ran on Hono, those two conversions were
 * about 15 % of the primary's CPU per put (a `--cpu-prof` of put ×64). Here the body is read from the
 * `IncomingMessage` and the answer written with one `end()`; under `app.request()` (tests, no
 * socket) both fall back to the Web API, so the routes behave the same either way.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Context } from "hono";

/** The node:http objects behind a request, when it came over a socket. */
interface NodeBindings {
  readonly incoming?: IncomingMessage;
  readonly outgoing?: ServerResponse;
}

/** Headers that a route (or a helper it called) wants on its answer, collected per request. */
const extraHeaders = new WeakMap<Context, Record<string, string>>();

/** Adds a header to the answer `c` will send (direct or through Hono). */
export function setAnswerHeader(c: Context, name: string, value: string): void {
  const headers = extraHeaders.get(c) ?? {};
  headers[name] = value;
  extraHeaders.set(c, headers);
  c.header(name, value);
}

/** The request's IncomingMessage when the body has not been touched yet, else null. */
export function nodeIncoming(c: Context): IncomingMessage | null {
  const incoming = (c.env as NodeBindings | undefined)?.incoming;
  return incoming !== undefined && !incoming.readableEnded && incoming.readableFlowing !== true
    ? incoming
    : null;
}

/** Sends `body` as JSON with `status`. */
export function answerJson(c: Context, body: unknown, status = 200): Response {
  const outgoing = (c.env as NodeBindings | undefined)?.outgoing;
  if (outgoing === undefined) return c.json(body as object, status as 200);
  const text = JSON.stringify(body);
  outgoing.writeHead(status, {
    ...extraHeaders.get(c),
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  outgoing.end(text);
  return RESPONSE_ALREADY_SENT;
}
