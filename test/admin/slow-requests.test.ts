import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SlowRequestLog } from "../../src/admin/slow-requests.ts";
import type { Logger } from "../../src/ports/logger.ts";
import { RequestTrace } from "../../src/runtime/request-trace.ts";

function recordingLogger(): {
  logger: Logger;
  lines: { fields: Record<string, unknown>; message: string }[];
} {
  const lines: { fields: Record<string, unknown>; message: string }[] = [];
  const record = (fields: Record<string, unknown>, message: string): void => {
    lines.push({ fields, message });
  };
  return { logger: { debug: record, info: record, warn: record, error: record }, lines };
}

/** A trace that took `ms`, with one step half-way. */
function traceOf(ms: number): RequestTrace {
  let now = 0;
  const trace = new RequestTrace({ now: () => now });
  now = ms / 2;
  trace.mark("proposed");
  now = ms;
  return trace;
}

describe("SlowRequestLog", () => {
  it("logs a request at least as slow as the threshold, with its steps, and nothing faster", () => {
    const { logger, lines } = recordingLogger();
    const slow = new SlowRequestLog({ thresholdMs: 100, linesPerSecondMax: 10, logger, nowMs: () => 0 });
    slow.finish(traceOf(99.9), "PUT", "/v1/kv/fast", 200);
    slow.finish(traceOf(100), "PUT", "/v1/kv/slow", 200);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.message, "slow request");
    assert.deepEqual(lines[0]?.fields, {
      request: "PUT /v1/kv/slow",
      status: 200,
      tookMs: 100,
      steps: [{ step: "proposed", atMs: 50 }],
    });
  });

  it("logs at most the given lines a second and counts the rest on the next line", () => {
    const { logger, lines } = recordingLogger();
    let now = 0;
    const slow = new SlowRequestLog({ thresholdMs: 0, linesPerSecondMax: 2, logger, nowMs: () => now });
    for (let i = 0; i < 5; i++) slow.finish(traceOf(1), "GET", `/v1/kv/${i}`, 200);
    assert.deepEqual(
      lines.map((line) => line.fields.request),
      ["GET /v1/kv/0", "GET /v1/kv/1"],
    );
    now = 1000;
    slow.finish(traceOf(1), "GET", "/v1/kv/next", 200);
    assert.equal(lines.length, 3);
    assert.equal(lines[2]?.fields.slowRequestsNotLogged, 3);
    slow.finish(traceOf(1), "GET", "/v1/kv/after", 200);
    assert.equal(lines[3]?.fields.slowRequestsNotLogged, undefined, "counted once");
  });

  it("shortens a long path (a key may be 4 KiB)", () => {
    const { logger, lines } = recordingLogger();
    const slow = new SlowRequestLog({ thresholdMs: 0, linesPerSecondMax: 10, logger });
    slow.finish(traceOf(1), "PUT", `/v1/kv/${"k".repeat(4096)}`, 200);
    const request = lines[0]?.fields.request as string;
    assert.ok(request.length <= 4 + 200 + 1, `${request.length} characters`);
    assert.ok(request.endsWith("…"));
  });
});
