import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { acquireDataDirLock } from "../../src/adapters/storage/data-dir-lock.ts";
import { isConclaveError } from "../../src/lib/errors.ts";

describe("data directory lock", () => {
  const dir = mkdtempSync(join(tmpdir(), "conclave-lock-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("is exclusive while held and free again after release", () => {
    const lock = acquireDataDirLock(dir);
    assert.equal(readFileSync(lock.path, "utf8").trim(), String(process.pid));
    lock.release();
    acquireDataDirLock(dir).release();
  });

  it("refuses a directory held by another running process, naming its PID", async () => {
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      writeFileSync(join(dir, "LOCK"), `${child.pid}\n`);
      assert.throws(
        () => acquireDataDirLock(dir),
        (error) =>
          isConclaveError(error, "CONCLAVE_DATA_DIR_LOCKED") && error.message.includes(`PID ${child.pid}`),
      );
    } finally {
      child.kill("SIGKILL");
      await new Promise((resolve) => child.once("exit", resolve));
    }
  });

  it("takes over a stale lock left by a process that died", () => {
    writeFileSync(join(dir, "LOCK"), "999999999\n"); // no such PID
    const lock = acquireDataDirLock(dir);
    assert.equal(readFileSync(lock.path, "utf8").trim(), String(process.pid));
    lock.release();
  });
});
