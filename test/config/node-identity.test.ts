import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  identityFileName,
  openNodeIdentity,
  readNodeIdentity,
  recordClusterId,
} from "../../src/config/node-identity.ts";
import { isConclaveError } from "../../src/lib/errors.ts";

let root = "";
let dirCount = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "conclave-identity-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A data directory path that does not exist yet (the node creates it). */
function freshDataDir(): string {
  dirCount++;
  return join(root, `node-${dirCount}`, "data");
}

const fixedNow = () => new Date("2025-01-02T03:04:05.000Z");

describe("node identity", () => {
  it("first start creates the directory (0700) and identity.json (0600) with a permanent id", async () => {
    const dataDir = freshDataDir();
    const opened = await openNodeIdentity({ dataDir, nodeName: "n1@10.0.0.5", now: fixedNow });
    assert.equal(opened.created, true);
    assert.match(opened.identity.nodeId, /^[0-9a-f]{32}$/);
    assert.deepEqual(opened.identity, {
      formatVersion: 1,
      nodeId: opened.identity.nodeId,
      nodeName: "n1@10.0.0.5",
      clusterId: null,
      createdAt: "2025-01-02T03:04:05.000Z",
    });
    assert.equal((await stat(dataDir)).mode & 0o777, 0o700);
    const file = join(dataDir, identityFileName);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(file, "utf8")), opened.identity);
    assert.deepEqual(await readdir(dataDir), [identityFileName], "no temporary file left behind");
  });

  it("a restart under the same name keeps the same id", async () => {
    const dataDir = freshDataDir();
    const first = await openNodeIdentity({ dataDir, nodeName: "n1@10.0.0.5" });
    const second = await openNodeIdentity({ dataDir, nodeName: "n1@10.0.0.5" });
    assert.equal(second.created, false);
    assert.deepEqual(second.identity, first.identity);
  });

  it("a start under another name is refused with the explanation", async () => {
    const dataDir = freshDataDir();
    const { identity } = await openNodeIdentity({ dataDir, nodeName: "n1@10.0.0.5" });
    await assert.rejects(openNodeIdentity({ dataDir, nodeName: "n2@10.0.0.5" }), (error: unknown) => {
      assert.ok(isConclaveError(error, "CONCLAVE_IDENTITY_MISMATCH"));
      assert.match(error.message, new RegExp(`data directory ${dataDir} belongs to node n1@10\\.0\\.0\\.5`));
      assert.match(error.message, new RegExp(`node id ${identity.nodeId}`));
      assert.match(error.message, /started as n2@10\.0\.0\.5/);
      assert.match(error.message, /start it with node\.name = "n1@10\.0\.0\.5"/);
      assert.match(error.message, /another data directory/);
      assert.match(error.message, /wipe it to make a new node/);
      return true;
    });
    assert.deepEqual(await readNodeIdentity(dataDir), identity, "the refused start changed nothing");
  });

  it("the same short name on a new host keeps the id and records the new address", async () => {
    const dataDir = freshDataDir();
    const first = await openNodeIdentity({ dataDir, nodeName: "n1@10.0.0.5" });
    const moved = await openNodeIdentity({ dataDir, nodeName: "n1@10.0.9.9" });
    assert.equal(moved.identity.nodeId, first.identity.nodeId);
    assert.equal(moved.identity.nodeName, "n1@10.0.9.9");
    assert.equal(moved.previousNodeName, "n1@10.0.0.5");
    assert.equal((await readNodeIdentity(dataDir))?.nodeName, "n1@10.0.9.9");
  });

  it("a standalone node started without a name takes its name later", async () => {
    const dataDir = freshDataDir();
    const unnamed = await openNodeIdentity({ dataDir, nodeName: undefined });
    assert.equal(unnamed.identity.nodeName, null);
    const named = await openNodeIdentity({ dataDir, nodeName: "n1@h" });
    assert.equal(named.identity.nodeId, unnamed.identity.nodeId);
    assert.equal(named.identity.nodeName, "n1@h");
    const again = await openNodeIdentity({ dataDir, nodeName: undefined });
    assert.equal(again.identity.nodeName, "n1@h");
  });

  it("two first starts racing on one directory end with one identity", async () => {
    const dataDir = freshDataDir();
    const [a, b] = await Promise.all([
      openNodeIdentity({ dataDir, nodeName: "n1@h" }),
      openNodeIdentity({ dataDir, nodeName: "n1@h" }),
    ]);
    assert.equal(a.identity.nodeId, b.identity.nodeId);
    assert.equal([a.created, b.created].filter(Boolean).length, 1);
  });

  for (const [what, content, reason] of [
    ["not JSON", "{ nope", /is not valid JSON/],
    [
      "a bad node id",
      JSON.stringify({
        formatVersion: 1,
        nodeId: "xyz",
        nodeName: null,
        clusterId: null,
        createdAt: "2025-01-02T03:04:05.000Z",
      }),
      /"nodeId" must be 32 lowercase hex digits/,
    ],
    ["missing fields", JSON.stringify({ formatVersion: 1 }), /damaged/],
    ["empty", "", /is not valid JSON/],
  ] as const) {
    it(`a corrupt identity file (${what}) is a clear error naming the file`, async () => {
      const dataDir = freshDataDir();
      await openNodeIdentity({ dataDir, nodeName: "n1@h" });
      const file = join(dataDir, identityFileName);
      await writeFile(file, content);
      await assert.rejects(openNodeIdentity({ dataDir, nodeName: "n1@h" }), (error: unknown) => {
        assert.ok(isConclaveError(error, "CONCLAVE_IDENTITY_CORRUPT"));
        assert.match(error.message, new RegExp(`identity file ${file} is damaged`));
        assert.match(error.message, reason);
        assert.match(error.message, /restore it from a backup/);
        return true;
      });
    });
  }

  it("a file from a newer format version says so", async () => {
    const dataDir = freshDataDir();
    await openNodeIdentity({ dataDir, nodeName: "n1@h" });
    await writeFile(join(dataDir, identityFileName), JSON.stringify({ formatVersion: 2 }));
    await assert.rejects(readNodeIdentity(dataDir), /format version 2, newer than this Conclave reads \(1\)/);
  });
});

describe("recordClusterId", () => {
  it("records the cluster id once, durably; the same id again is a no-op", async () => {
    const dataDir = freshDataDir();
    const { identity } = await openNodeIdentity({ dataDir, nodeName: "n1@h" });
    const recorded = await recordClusterId(dataDir, "prod-eu-1");
    assert.deepEqual(recorded, { ...identity, clusterId: "prod-eu-1" });
    assert.deepEqual(await readNodeIdentity(dataDir), recorded);
    assert.deepEqual(await recordClusterId(dataDir, "prod-eu-1"), recorded);
    assert.equal((await stat(join(dataDir, identityFileName))).mode & 0o777, 0o600);
  });

  it("refuses another cluster id", async () => {
    const dataDir = freshDataDir();
    await openNodeIdentity({ dataDir, nodeName: "n1@h" });
    await recordClusterId(dataDir, "alpha");
    await assert.rejects(recordClusterId(dataDir, "beta"), (error: unknown) => {
      assert.ok(isConclaveError(error, "CONCLAVE_CLUSTER_MISMATCH"));
      assert.match(error.message, /belongs to cluster alpha, not beta/);
      return true;
    });
  });

  it("refuses a malformed cluster id", async () => {
    const dataDir = freshDataDir();
    await openNodeIdentity({ dataDir, nodeName: "n1@h" });
    await assert.rejects(recordClusterId(dataDir, "has space"), /not a valid cluster id/);
  });
});
