import assert from "node:assert/strict";
import { it } from "node:test";
import { runCoreBench } from "../bench/raft-core.ts";

it("the core benchmark commits every proposed entry (correctness only; speed is for npm run bench)", () => {
  const result = runCoreBench(20_000, 256);
  assert.equal(result.entries, 20_000);
  assert.ok(result.entriesPerSecond > 0);
});
