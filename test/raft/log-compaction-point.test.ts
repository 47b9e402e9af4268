/**
 * Where the runtime compacts the log behind a snapshot: it keeps at most `entriesMax` entries
 * and `bytesMax` bytes of them for slow followers, and as many as fit. Checked against the
 * definition on random logs of command entries of random sizes.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { entryBytes, RaftLog } from "../../src/raft/log.ts";
import type { Entry } from "../../src/raft/types.ts";

function commands(base: number, sizes: readonly number[]): Entry[] {
  return sizes.map((size, at) => ({
    kind: "command",
    index: base + at + 1,
    term: 1,
    data: new Uint8Array(size),
  }));
}

function keptBytes(log: RaftLog, from: number, to: number): number {
  let bytes = 0;
  for (let index = from + 1; index <= to; index++) bytes += entryBytes(log.entry(index) as Entry);
  return bytes;
}

test("the compaction point keeps as many entries behind the snapshot as the entry and byte bounds allow", () => {
  fc.assert(
    fc.property(
      fc.nat({ max: 50 }),
      fc.array(fc.nat({ max: 5000 }), { minLength: 1, maxLength: 60 }),
      fc.nat({ max: 70 }),
      fc.nat({ max: 40 }),
      fc.nat({ max: 60_000 }),
      (base, sizes, upToOffset, entriesMax, bytesMax) => {
        const meta = { index: base, term: 1, membership: { voters: ["a"], learners: [] }, sizeBytes: 0 };
        const log = new RaftLog(base === 0 ? null : meta, commands(base, sizes));
        const upTo = Math.min(base + upToOffset, log.lastIndex());
        const point = log.compactionPointKeeping(upTo, entriesMax, bytesMax);
        assert.ok(point >= log.baseIndex && point <= upTo, `point ${point} in [${log.baseIndex}, ${upTo}]`);
        assert.ok(upTo - point <= entriesMax, "no more entries than allowed");
        assert.ok(keptBytes(log, point, upTo) <= bytesMax, "no more bytes than allowed");
        // As many as fit: one more entry would break a bound, or there is none left to keep.
        if (point > log.baseIndex) {
          const more = upTo - point + 1 > entriesMax || keptBytes(log, point - 1, upTo) > bytesMax;
          assert.ok(more, `entry ${point} could have been kept`);
        }
      },
    ),
  );
});
