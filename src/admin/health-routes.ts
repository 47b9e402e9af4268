/**
 * Health endpoints for load balancers and orchestrators. They need no token (they are outside
 * `/v1/*`), make no network call and no Raft round trip (a load balancer polls them every
 * 100 ms): each answer is built from one `node.status()`, which reads the Raft state in memory
 * and a few rows of the local member catalog. Every answer has the same JSON body saying why.
 * - `GET|HEAD /health/live` → 200 while the process serves HTTP;
 * - `GET|HEAD /health/ready[?lag=N]` → 200 on a member (voter or learner) that knows a primary,
 *   is not leaving, not refusing writes (disk full), and with `lag` is within N entries;
 * - `GET|HEAD /health/primary` → 200 only on a running Raft leader;
 * - `GET|HEAD /health/standby[?lag=N]` → 200 on a follower that is ready (within N entries).
 * "Lag" is this node's commit index minus its applied index: what it knows is committed and has
 * not applied yet. A follower learns the primary's commit index with each append or heartbeat,
 * so lag can read low for a member that fell behind without hearing about newer entries; a
 * member that lost the primary fails `ready` and `standby` (no primary) once it notices (its
 * election timeout) rather than look current.
 *
 * @example
 * ```sh
 * curl -i http://127.0.0.1:4380/health/standby?lag=1000
 * # 503 {"status":"unavailable","node":"n1@10.0.0.5","state":"PRIMARY",…,"reason":"this node is the primary, not a standby"}
 * ```
 */
import type { Context } from "hono";
import type { AdminContext, RouteModule } from "./admin-context.ts";
import { HttpFailure } from "./http-failure.ts";

/** Largest `lag` accepted: far above any real backlog, well inside exact integers. */
export const healthLagMax = 1_000_000_000_000;

/** The body of every health answer (besides `status` and `reason`). */
interface HealthFacts {
  readonly node: string;
  readonly state: string;
  readonly role: string;
  /** The primary's `name@host` (its Raft id if the name is unknown), or null. */
  readonly leader: string | null;
  readonly commit: number;
  readonly applied: number;
  readonly lag: number;
}

interface NodeView extends HealthFacts {
  readonly member: boolean;
}

function view(context: AdminContext): NodeView {
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
    // A standalone node is in no member list, so name itself directly.
    leader: leader === raftId ? String(status.node) : (context.node.memberName(leader) ?? leader),
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
  if (!/^\d{1,13}$/.test(text) || Number(text) > healthLagMax) {
    throw new HttpFailure(
      400,
      "CONCLAVE_BAD_REQUEST",
      `lag must be a whole number of entries from 0 to ${healthLagMax}, not ${JSON.stringify(text)}`,
    );
  }
  return Number(text);
}

function answer(c: Context, node: NodeView, refusal: string | null, okReason: string): Response {
  const { member: _member, ...facts } = node;
  const ok = refusal === null;
  return c.json({ status: ok ? "ok" : "unavailable", ...facts, reason: refusal ?? okReason }, ok ? 200 : 503);
}

/** Why this node is not a ready member, or null when it is. */
function notReady(node: NodeView, lag: number | null): string | null {
  if (node.state === "DOWN") return "the node is stopping";
  // Kept word for word: test/e2e/membership.test.ts matches it.
  if (!node.member) return `this node is not a member of a cluster (state ${node.state})`;
  if (node.state === "LEAVING") return "this node is leaving the cluster";
  if (node.state === "RECOVERY") return "this node refuses writes for now (its disk is full)";
  // A pre-candidate may still remember the old leader; it has stopped following it.
  if (node.role !== "leader" && node.role !== "follower")
    return `this node knows no primary (it is a ${node.role}: an election is running)`;
  if (node.leader === null) return "this node knows no primary (an election is running, or it is cut off)";
  if (lag !== null && node.lag > lag)
    return `this node is ${node.lag} entries behind what it knows is committed (more than lag=${lag})`;
  return null;
}

/** Why this node is not the primary, or null when it is (a running Raft leader). */
function notPrimary(node: NodeView): string | null {
  if (node.state === "DOWN") return "the node is stopping";
  if (node.role === "leader") return null;
  const primary = node.leader === null ? "no primary is known" : `the primary is ${node.leader}`;
  return `this node is ${node.state}, not the primary (${primary})`;
}

/** What a 200 from /health/primary says: the primary, and whether it can take writes now. */
function primaryReason(node: NodeView): string {
  if (node.state === "RECOVERY")
    return "this node is the primary, but refuses writes for now (its disk is full)";
  if (node.state === "LEAVING") return "this node is the primary, and is handing the role over (leaving)";
  return "this node is the primary";
}

/** Registers `/health/live`, `/health/ready`, `/health/primary` and `/health/standby`. */
export const registerHealthRoutes: RouteModule = (app, context) => {
  app.on(["GET", "HEAD"], "/health/live", (c) =>
    answer(c, view(context), null, "this node's process serves HTTP"),
  );

  app.on(["GET", "HEAD"], "/health/ready", (c) => {
    const lag = lagParam(c);
    const node = view(context);
    return answer(c, node, notReady(node, lag), "a member that knows the primary");
  });

  app.on(["GET", "HEAD"], "/health/primary", (c) => {
    const node = view(context);
    return answer(c, node, notPrimary(node), primaryReason(node));
  });

  app.on(["GET", "HEAD"], "/health/standby", (c) => {
    const lag = lagParam(c);
    const node = view(context);
    const refusal = node.role === "leader" ? "this node is the primary, not a standby" : notReady(node, lag);
    const okReason =
      lag === null ? "a secondary that knows the primary" : `a secondary within ${lag} entries`;
    return answer(c, node, refusal, okReason);
  });
};
