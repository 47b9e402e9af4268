/**
 * A cheap structural check of a peer's message before it reaches the core. Peers are
 * authenticated by the transport, so this guards against bugs and version skew, not attackers:
 * it checks the envelope (type, from, to, term) and leaves the rest to the core's own checks.
 */
import type { Message } from "../raft/types.ts";

const messageTypes: ReadonlySet<string> = new Set<Message["type"]>([
  "vote",
  "vote-response",
  "append",
  "append-response",
  "heartbeat",
  "heartbeat-response",
  "snapshot",
  "snapshot-response",
  "timeout-now",
]);

/** True when `value` has the envelope of a Raft message. */
export function isRaftMessage(value: unknown): value is Message {
  if (value === null || typeof value !== "object") return false;
  const candidate = value as Record<string, unknown>;
  return (
    typeof candidate.type === "string" &&
    messageTypes.has(candidate.type) &&
    typeof candidate.from === "string" &&
    typeof candidate.to === "string" &&
    Number.isSafeInteger(candidate.term) &&
    (candidate.term as number) >= 0
  );
}
