/**
 * How the runtime's refusals reach an HTTP client: status, code, and whether the write may have
 * been applied (`outcome`), which decides whether a retry is safe. A full disk or a log that
 * failing snapshots could not compact is a 507 that says "not-applied" for a new request and
 * "unknown" for a write that was already staged; the message is the runtime's own.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { AdminContext } from "../../src/admin/admin-context.ts";
import { HttpFailure, runtimeFailure } from "../../src/admin/http-failure.ts";
import { ConclaveError } from "../../src/lib/errors.ts";
import { diskFull, logFull, timedOut } from "../../src/runtime/runtime-errors.ts";

// Only a not-primary answer reads the context (to name the primary's URL); these do not.
const context = {} as AdminContext;

it("a log full of what snapshots could not compact is 507, not applied, saying why and what to do", () => {
  const failure = runtimeFailure(context, logFull("its log holds 128 MiB (…): no room for a snapshot"));
  assert.ok(failure instanceof HttpFailure);
  assert.equal(failure.status, 507);
  assert.equal(failure.body.code, "CONCLAVE_DISK_FULL");
  assert.equal(failure.body.outcome, "not-applied");
  assert.match(String(failure.body.error), /no room for a snapshot.*Free disk space.*nothing was written/);
});

it("a full disk is 507: not applied for a new request, unknown for a write already staged", () => {
  const cause = new ConclaveError("CONCLAVE_DISK_FULL", "the disk holding /data is full");
  assert.deepEqual(
    [
      runtimeFailure(context, diskFull(cause, false)).body.outcome,
      runtimeFailure(context, diskFull(cause, true)).body.outcome,
    ],
    ["not-applied", "unknown"],
  );
  assert.equal(runtimeFailure(context, diskFull(cause, true)).status, 507);
});

it("a timeout is 504 with an unknown outcome, and the message says so", () => {
  const failure = runtimeFailure(context, timedOut(3000));
  assert.equal(failure.status, 504);
  assert.equal(failure.body.outcome, "unknown");
  assert.match(String(failure.body.error), /outcome is unknown/);
});
