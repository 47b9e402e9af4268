/**
 * What every route module receives: the node's runtime, the database port and a few facts about
 * the node. Route modules (`status-routes.ts`, `sql-routes.ts`, …) are functions that add their
 * routes to the Hono app; `admin-server.ts` lists them. A new module (join/leave, tokens) is one
 * more file and one more line there.
 *
 * @example
 * ```ts
 * export const registerPingRoutes: RouteModule = (app, context) => {
 *   app.get("/v1/ping", (c) => c.json({ node: context.node.status().node }));
 * };
 * ```
 */
import type { Hono } from "hono";
import type { ClusterOperations } from "../cluster/cluster-operations.ts";
import type { ClusterStatusView } from "../cluster/cluster-status.ts";
import type { Database } from "../ports/database.ts";
import type { Logger } from "../ports/logger.ts";
import type { RaftRuntime } from "../runtime/raft-runtime.ts";
import type { HttpMetrics } from "./http-metrics.ts";
import type { LeaderContact } from "./leader-contact.ts";
import type { NodeMetrics } from "./metrics.ts";
import type { SlowRequestLog } from "./slow-requests.ts";

/** The node as the HTTP layer sees it (the composition root implements it). */
export interface AdminNode {
  /** What `GET /v1/status` shows; `name`, `role`, `leader`, `term`, `commit`, `applied` at least. */
  status(): Readonly<Record<string, unknown>>;
  /** `name@host` of a member by Raft id, or null when unknown. */
  memberName(raftId: string | null): string | null;
  /** What `GET /v1/node` shows: storage, transport peers, apply lag, disk use. */
  details(): Promise<Readonly<Record<string, unknown>>>;
  /** What `GET /v1/metrics` shows (metrics.ts), read at each scrape. */
  metrics(): NodeMetrics;
}

/** Everything a route module may use. */
export interface AdminContext {
  readonly node: AdminNode;
  readonly runtime: RaftRuntime;
  readonly database: Database;
  readonly logger: Logger;
  /** Logs data requests slower than `log.slow_request_ms` with their steps. */
  readonly slowRequests: SlowRequestLog;
  /** Counts every answered request by route and status, with its duration (GET /v1/metrics). */
  readonly httpMetrics: HttpMetrics;
  /** How recently this node knew a primary (for `consistency=none&maxStalenessMs=`). */
  readonly leaderContact: LeaderContact;
  /** The clock lease grants and keep-alives are stamped with (src/cluster/lease-clock.ts). */
  readonly leaseClockMs: () => number;
  /** Checks a presented API token (see src/cluster/api-token.ts). */
  readonly apiToken: { check(presented: string | undefined): boolean };
  /** Cluster status and the operator's commands (join, leave, force-leave, set-primary). */
  readonly cluster: {
    status(): ClusterStatusView;
    readonly operations: ClusterOperations;
  };
}

/** A module of routes: adds its routes to the app. */
export type RouteModule = (app: Hono, context: AdminContext) => void;
