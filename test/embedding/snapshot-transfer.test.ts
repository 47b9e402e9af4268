/**
 * Snapshot marks end to end (three embedded nodes in one process: real SQLite databases, file
 * storage in temp directories, the cluster transport over loopback): members compact their logs
 * against marks and copy no database for it; a secondary that was stopped while the log moved on
 * past it gets a copy of the primary's database made for it then, installs it, and goes on from
 * the log — with every write, and nothing copied on the member that stayed a secondary.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, describe, it } from "node:test";
import type { Conclave } from "../../src/cluster/embedded-conclave.ts";
import { createConclave } from "../../src/conclave.ts";
import { freePort, waitFor } from "../e2e/node-processes.ts";

const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
const text = (value: Uint8Array | undefined): string => new TextDecoder().decode(value);

/** Snapshot files in a member's data directory: marks and copies. */
function snapshotFiles(dataDir: string): { marks: string[]; copies: string[] } {
  const names = readdirSync(join(dataDir, "snapshots")).filter((name) => name.endsWith(".snap"));
  return {
    marks: names.filter((name) => name.endsWith(".mark.snap")),
    copies: names.filter((name) => !name.endsWith(".mark.snap")),
  };
}

describe("snapshot marks, and a copy for a member that fell behind", { timeout: 90_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), "conclave-marks-"));
  const nodes = new Map<string, Conclave>();
  after(async () => {
    for (const node of nodes.values()) await node.stop().catch(() => {});
    rmSync(root, { recursive: true, force: true });
  });

  it("a restarted secondary installs a copy made for it, then follows the log", async () => {
    const cookie = randomBytes(32).toString("base64url");
    const ports: { name: string; cluster: number; http: number }[] = [];
    for (let i = 1; i <= 3; i++)
      ports.push({ name: `n${i}`, cluster: await freePort(), http: await freePort() });
    const members = ports.map((port) => `${port.name}@127.0.0.1:${port.cluster}`);
    const dataDir = (name: string): string => join(root, name);
    const make = (port: (typeof ports)[number]): Promise<Conclave> =>
      createConclave(
        {
          env: {},
          overrides: {
            node: { name: `${port.name}@127.0.0.1`, data_dir: dataDir(port.name) },
            cluster: {
              cookie,
              members,
              port: port.cluster,
              bind: "127.0.0.1",
              sync_timeout_ms: 5000,
              snapshot_every_entries: 64,
            },
            http: { port: port.http, bind: "127.0.0.1" },
            log: { level: "warn" },
          },
        },
        // 100 ms ticks: the three nodes share one event loop (see embedded-cluster.test.ts).
        { logDestination: discard, tickIntervalMs: 100 },
      );
    for (const port of ports) nodes.set(port.name, await make(port));
    await Promise.all([...nodes.values()].map((node) => node.start()));
    const primaryName = await waitFor("a primary", 15_000, async () => {
      for (const [name, node] of nodes) if (node.isPrimary) return name;
      return null;
    });
    const primary = nodes.get(primaryName) as Conclave;
    const [stoppedName, stayedName] = ports.map((port) => port.name).filter((name) => name !== primaryName);
    assert.ok(stoppedName !== undefined && stayedName !== undefined);
    const stoppedPort = ports.find((port) => port.name === stoppedName);
    assert.ok(stoppedPort !== undefined);
    const stoppedAt = (nodes.get(stoppedName) as Conclave).runtime.status().lastIndex;
    await (nodes.get(stoppedName) as Conclave).stop();
    nodes.delete(stoppedName);

    // 8 KB values, 24 MB in all: the appends the primary sent towards the stopped member before
    // it noticed (and that wait in the transport's queue) stop at 8 MiB in flight, and the log
    // keeps at most 1,024 entries (8 MiB) behind a mark — so the member needs a snapshot.
    const keys = 3_000;
    const valueAt = (i: number): string => `v${i}`.padEnd(8192, ".");
    for (let start = 0; start < keys; start += 50) {
      const batch = [];
      for (let i = start; i < Math.min(keys, start + 50); i++)
        batch.push(primary.kv.put(`k/${i}`, valueAt(i)));
      await Promise.all(batch);
    }
    // A mark near the last write, and the log kept from 1,024 entries before it.
    await waitFor("the primary's log compacted past the stopped member's last entry", 15_000, async () =>
      primary.runtime.status().firstIndex > stoppedAt + 1 ? true : null,
    );
    assert.deepEqual(snapshotFiles(dataDir(primaryName)).copies, [], "the primary copied nothing so far");

    console.log(
      "DBG stoppedAt",
      stoppedAt,
      "primary",
      JSON.stringify({ ...primary.runtime.status(), peers: undefined, membership: undefined }),
    );
    const restarted = await make(stoppedPort);
    nodes.set(stoppedName, restarted);
    await restarted.start();
    const commit = primary.runtime.status().commit;
    await waitFor("the restarted member to catch up", 30_000, async () =>
      restarted.runtime.status().applied >= commit ? true : null,
    );
    console.log(
      "DBG restarted",
      JSON.stringify({ ...restarted.runtime.status(), peers: undefined, membership: undefined }),
    );
    assert.ok(restarted.runtime.status().firstIndex > 1, "it was brought up by a snapshot, not the log");
    assert.equal(
      snapshotFiles(dataDir(primaryName)).copies.length,
      1,
      "the primary copied its database once",
    );
    assert.equal(
      snapshotFiles(dataDir(stoppedName)).copies.length,
      1,
      "the member keeps the copy it installed",
    );
    assert.deepEqual(snapshotFiles(dataDir(stayedName)).copies, [], "the other secondary copied nothing");
    assert.ok(snapshotFiles(dataDir(stayedName)).marks.length === 1, "it keeps one mark");
    for (const i of [0, 777, keys - 1])
      assert.equal(text((await restarted.kv.get(`k/${i}`, { consistency: "none" }))?.value), valueAt(i));
    // A write after the copy reaches it from the log.
    await primary.kv.put("after", "copy");
    await waitFor("the later write on the restarted member", 10_000, async () =>
      (await restarted.kv.get("after", { consistency: "none" })) !== null ? true : null,
    );
  });
});
