/**
 * What a local read waits for, per consistency level (the same levels as the HTTP API, see
 * src/admin/read-consistency.ts): `none` nothing; `weak` this node believes it is the primary
 * (and applied what its durable notices announced: a secondary may have answered those writes);
 * `linearizable` ReadIndex (forwarded to the primary from a secondary, which then waits until it
 * applied the index); `strong` an empty KV transaction through the log, applied here.
 *
 * @example
 * ```ts
 * await readBarrier({ runtime, database }, "linearizable", { timeoutMs: 2000 });
 * database.kvGet("a"); // sees every write acknowledged before the barrier started
 * ```
 */

import { ConclaveError } from "../lib/errors.ts";
import type { Database } from "../ports/database.ts";
import type { CallOptions, RaftRuntime } from "../runtime/raft-runtime.ts";
import { runtimeErrorCodes } from "../runtime/runtime-errors.ts";

/** Read consistency levels, weakest first. */
export type Consistency = "none" | "weak" | "linearizable" | "strong";

/** Waits until a local read gives `consistency`; throws the runtime's ConclaveError when it cannot. */
export async function readBarrier(
  parts: {
    readonly runtime: Pick<RaftRuntime, "propose" | "readIndex" | "waitApplied" | "status">;
    readonly database: Pick<Database, "encodeCommand">;
  },
  consistency: Consistency,
  options: { readonly signal?: AbortSignal; readonly timeoutMs?: number },
): Promise<void> {
  const call: CallOptions = {
    forward: true,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  };
  const { runtime, database } = parts;
  switch (consistency) {
    case "none":
      return;
    case "weak": {
      const { role, leader } = runtime.status();
      if (role === "leader") return awaitAnnouncedWrites(runtime, call);
      throw new ConclaveError(
        runtimeErrorCodes.notPrimary,
        "weak reads are served by the primary only; use linearizable (the default) on a secondary",
        { leader },
      );
    }
    case "linearizable":
      await runtime.readIndex(call);
      return;
    case "strong": {
      const noop = database.encodeCommand({ kind: "kv", op: "txn", compare: [], success: [], failure: [] });
      const { index } = await runtime.propose(noop, call);
      await runtime.waitApplied(index, call);
      return;
    }
  }
}

/**
 * On the primary, before a `weak` read: waits until it applied what its durable notices
 * announced, since a secondary may have answered those writes already (src/raft/DESIGN.md).
 * Never waits for a quorum. Used by the HTTP API's weak reads too (src/admin/read-consistency.ts).
 */
export async function awaitAnnouncedWrites(
  runtime: Pick<RaftRuntime, "waitApplied" | "status">,
  call: CallOptions = {},
): Promise<void> {
  const { applied, durableNoticeIndex } = runtime.status();
  if (applied < durableNoticeIndex) await runtime.waitApplied(durableNoticeIndex, call);
}
