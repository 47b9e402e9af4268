/**
 * The node's HTTP server on node:http: the data routes (KV and SQL) on the plain router
 * (plain-router.ts, measured cheaper), everything else on a Hono app served through
 * `@hono/node-server`'s request listener. Every error answer is JSON `{ error, code, … }`; an
 * unexpected error is logged and answered 500 "internal error" — never a stack trace.
 *
 * @example
 * ```ts
 * const server = await startAdminServer(context, { host: "127.0.0.1", port: 4380 });
 * server.address(); // { host, port }
 * await server.stop();
 * ```
 */
import { createServer, type Server } from "node:http";
import { getRequestListener } from "@hono/node-server";
import { Hono, type MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { ConclaveError } from "../lib/errors.ts";
import type { AdminContext, RouteModule } from "./admin-context.ts";
import { requireApiToken } from "./api-auth.ts";
import { registerClusterAdminRoutes } from "./cluster-admin-routes.ts";
import { registerDebugRoutes } from "./debug-routes.ts";
import { answerJson } from "./direct-answer.ts";
import { registerHealthRoutes } from "./health-routes.ts";
import { failureBody } from "./http-failure.ts";
import { registerKvRoutes } from "./kv-routes.ts";
import { registerLeaseRoutes } from "./lease-routes.ts";
import { registerMetricsRoutes } from "./metrics-routes.ts";
import { type PlainRouteModule, PlainRouter, servePlain } from "./plain-router.ts";
import { registerSqlRoutes } from "./sql-routes.ts";
import { registerStatusRoutes } from "./status-routes.ts";
import { registerWatchRoutes } from "./watch-routes.ts";

/** The Hono route modules, in order. Add a module here to add routes. */
export const routeModules: readonly RouteModule[] = [
  registerHealthRoutes,
  registerStatusRoutes,
  registerClusterAdminRoutes,
  registerLeaseRoutes,
  registerWatchRoutes,
  registerDebugRoutes,
  registerMetricsRoutes,
];

/** The plain route modules: the data routes clients call most (plain-router.ts says why). */
export const plainRouteModules: readonly PlainRouteModule[] = [registerSqlRoutes, registerKvRoutes];

/** A listening admin server. */
export interface AdminServer {
  address(): { readonly host: string; readonly port: number } | null;
  /** Stops listening and closes every connection (open watch streams included). */
  stop(): Promise<void>;
}

/** Builds the Hono app (exported for tests that call `app.request` without a socket). */
export function createAdminApp(context: AdminContext, modules: readonly RouteModule[] = routeModules): Hono {
  const app = new Hono();
  app.use("*", countRequests(context));
  app.use("/v1/*", requireApiToken(context));
  for (const register of modules) register(app, context);
  app.notFound((c) =>
    c.json(
      { error: `no route ${c.req.method} ${new URL(c.req.url).pathname}`, code: "CONCLAVE_NO_ROUTE" },
      404,
    ),
  );
  app.onError((error, c) => {
    const { status, body } = failureBody(context, error, new URL(c.req.url).pathname);
    return answerJson(c, body, status);
  });
  return app;
}

/**
 * Counts each request the Hono app answers (GET /v1/metrics): the route is the pattern of the
 * handler that matched, `unmatched` when only middleware did (a 404).
 */
function countRequests(context: AdminContext): MiddlewareHandler {
  return async (c, next) => {
    const startedMs = performance.now();
    try {
      await next();
    } finally {
      const route = matchedRoutes(c).findLast((matched) => matched.method !== "ALL")?.path ?? "unmatched";
      context.httpMetrics.record(c.req.method, route, c.res.status, (performance.now() - startedMs) / 1000);
    }
  };
}

/** Listens on `listen`; throws `CONCLAVE_HTTP_LISTEN_FAILED` naming the address when it cannot. */
export function startAdminServer(
  context: AdminContext,
  listen: { readonly host: string; readonly port: number },
): Promise<AdminServer> {
  const app = createAdminApp(context);
  const router = new PlainRouter();
  for (const register of plainRouteModules) register(router, context);
  // overrideGlobalObjects: false — an embedding application keeps its own global Request/Response.
  const listener = getRequestListener(app.fetch, { overrideGlobalObjects: false });
  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (request, response) => {
    if (servePlain(router, context, request, response)) return;
    // HTTP/1.0 health checks (HAProxy's plain `option httpchk GET /health/primary`) send no Host;
    // the router needs one to build the URL, so use the address we listen on.
    request.headers.host ??= `${listen.host}:${listen.port}`;
    listener(request, response).catch((error: unknown) => {
      context.logger.warn({ error: String(error) }, "HTTP response failed");
      response.destroy();
    });
  });
  server.maxHeadersCount = 64;
  // Idle keep-alive connections stay open 65 s (Node's default is 5 s): longer than the idle
  // timeouts of common load balancers and client pools, so a client never sends a request on a
  // connection the server is closing at that moment (the bench saw ECONNRESET and "socket hang
  // up" on connections reused after 5 s idle).
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once("error", (error) => {
      reject(
        new ConclaveError(
          "CONCLAVE_HTTP_LISTEN_FAILED",
          `Cannot listen for HTTP on ${listen.host}:${listen.port} (${(error as NodeJS.ErrnoException).code ?? String(error)}); pick a free port (http.port) or address (http.bind).`,
        ),
      );
    });
    server.listen(listen.port, listen.host, () => {
      server.removeAllListeners("error");
      server.on("error", (error) => context.logger.warn({ error: String(error) }, "HTTP server error"));
      resolve(adminServer(server));
    });
  });
}

function adminServer(server: Server): AdminServer {
  return {
    address: () => {
      const address = server.address();
      return address !== null && typeof address === "object"
        ? { host: address.address, port: address.port }
        : null;
    },
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
