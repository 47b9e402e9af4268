/**
 * `cluster.snapshot_every_entries`: a standalone node (real `createConclave`, temp data directory)
 * snapshots its database every that many applied entries, and not before.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, describe, it } from "node:test";
import { createConclave } from "../../src/conclave.ts";
import { freePort, waitFor } from "../e2e/node-processes.ts";

const discard = new Writable({ write: (_chunk, _encoding, done) => done() });

/** The indexes of the snapshots in a data directory (`snapshots/<term>-<index>.snap`). */
function snapshotIndexes(dataDir: string): number[] {
  const directory = join(dataDir, "snapshots");
  if (!existsSync(directory)) return [];
  return readdirSync(directory)
    .filter((name) => name.endsWith(".snap"))
    .map((name) => Number(name.slice(name.indexOf("-") + 1, -".snap".length)))
    .sort((a, b) => a - b);
}

/** Starts a standalone node, makes `puts` writes, stops it; returns its snapshot indexes. */
async function writeAndList(root: string, name: string, puts: number, every?: number): Promise<number[]> {
  const dataDir = join(root, name);
  const node = await createConclave(
    {
      env: {},
      overrides: {
        node: { data_dir: dataDir },
        cluster: { mode: "standalone", ...(every === undefined ? {} : { snapshot_every_entries: every }) },
        http: { port: await freePort(), bind: "127.0.0.1" },
        log: { level: "warn" },
      },
    },
    { logDestination: discard },
  );
  await node.start();
  try {
    await waitFor("the node to lead", 10_000, async () => node.isPrimary);
    for (let i = 0; i < puts; i++) await node.kv.put(`key/${i}`, `value ${i}`);
    const applied = node.runtime.status().applied;
    // Snapshots are written in the background: wait until one lies within `every` entries of
    // the last applied one (waitFor fails the test when none does within 10 s).
    if (every !== undefined)
      await waitFor(
        "the snapshots",
        10_000,
        async () => (snapshotIndexes(dataDir).at(-1) ?? 0) > applied - every,
      );
    return snapshotIndexes(dataDir);
  } finally {
    await node.stop();
  }
}

describe("cluster.snapshot_every_entries", { timeout: 60_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), "conclave-snapshot-every-"));
  after(() => rmSync(root, { recursive: true, force: true }));

  it("snapshots every that many applied entries", async () => {
    const indexes = await writeAndList(root, "every-64", 300, 64);
    assert.ok(indexes.length >= 1, `snapshots at ${indexes}`);
    // The first one comes up to ¾ of the interval early (staggered by member id), the next
    // ones every 64 entries; the store keeps the newest two.
    const newest = indexes.at(-1) ?? 0;
    assert.ok(newest >= 300 - 64, `the newest snapshot (${newest}) is within 64 entries of the last write`);
    const [older, newer] = indexes;
    if (older !== undefined && newer !== undefined) assert.ok(newer - older >= 64, `${indexes}`);
  });

  it("takes none before the default 8,192 entries", async () => {
    assert.deepEqual(await writeAndList(root, "default", 300), []);
  });
});
