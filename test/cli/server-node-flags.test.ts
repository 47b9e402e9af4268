/**
 * What `conclave start` adds to its own process (scripts/server-node-flags.mjs): only what the
 * operator did not set. The running process is checked in test/e2e/single-node.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  missingServerEnvironment,
  missingServerNodeFlags,
  serverEnvironment,
  serverNodeFlags,
} from "../../scripts/server-node-flags.mjs";

describe("the server's node flags and environment", () => {
  it("adds every flag and variable to a plain start", () => {
    assert.deepEqual(missingServerNodeFlags([], undefined), [...serverNodeFlags]);
    assert.deepEqual(missingServerEnvironment({}), { ...serverEnvironment });
  });

  it("keeps the operator's own values, from the command line, NODE_OPTIONS or the environment", () => {
    assert.deepEqual(missingServerNodeFlags(["--max-semi-space-size=16"], "--heap-growing-percent=50"), []);
    assert.deepEqual(missingServerNodeFlags([], "--inspect --max-semi-space-size"), [
      "--heap-growing-percent=100",
    ]);
    assert.deepEqual(missingServerEnvironment({ MALLOC_TRIM_THRESHOLD_: "0" }), {
      MALLOC_MMAP_THRESHOLD_: "131072",
      MALLOC_ARENA_MAX: "2",
    });
  });
});
