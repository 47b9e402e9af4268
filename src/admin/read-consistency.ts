/**
 * The read consistency levels (rqlite's names) and what each waits for before a local read:
 * - `none`: nothing; this member's copy as is, on any member, maybe stale. With `maxStalenessMs`
 *   the read is refused (503 `CONCLAVE_STALE`) when this node was out of contact with a primary
 *   for longer than that (see leader-contact.ts for what the bound really is);
 * - `weak`: this node believes it is the primary (no quorum check: a deposed primary that has
 *   not noticed yet may answer stale data for up to an election timeout), and has applied what
 *   its durable notices announced (a secondary may have answered those writes already);
 * - `linearizable` (default): ReadIndex — the primary confirms its leadership with a quorum and
 *   waits until it applied everything committed before the read; on a secondary the read index
 *   is asked of the primary over the cluster transport and the read waits until this member
 *   applied it (ReadIndex on followers, Raft thesis §6.4);
 * - `strong`: a no-op entry goes through the log (forwarded from a secondary) and the read runs
 *   once it is applied here.
 * `local` is accepted as an older name of `none`.
 */
import { awaitAnnouncedWrites } from "../cluster/read-barrier.ts";
import type { RequestTrace } from "../runtime/request-trace.ts";
import type { AdminContext } from "./admin-context.ts";
import { HttpFailure, notPrimaryFailure, orHttpFailure } from "./http-failure.ts";
import { integerParam } from "./request-body.ts";
import type { RouteRequest } from "./route-request.ts";

export type Consistency = "none" | "weak" | "linearizable" | "strong";

const levels: ReadonlySet<string> = new Set(["none", "weak", "linearizable", "strong"]);

/** A read's consistency level and staleness bound. */
export interface ReadOptions {
  readonly consistency: Consistency;
  /** Only with `none`: the most time out of contact with a primary this read accepts. */
  readonly maxStalenessMs: number | null;
}

/** Parses `consistency` (and `maxStalenessMs`) from the query string or a JSON body. */
export function readOptions(consistency: unknown, maxStalenessMs: number | null): ReadOptions {
  if (consistency === undefined || consistency === null)
    return { consistency: "linearizable", maxStalenessMs };
  const level = consistency === "local" ? "none" : consistency;
  if (typeof level !== "string" || !levels.has(level)) {
    throw new HttpFailure(
      400,
      "CONCLAVE_BAD_REQUEST",
      `consistency must be "none", "weak", "linearizable" (the default) or "strong", not ${JSON.stringify(consistency)}`,
    );
  }
  return { consistency: level as Consistency, maxStalenessMs };
}

/** The read options of a GET request's query string. */
export function queryReadOptions(request: RouteRequest): ReadOptions {
  return readOptions(request.query("consistency"), integerParam(request, "maxStalenessMs", null));
}

/**
 * Waits until a local read gives the asked consistency; throws an HttpFailure when it cannot.
 * `trace`: the request's, which the runtime marks its steps on.
 */
export async function ensureReadable(
  context: AdminContext,
  options: ReadOptions,
  trace?: RequestTrace,
): Promise<void> {
  const traced = trace === undefined ? {} : { trace };
  switch (options.consistency) {
    case "none": {
      const limit = options.maxStalenessMs;
      const ageMs = context.leaderContact.ageMs();
      if (limit !== null && ageMs > limit) {
        const age = Number.isFinite(ageMs) ? `${Math.round(ageMs)} ms ago` : "never since it started";
        throw new HttpFailure(
          503,
          "CONCLAVE_STALE",
          `this node was last in contact with a primary ${age}, more than maxStalenessMs (${limit}); read from another member or with a stronger consistency`,
          { ageMs: Number.isFinite(ageMs) ? Math.round(ageMs) : null },
        );
      }
      return;
    }
    case "weak": {
      const status = context.runtime.status();
      if (status.role !== "leader") {
        throw notPrimaryFailure(context, status.leader, "weak reads are served by the primary only");
      }
      await orHttpFailure(context, () => awaitAnnouncedWrites(context.runtime));
      return;
    }
    case "linearizable":
      await orHttpFailure(context, () => context.runtime.readIndex({ forward: true, ...traced }));
      return;
    case "strong": {
      // An empty KV transaction changes nothing but is ordered in the log like any write.
      const noop = context.database.encodeCommand({
        kind: "kv",
        op: "txn",
        compare: [],
        success: [],
        failure: [],
      });
      const { index } = await orHttpFailure(context, () =>
        context.runtime.propose(noop, { forward: true, ...traced }),
      );
      // Forwarded: the primary applied it; wait until this member did too.
      await orHttpFailure(context, () => context.runtime.waitApplied(index));
      return;
    }
  }
}
