/**
 * A cheap structural check of a peer's message before it reaches the core. Peers are
 * authenticated by the transport, so this guards against bugs and version skew, not attackers:
 * it checks the envelope (type, from, to, term) and leaves the rest to the core's own checks, but
 * for a durable notice, whose fields the runtime reads before the core (its forwarded pairs).
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
  "durable",
]);

/** A durable notice names at most this many forwarded writes (far more than a Ready carries). */
const forwardedPairsMax = 65_536;

/** True when `value` has the envelope of a Raft message. */
export function isRaftMessage(value: unknown): value is Message {
  if (value === null || typeof value !== "object") return false;
  const candidate = value as Record<string, unknown>;
  return (
    typeof candidate.type === "string" &&
    messageTypes.has(candidate.type) &&
    typeof candidate.from === "string" &&
    typeof candidate.to === "string" &&
    isIndex(candidate.term) &&
    (candidate.type !== "durable" || isDurableNoticeBody(candidate))
  );
}

/** A durable notice's own fields: the index, and the runtime's forwarded pairs if any. */
function isDurableNoticeBody(candidate: Record<string, unknown>): boolean {
  if (!isIndex(candidate.index)) return false;
  const pairs = candidate.forwarded;
  if (pairs === undefined) return true;
  return (
    Array.isArray(pairs) &&
    pairs.length <= forwardedPairsMax &&
    pairs.every((pair) => Array.isArray(pair) && pair.length === 2 && isIndex(pair[0]) && isIndex(pair[1]))
  );
}

function isIndex(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
