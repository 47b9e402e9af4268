/**
 * The primary's record of which log entries came from a secondary's forwarded write, from the
 * proposal until the Ready that writes them is durable. Then each durable notice (the core's
 * `DurableNotice`, sent after that write) carries its recipient's [forward id, log index] pairs,
 * and the secondary answers those writes from its own state machine as soon as it applies them
 * — which the notice lets it do without the primary's commit index. A notice to a member that
 * forwarded none of the entries it covers is left out: it would wake that member for nothing.
 *
 * Why: a write entering at a secondary was answered after its acknowledgement went to the
 * primary, the primary committed and applied it, and its result came back: two hops more than
 * the secondary's own write (docs/benchmarks.md, session 34). The primary's forward-result still
 * follows; whichever answer comes first settles the call.
 *
 * @example
 * ```ts
 * origins.record(index, "n2", forwardId);                    // when the forwarded write is proposed
 * for (const m of origins.notices(afterSync, durableIndex)) transport.send(m.to, m);
 * ```
 */
import type { Message, NodeId } from "../raft/types.ts";

interface Origin {
  readonly index: number;
  readonly from: NodeId;
  readonly id: number;
}

export class ForwardOrigins {
  /** In index order: proposals only append. */
  #records: Origin[] = [];

  /** The entry at `index` is the write `from` forwarded as request `id`. */
  record(index: number, from: NodeId, id: number): void {
    this.#records.push({ index, from, id });
  }

  /**
   * The messages to send once this member's log is durable through `durableIndex`: each durable
   * notice with its recipient's pairs, or left out when it has none; the rest as they are. Every
   * record through `durableIndex` is then forgotten, sent or not.
   */
  notices(messages: readonly Message[], durableIndex: number): readonly Message[] {
    const records = this.#records;
    let covered = 0;
    while (covered < records.length && (records[covered] as Origin).index <= durableIndex) covered++;
    if (covered === 0 && !messages.some((message) => message.type === "durable")) return messages;
    const out: Message[] = [];
    for (const message of messages) {
      if (message.type !== "durable") {
        out.push(message);
        continue;
      }
      const pairs: [number, number][] = [];
      for (let i = 0; i < covered; i++) {
        const origin = records[i] as Origin;
        if (origin.from === message.to && origin.index <= message.index)
          pairs.push([origin.id, origin.index]);
      }
      if (pairs.length > 0) out.push({ ...message, forwarded: pairs });
    }
    this.#records = covered === records.length ? [] : records.slice(covered);
    return out;
  }

  /** Leadership ended: no notice will name these entries. */
  clear(): void {
    this.#records = [];
  }
}
