/**
 * `cluster.snapshot_every_entries` and `cluster.snapshot_every_mib`: a standalone node (real
 * `createConclave`, temp data directory) snapshots its database every that many applied entries,
 * or sooner once the writes since the last snapshot hold that many MiB, and not before; the log
 * it keeps behind a snapshot is bounded in bytes too.
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

/**
 * The indexes of the snapshots in a data directory: a node's own are marks
 * (`snapshots/<term>-<index>.mark.snap`: the database holds the state; no copy is made).
 */
function snapshotIndexes(dataDir: string): number[] {
  const directory = join(dataDir, "snapshots");
  if (!existsSync(directory)) return [];
  const names = readdirSync(directory).filter((name) => name.endsWith(".snap"));
  assert.ok(
    names.every((name) => name.endsWith(".mark.snap")),
    `a standalone node copies nothing: ${names.join(", ")}`,
  );
  return names
    .map((name) => Number(name.slice(name.indexOf("-") + 1, -".mark.snap".length)))
    .sort((a, b) => a - b);
}

interface Written {
  readonly snapshots: number[];
  /** Entries the node's log held in memory after the last write (last index − first index + 1). */
  readonly logEntries: number;
}

/**
 * Starts a standalone node, makes `puts` writes of `value`, waits until a snapshot lies within
 * `waitWithin` entries of the last one (when given), stops it.
 */
async function writeAndList(
  root: string,
  name: string,
  puts: number,
  settings: {
    every?: number;
    everyMib?: number;
    value?: Uint8Array;
    waitWithin?: number;
    /** Wait until the log in memory is down to this many entries (the compaction is done). */
    logEntriesAtMost?: number;
  } = {},
): Promise<Written> {
  const dataDir = join(root, name);
  const cluster = {
    mode: "standalone",
    ...(settings.every === undefined ? {} : { snapshot_every_entries: settings.every }),
    ...(settings.everyMib === undefined ? {} : { snapshot_every_mib: settings.everyMib }),
  };
  const node = await createConclave(
    {
      env: {},
      overrides: {
        node: { data_dir: dataDir },
        cluster,
        http: { port: await freePort(), bind: "127.0.0.1" },
        log: { level: "warn" },
      },
    },
    { logDestination: discard },
  );
  await node.start();
  try {
    await waitFor("the node to lead", 10_000, async () => node.isPrimary);
    for (let i = 0; i < puts; i++) await node.kv.put(`key/${i}`, settings.value ?? `value ${i}`);
    const applied = node.runtime.status().applied;
    // Snapshots are written in the background: wait until one lies within `waitWithin` entries
    // of the last applied one (waitFor fails the test when none does within 10 s).
    const within = settings.waitWithin ?? settings.every;
    if (within !== undefined)
      await waitFor(
        "the snapshots",
        10_000,
        async () => (snapshotIndexes(dataDir).at(-1) ?? 0) > applied - within,
      );
    // The log is compacted on the loop's turn after a snapshot is written, a moment after the
    // snapshot's file appears: wait for it (waitFor fails the test when the log never gets there).
    const { logEntriesAtMost } = settings;
    if (logEntriesAtMost !== undefined)
      await waitFor("the compaction", 10_000, async () => {
        const status = node.runtime.status();
        return status.lastIndex - status.firstIndex + 1 <= logEntriesAtMost;
      });
    const status = node.runtime.status();
    return { snapshots: snapshotIndexes(dataDir), logEntries: status.lastIndex - status.firstIndex + 1 };
  } finally {
    await node.stop();
  }
}

describe("cluster.snapshot_every_entries", { timeout: 60_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), "conclave-snapshot-every-"));
  after(() => rmSync(root, { recursive: true, force: true }));

  it("snapshots every that many applied entries", async () => {
    const { snapshots: indexes } = await writeAndList(root, "every-64", 300, { every: 64 });
    assert.ok(indexes.length >= 1, `snapshots at ${indexes}`);
    // The first one comes up to ¾ of the interval early (staggered by member id), the next
    // ones every 64 entries; the store keeps the newest mark only.
    const newest = indexes.at(-1) ?? 0;
    assert.ok(newest >= 300 - 64, `the newest snapshot (${newest}) is within 64 entries of the last write`);
    const [older, newer] = indexes;
    if (older !== undefined && newer !== undefined) assert.ok(newer - older >= 64, `${indexes}`);
  });

  it("takes none before the default 8,192 entries", async () => {
    assert.deepEqual((await writeAndList(root, "default", 300)).snapshots, []);
  });
});

describe("cluster.snapshot_every_mib", { timeout: 60_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), "conclave-snapshot-mib-"));
  after(() => rmSync(root, { recursive: true, force: true }));
  const value = new Uint8Array(64 * 1024).fill(7);

  it("snapshots once the writes since the last snapshot hold that many MiB, and keeps at most 8 MiB of log behind it", async () => {
    // 300 writes of 64 KiB: 18.75 MiB, 1 MiB = 16 writes. By entries alone (8,192) no snapshot.
    const { snapshots, logEntries } = await writeAndList(root, "mib-1", 300, {
      everyMib: 1,
      value,
      waitWithin: 16,
      logEntriesAtMost: 128 + 16 + 2,
    });
    assert.ok(snapshots.length >= 1, `snapshots at ${snapshots}`);
    const newest = snapshots.at(-1) ?? 0;
    assert.ok(newest >= 300 - 16, `the newest snapshot (${newest}) is within 1 MiB of the last write`);
    const [older, newer] = snapshots;
    if (older !== undefined && newer !== undefined) assert.ok(newer - older >= 16, `${snapshots}`);
    // Kept behind the snapshot: at most 8 MiB (128 entries of 64 KiB), not 1,024 entries; plus
    // what came after it and the no-op of the first term.
    assert.ok(logEntries <= 128 + 16 + 2, `the log holds ${logEntries} entries in memory`);
  });

  it("takes none before the default 64 MiB", async () => {
    const { snapshots, logEntries } = await writeAndList(root, "mib-default", 300, { value });
    assert.deepEqual(snapshots, []);
    assert.ok(logEntries >= 300, `the log holds ${logEntries} entries`);
  });
});
