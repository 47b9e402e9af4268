/**
 * Health endpoints for load balancers and orchestrators. They need no token, do no I/O and no
 * Raft round trip (a load balancer polls them every 100 ms), and every answer has a JSON body
 * saying why:
 * - `GET|HEAD /health/live` → 200 while the process serves HTTP;
 * - `GET|HEAD /health/ready[?lag=N]` → 200 on a member (voter or standby) that knows a primary
 *   and, with `lag`, has applied all but at most N of the entries it knows are committed;
 * - `GET|HEAD /health/primary` → 200 only on the primary;
 * - `GET|HEAD /health/standby[?lag=N]` → 200 on a secondary (a member that is not the primary and
 *   knows one) within N entries (no `lag`: any lag).
 * "Lag" is this node's commit index minus its applied index: what it knows is committed and has
 * not applied yet. A member that lost the primary does not know newer commits, so it also
 * fails `ready` and `standby` (no primary) rather than look current.
 */
import type { Context } from "hono";
import type { AdminContext, RouteModule } from "./admin-context.ts";
import { HttpFailure } from "./http-failure.ts";

/** Largest `lag` accepted. */
const lagMax = 1_000_000_000_000;

interface HealthFacts {
  readonly node: string;
  readonly state: string;
  readonly role: string;
  readonly leader: string | null;
  readonly commit: number;
  readonly applied: number;
  readonly lag: number;
  readonly member: boolean;
}

function facts(context: AdminContext): HealthFacts {
  const status = context.node.status();
  const membership = status.membership as
    | { voters: readonly string[]; learners: readonly string[] }
    | undefined;
  const raftId = String(status.raftId);
  const commit = Number(status.commit ?? 0);
  const applied = Number(status.applied ?? 0);
  const leader = (status.leader as string | null | undefined) ?? null;
  return {
    node: String(status.node),
    state: String(status.state),
    role: String(status.role),
    leader: context.node.memberName(leader) ?? leader,
    commit,
    applied,
    lag: Math.max(0, commit - applied),
    member:
      membership !== undefined &&
      (membership.voters.includes(raftId) || membership.learners.includes(raftId)),
  };
}

function lagParam(c: Context): number | null {
  const text = c.req.query("lag");
  if (text === undefined) return null;
  if (!/^\d{1,13}$/.test(text) || Number(text) > lagMax) {
    throw new HttpFailure(
      400,
      "CONCLAVE_BAD_REQUEST",
      `lag must be a whole number of entries from 0 to ${lagMax}, not ${JSON.stringify(text)}`,
    );
  }
  return Number(text);
}

function answer(c: Context, health: HealthFacts, reason: string | null, okReason: string): Response {
  const ok = reason === null;
  const { member: _member, ...shown } = health;
  return c.json({ status: ok ? "ok" : "unavailable", ...shown, reason: reason ?? okReason }, ok ? 200 : 503);
}

/** Why this node is not a ready member, or null when it is. */
function notReady(health: HealthFacts, lag: number | null): string | null {
  if (health.state === "DOWN") return "the node is stopping";
  if (!health.member) return `this node is not a member of a cluster (state ${health.state})`;
  if (health.leader === null) return "this node knows no primary (an election is running, or it is cut off)";
  if (health.state === "RECOVERY") return "this node refuses writes for now (its disk is full)";
  if (lag !== null && health.lag > lag)
    return `this node is ${health.lag} entries behind what it knows is committed (more than lag=${lag})`;
  return null;
}

export const registerHealthRoutes: RouteModule = (app, context) => {
  app.on(["GET", "HEAD"], "/health/live", (c) =>
    c.json({ status: "ok", node: String(context.node.status().node) }),
  );

  app.on(["GET", "HEAD"], "/health/ready", (c) => {
    const lag = lagParam(c);
    const health = facts(context);
    return answer(c, health, notReady(health, lag), "a member that knows the primary");
  });

  app.on(["GET", "HEAD"], "/health/primary", (c) => {
    const health = facts(context);
    const reason =
      health.role === "leader" && health.state === "PRIMARY"
        ? null
        : `this node is ${health.state}, not the primary${health.leader === null ? "" : ` (the primary is ${health.leader})`}`;
    return answer(c, health, reason, "this node is the primary");
  });

  app.on(["GET", "HEAD"], "/health/standby", (c) => {
    const lag = lagParam(c);
    const health = facts(context);
    const reason =
      health.role === "leader" ? "this node is the primary, not a standby" : notReady(health, lag);
    return answer(
      c,
      health,
      reason,
      lag === null ? "a secondary that knows the primary" : `a secondary within ${lag} entries`,
    );
  });
};
