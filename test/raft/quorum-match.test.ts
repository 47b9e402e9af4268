/**
 * The commit rule's arithmetic: the highest index a quorum of voters holds. It runs on every
 * proposal and answer with a reused buffer, so it is checked against a plain sort on random
 * voter counts and match indexes, calls of different sizes interleaved.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { quorumMatchIndex, quorumSize } from "../../src/raft/membership.ts";

function bySorting(matches: readonly number[]): number {
  if (matches.length === 0) return 0;
  const sorted = [...matches].sort((a, b) => b - a);
  return sorted[quorumSize(matches.length) - 1] as number;
}

test("quorumMatchIndex is the highest index held by a majority, whatever the order of calls", () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.nat({ max: 1000 }), { maxLength: 9 }), { minLength: 1, maxLength: 8 }),
      (calls) => {
        for (const matches of calls) {
          const voters = matches.map((_, at) => `n${at}`);
          const got = quorumMatchIndex(voters, (voter) => matches[Number(voter.slice(1))] as number);
          assert.equal(got, bySorting(matches), JSON.stringify(matches));
        }
      },
    ),
  );
  assert.equal(
    quorumMatchIndex(["a", "b", "c"], (voter) => ({ a: 7, b: 3, c: 5 })[voter] as number),
    5,
  );
  assert.equal(
    quorumMatchIndex(["a", "b", "c", "d"], (voter) => ({ a: 9, b: 9, c: 1, d: 2 })[voter] as number),
    2,
  );
});
