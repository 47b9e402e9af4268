/**
 * `node.cpu_scheduling` (src/cli/cpu-scheduling.ts): how a process is put under SCHED_BATCH, and
 * what is said when it cannot be. `conclave start` doing it to itself is checked on a running
 * node in test/e2e/single-node.test.ts.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, it } from "node:test";
import { type RunCommand, useBatchScheduling } from "../../src/cli/cpu-scheduling.ts";
import { loadConfig } from "../../src/config/load.ts";
import { schedBatch, threadPolicies } from "./thread-policies.ts";

describe("cpu scheduling", () => {
  it("puts every thread of a running process under SCHED_BATCH", {
    skip: process.platform !== "linux",
  }, async () => {
    // A Node child: several threads (V8's workers, libuv's), as a server has.
    const child = spawn(process.execPath, ["-e", "console.log('up'); setTimeout(() => {}, 20000)"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    await once(child.stdout, "data"); // started: its threads are there
    try {
      const pid = child.pid;
      assert.ok(pid !== undefined);
      const before = threadPolicies(pid);
      assert.ok(before !== null && before.length > 1, `threads of ${pid}: ${before}`);
      assert.ok(
        before.every((policy) => policy !== schedBatch),
        "the child starts under another policy",
      );
      assert.deepEqual(useBatchScheduling(pid), { ok: true });
      const after = threadPolicies(pid);
      assert.ok(after !== null && after.length === before.length);
      assert.deepEqual(
        after,
        after.map(() => schedBatch),
      );
    } finally {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
  });

  it("runs chrt for every thread of the process, at the only priority SCHED_BATCH has", () => {
    const calls: [string, readonly string[]][] = [];
    const run: RunCommand = (command, args) => {
      calls.push([command, args]);
      return { status: 0, stderr: "", error: undefined };
    };
    assert.deepEqual(useBatchScheduling(4242, run, "linux"), { ok: true });
    assert.deepEqual(calls, [["chrt", ["--all-tasks", "--batch", "--pid", "0", "4242"]]]);
  });

  it("says why the policy is unchanged: no chrt, chrt refused, not Linux", () => {
    const missing = Object.assign(new Error("spawnSync chrt ENOENT"), { code: "ENOENT" });
    const noChrt = useBatchScheduling(1, () => ({ status: null, stderr: "", error: missing }), "linux");
    assert.equal(noChrt.ok, false);
    assert.match(
      noChrt.ok ? "" : noChrt.reason,
      /chrt was not found: install util-linux, or set node\.cpu_scheduling = "inherit"/,
    );

    const refused = useBatchScheduling(
      1,
      () => ({
        status: 1,
        stderr: "chrt: failed to set pid 1's policy: Operation not permitted\nmore\n",
        error: undefined,
      }),
      "linux",
    );
    assert.deepEqual(refused, {
      ok: false,
      reason: "chrt exited with status 1: chrt: failed to set pid 1's policy: Operation not permitted",
    });

    let ran = false;
    const elsewhere = useBatchScheduling(
      1,
      () => {
        ran = true;
        return { status: 0, stderr: "", error: undefined };
      },
      "darwin",
    );
    assert.deepEqual(elsewhere, { ok: false, reason: "SCHED_BATCH is a Linux policy (this is darwin)" });
    assert.equal(ran, false);
  });

  it("is batch unless the configuration says inherit, and refuses anything else by name", async () => {
    const base = { CONCLAVE_CLUSTER__MODE: "standalone" };
    assert.equal((await loadConfig({ env: base })).node.cpuScheduling, "batch");
    const inherit = await loadConfig({ env: { ...base, CONCLAVE_NODE__CPU_SCHEDULING: "inherit" } });
    assert.equal(inherit.node.cpuScheduling, "inherit");
    await assert.rejects(
      loadConfig({ env: { ...base, CONCLAVE_NODE__CPU_SCHEDULING: "fifo" } }),
      (error: Error) => /node\.cpu_scheduling/.test(error.message) && /"batch"/.test(error.message),
    );
  });
});
