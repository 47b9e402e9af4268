/**
 * The bytes a log holds in memory (what the runtime bounds while snapshots fail): kept up to
 * date through every change — append, merge with a conflict, compaction, snapshot restore —
 * and checked against a recount after each of a random sequence of them.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { entryBytes, RaftLog } from "../../src/raft/log.ts";
import type { Entry } from "../../src/raft/types.ts";

const membership = { voters: ["a"], learners: [] };

function recount(log: RaftLog): number {
  return log.entries.reduce((sum, entry) => sum + entryBytes(entry), 0);
}

type Step =
  | { kind: "append"; sizes: number[]; config: boolean }
  | { kind: "merge"; back: number; sizes: number[] }
  | { kind: "compact"; back: number }
  | { kind: "restore"; ahead: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant("append" as const),
    sizes: fc.array(fc.nat({ max: 3000 }), { maxLength: 8 }),
    config: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant("merge" as const),
    back: fc.nat({ max: 10 }),
    sizes: fc.array(fc.nat({ max: 3000 }), { minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant("compact" as const), back: fc.nat({ max: 10 }) }),
  fc.record({ kind: fc.constant("restore" as const), ahead: fc.integer({ min: -5, max: 5 }) }),
);

test("the log's byte count equals a recount after any sequence of appends, conflicts, compactions and restores", () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
      const log = new RaftLog(null, []);
      let term = 1;
      for (const s of steps) {
        if (s.kind === "append") {
          const entries: Entry[] = s.sizes.map((size, at) =>
            s.config && at === 0
              ? { kind: "config", index: log.lastIndex() + at + 1, term, membership }
              : { kind: "command", index: log.lastIndex() + at + 1, term, data: new Uint8Array(size) },
          );
          log.append(entries);
        } else if (s.kind === "merge") {
          // A newer leader's entries from some point on: a conflict truncates what follows it.
          term += 1;
          const from = Math.max(log.baseIndex + 1, log.lastIndex() - s.back + 1);
          const entries: Entry[] = s.sizes.map((size, at) => ({
            kind: "command",
            index: from + at,
            term,
            data: new Uint8Array(size),
          }));
          log.merge(entries, log.baseIndex);
        } else if (s.kind === "compact") {
          const index = Math.max(log.baseIndex, log.lastIndex() - s.back);
          log.compact(index, membership);
        } else {
          const index = Math.max(log.baseIndex, log.lastIndex() + s.ahead);
          const known = log.term(index);
          log.restore({ index, term: known ?? term, membership, sizeBytes: 0 });
        }
        assert.equal(log.bytes(), recount(log), `after ${s.kind}`);
      }
    }),
  );
});
