/**
 * `conclave dev`: the newcomer's first command. Real processes: it starts a 3-node cluster, shows
 * a primary, stops every node cleanly on Ctrl-C (SIGINT), and keeps the data for the next run.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "conclave.js");

interface DevRun {
  stdout: string;
  code: number | null;
  /** PIDs of the node processes while the cluster ran (from their data-directory locks). */
  nodePids: number[];
}

/** Runs `conclave dev` until it shows a primary, then presses Ctrl-C. */
function runDevOnce(dataDir: string, extra: string[] = []): Promise<DevRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [bin, "dev", "--data", dataDir, "--cluster-port", "24370", "--http-port", "24380", ...extra],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let interrupted = false;
    let nodePids: number[] = [];
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`conclave dev did not show a primary in time:\n${stdout}`));
    }, 45_000);
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!interrupted && stdout.includes("Press Ctrl-C")) {
        interrupted = true;
        nodePids = nodePidsFromLocks(dataDir);
        child.kill("SIGINT");
      }
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ stdout, code, nodePids });
    });
  });
}

function nodePidsFromLocks(dataDir: string): number[] {
  return ["n1", "n2", "n3"]
    .map((name) => join(dataDir, name, "data", "LOCK"))
    .filter((path) => existsSync(path))
    .map((path) => Number(readFileSync(path, "utf8").trim()));
}

describe("conclave dev", { timeout: 120_000 }, () => {
  const dataDir = mkdtempSync(join(tmpdir(), "conclave-dev-test-"));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it("starts three nodes, shows one primary, and stops them all on Ctrl-C", async () => {
    const run = await runDevOnce(dataDir);
    assert.equal(run.code, 0, run.stdout);
    const states = [...run.stdout.matchAll(/^n\d\s+(PRIMARY|SECONDARY|STANDBY|DOWN)/gm)].map((m) => m[1]);
    assert.equal(states.length, 3, run.stdout);
    assert.equal(states.filter((s) => s === "PRIMARY").length, 1, run.stdout);
    assert.match(run.stdout, /http:\/\/127\.0\.0\.1:24380/);
    assert.match(run.stdout, /Cluster stopped\./);
    assert.equal(run.nodePids.length, 3, "each node held its data directory's lock");
    for (const pid of run.nodePids) {
      assert.throws(() => process.kill(pid, 0), `node process ${pid} has exited`);
    }
    assert.deepEqual(nodePidsFromLocks(dataDir), [], "every lock was released");
  });

  it("keeps the cluster's data between runs", async () => {
    const identity = readFileSync(join(dataDir, "n1", "data", "identity.json"), "utf8");
    const run = await runDevOnce(dataDir);
    assert.equal(run.code, 0, run.stdout);
    assert.equal(
      readFileSync(join(dataDir, "n1", "data", "identity.json"), "utf8"),
      identity,
      "same node identity",
    );
    const terms = [...run.stdout.matchAll(/^n\d\s+\w+\s+(\d+)/gm)].map((m) => Number(m[1]));
    assert.ok(Math.max(...terms) >= 3, `the term went on from the first run: ${terms}`);
  });

  it("refuses a bad node count with a plain message", async () => {
    const run = await runDevOnce(dataDir, ["--nodes", "12"]);
    assert.notEqual(run.code, 0);
    assert.match(run.stdout, /--nodes must be a whole number from 1 to 9/);
    assert.doesNotMatch(run.stdout, /\n\s+at /);
  });
});
