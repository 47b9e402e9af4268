/**
 * One short line per message, for scenario transcripts: `a→b append prev=3/2 n=2 commit=3`.
 * Only what a reader needs to follow the protocol is shown (no payloads).
 */
import type { Message } from "../../src/raft/index.ts";

export type MessageType = Message["type"];

export function describeMessage(message: Message): string {
  const head = `${message.from}→${message.to}`;
  switch (message.type) {
    case "vote": {
      const kind = message.preVote ? "pre-vote" : "vote";
      const transfer = message.transfer ? " transfer" : "";
      return `${head} ${kind} term=${message.term} last=${message.lastLogIndex}/${message.lastLogTerm}${transfer}`;
    }
    case "vote-response":
      return `${head} ${message.preVote ? "pre-vote" : "vote"} ${message.granted ? "granted" : "rejected"} term=${message.term}`;
    case "append":
      return `${head} append term=${message.term} prev=${message.prevIndex}/${message.prevTerm} n=${message.entries.length} commit=${message.commit}${message.commitOnly ? " commit-only" : ""}`;
    case "append-response":
      return message.success
        ? `${head} append-ok term=${message.term} match=${message.matchIndex}`
        : `${head} append-reject term=${message.term} prev=${message.rejectedIndex} hint=${message.conflictIndex}/${message.conflictTerm} last=${message.lastIndex}`;
    case "heartbeat":
      return `${head} heartbeat term=${message.term} commit=${message.commit}`;
    case "heartbeat-response":
      return `${head} heartbeat-ok term=${message.term} last=${message.lastIndex}`;
    case "snapshot":
      return `${head} snapshot index=${message.meta.index} offset=${message.offset} bytes=${message.data.byteLength}${message.done ? " done" : ""}`;
    case "snapshot-response":
      return `${head} snapshot-${message.rejected ? "reject" : "ok"} index=${message.snapshotIndex} next=${message.nextOffset}`;
    case "timeout-now":
      return `${head} timeout-now term=${message.term}`;
    case "durable":
      return `${head} durable term=${message.term} index=${message.index}`;
  }
}

/** Lines of an expected transcript written as an indented template literal. */
export function lines(text: string): string {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .join("\n");
}
