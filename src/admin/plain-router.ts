/**
 * The data routes (KV and SQL) served straight from node:http, in front of Hono.
 *
 * Why: these are the routes clients call thousands of times a second, and Hono through
 * `@hono/node-server` costs every request a Request-like object, a Hono context, a middleware
 * chain of promises and a response adapter. Served here instead, a put ×64 took 17 % less server
 * CPU and gave 18 % more puts/s (docs/benchmarks.md, session 9). The rest of the API (status,
 * cluster commands, leases, watches, health) stays on Hono, where its conveniences (streams,
 * parameters, middleware) are worth their cost.
 *
 * What it keeps from Hono's side: the same token check on `/v1/*` (api-auth.ts), one error shape
 * (http-failure.ts, `failureBody`), HEAD served by the GET route without a body, and the path
 * resolved as a URL would resolve it (dot segments; request-target.ts) before matching. A
 * request no plain route matches goes to Hono untouched, which answers it or its 404.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { RequestTrace } from "../runtime/request-trace.ts";
import type { AdminContext } from "./admin-context.ts";
import { tokenRefusal, unauthorizedHeader } from "./api-auth.ts";
import { failureBody } from "./http-failure.ts";
import { readNodeBody } from "./request-body.ts";
import { parseRequestTarget, type RequestTarget } from "./request-target.ts";
import { jsonAnswer, type RouteAnswer, type RouteRequest } from "./route-request.ts";

/** A plain route's request: a `RouteRequest` plus its path. */
export interface PlainRequest extends RouteRequest {
  /** The path as sent (percent-encoded), with dot segments resolved, without the query. */
  readonly path: string;
}

export type PlainHandler = (request: PlainRequest) => Promise<RouteAnswer>;

type Method = "GET" | "PUT" | "POST" | "DELETE";

/** Routes by method and path: exact paths first, then the longest matching `prefix*`. */
/** A matched route: its handler and the pattern it was added with (the metrics' `route` label). */
export interface PlainRoute {
  readonly handler: PlainHandler;
  readonly pattern: string;
}

export class PlainRouter {
  readonly #exact = new Map<string, PlainRoute>();
  readonly #prefixes: { readonly method: Method; readonly prefix: string; readonly route: PlainRoute }[] = [];

  /** Adds a route; a `path` ending in `*` matches every path that starts with what comes before it. */
  add(method: Method, path: string, handler: PlainHandler): void {
    const route = { handler, pattern: path };
    if (path.endsWith("*")) {
      this.#prefixes.push({ method, prefix: path.slice(0, -1), route });
      this.#prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
    } else {
      this.#exact.set(`${method} ${path}`, route);
    }
  }

  match(method: string, path: string): PlainRoute | undefined {
    const exact = this.#exact.get(`${method} ${path}`);
    if (exact !== undefined) return exact;
    return this.#prefixes.find((route) => route.method === method && path.startsWith(route.prefix))?.route;
  }
}

/** A module of plain routes (the counterpart of Hono's `RouteModule`). */
export type PlainRouteModule = (router: PlainRouter, context: AdminContext) => void;

/** Only `/v1/` paths are plain routes; anything else goes to Hono without being parsed here. */
const plainPathPrefix = "/v1/";

/** Serves the request when a plain route matches it and returns true; false leaves it to Hono. */
export function servePlain(
  router: PlainRouter,
  context: AdminContext,
  incoming: IncomingMessage,
  outgoing: ServerResponse,
): boolean {
  const target = incoming.url;
  if (target === undefined || !target.startsWith(plainPathPrefix)) return false;
  const method = incoming.method === "HEAD" ? "GET" : (incoming.method ?? "");
  const parsed = parseRequestTarget(target);
  if (parsed === null) return false; // Hono answers what it makes of it
  const route = router.match(method, parsed.path);
  if (route === undefined) return false;
  const trace = new RequestTrace({ detailAfterMs: context.slowRequests.thresholdMs });
  void answerAndWrite(context, route, new NodeRouteRequest(incoming, parsed, trace), outgoing);
  return true;
}

async function answerAndWrite(
  context: AdminContext,
  route: PlainRoute,
  request: NodeRouteRequest,
  outgoing: ServerResponse,
): Promise<void> {
  let routeAnswer: RouteAnswer;
  try {
    routeAnswer = await answer(context, route.handler, request);
  } catch (error) {
    // The error answer itself could not be built (e.g. its details hold a BigInt): a 500.
    const { status, body } = failureBody(context, error, request.path);
    routeAnswer = jsonAnswer(body, status);
  }
  try {
    write(outgoing, routeAnswer, request.answerHeaders);
  } catch (error) {
    context.logger.warn({ error: String(error) }, "HTTP response failed");
    outgoing.destroy();
  }
  // Measuring must never take a node down (this promise has no one to catch it).
  try {
    const seconds = request.trace.elapsedMs() / 1000;
    context.httpMetrics.record(request.method, route.pattern, routeAnswer.status, seconds);
  } catch (error) {
    context.logger.warn({ error: String(error) }, "HTTP metrics failed");
  }
  try {
    context.slowRequests.finish(request.trace, request.method, request.path, routeAnswer.status);
  } catch (error) {
    context.logger.warn({ error: String(error) }, "slow-request log failed");
  }
}

async function answer(
  context: AdminContext,
  handler: PlainHandler,
  request: NodeRouteRequest,
): Promise<RouteAnswer> {
  try {
    const refusal = tokenRefusal(context, request.header("authorization"));
    if (refusal !== null) {
      request.setAnswerHeader(unauthorizedHeader.name, unauthorizedHeader.value);
      return jsonAnswer(refusal, 401);
    }
    return await handler(request);
  } catch (error) {
    const { status, body } = failureBody(context, error, request.path);
    return jsonAnswer(body, status);
  }
}

function write(outgoing: ServerResponse, answer: RouteAnswer, answerHeaders: Record<string, string>): void {
  const length = typeof answer.body === "string" ? Buffer.byteLength(answer.body) : answer.body.byteLength;
  outgoing.writeHead(answer.status, {
    ...answer.headers,
    ...answerHeaders,
    "content-type": answer.contentType,
    "content-length": length,
  });
  // For HEAD, node:http sends the headers only.
  outgoing.end(answer.body);
}

/** A node:http request as plain routes read it. */
class NodeRouteRequest implements PlainRequest {
  readonly path: string;
  readonly method: string;
  readonly answerHeaders: Record<string, string> = {};
  /** Started when node:http had the headers: what the slow-request log measures. */
  readonly trace: RequestTrace;
  readonly #incoming: IncomingMessage;
  readonly #search: string;
  /** Parsed when a handler first asks for a parameter. */
  #params: URLSearchParams | null = null;

  constructor(incoming: IncomingMessage, target: RequestTarget, trace: RequestTrace) {
    this.trace = trace;
    this.#incoming = incoming;
    this.#search = target.search;
    this.path = target.path;
    this.method = incoming.method ?? "";
  }

  header(name: string): string | undefined {
    const value = this.#incoming.headers[name];
    return Array.isArray(value) ? value.join(", ") : value;
  }

  query(name: string): string | undefined {
    if (this.#search === "") return undefined;
    this.#params ??= new URLSearchParams(this.#search);
    return this.#params.get(name) ?? undefined;
  }

  async bodyBytes(limitBytes: number, what: string): Promise<Uint8Array> {
    const body = await readNodeBody(this.#incoming, limitBytes, what);
    this.trace.mark("body read");
    return body;
  }

  setAnswerHeader(name: string, value: string): void {
    this.answerHeaders[name] = value;
  }
}
