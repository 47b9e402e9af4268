/**
 * The order in which the runtime handles a Ready's parts around its log write (src/runtime/DESIGN.md,
 * "The loop"): which messages may leave before the write, and which committed entries may be
 * applied while it runs. Pure; shared with the simulator (`npm run sim -- --writes as-runtime`),
 * so that what the simulator checks is the runtime's rule, not a copy of it.
 */
import type { Ready } from "../raft/api-types.ts";
import type { Message } from "../raft/types.ts";

/** Messages only a leader sends, which promise nothing about the sender's own disk. */
const sentBeforeSync: ReadonlySet<Message["type"]> = new Set([
  "append",
  "heartbeat",
  "snapshot",
  "timeout-now",
]);

/**
 * Splits a Ready's messages: a leader's replication may leave before the Ready is durable; votes
 * and answers (which promise that what they acknowledge is on disk) only after; commit updates
 * (empty appends that only carry a higher commit index) after the entries are applied and the
 * answers to them have gone out (see RaftRuntime's #handleReady).
 */
export function splitMessages(messages: readonly Message[]): {
  early: Message[];
  afterSync: Message[];
  commitUpdates: Message[];
} {
  const early: Message[] = [];
  const afterSync: Message[] = [];
  const commitUpdates: Message[] = [];
  for (const message of messages) {
    if (message.type === "append" && message.commitOnly === true && message.entries.length === 0)
      commitUpdates.push(message);
    else (sentBeforeSync.has(message.type) ? early : afterSync).push(message);
  }
  return { early, afterSync, commitUpdates };
}

/**
 * How many of `ready.committed` (a prefix) may be applied before `ready` is persisted: those an
 * earlier Ready wrote to this member's log (through `durableIndex`) and that `ready` does not
 * rewrite. None when `ready` installs a snapshot (the state machine is restored first).
 */
export function committedOnDiskCount(ready: Ready, durableIndex: number): number {
  if (ready.snapshot !== null || ready.committed.length === 0) return 0;
  const rewrittenFrom = ready.entries[0]?.index ?? Number.POSITIVE_INFINITY;
  const durableThrough = Math.min(durableIndex, rewrittenFrom - 1);
  // Committed entries are consecutive indexes, in order.
  const first = ready.committed[0]?.index ?? Number.POSITIVE_INFINITY;
  return Math.max(0, Math.min(ready.committed.length, durableThrough - first + 1));
}
