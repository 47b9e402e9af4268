/**
 * The runtime over the in-memory adapters with fake time: elections, proposals and their
 * results, refusals with a leader hint, crash and restart, snapshot catch-up, fail-stop.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ConclaveError, isConclaveError } from "../../src/lib/errors.ts";
import { snapshotPhase } from "../../src/runtime/raft-runtime.ts";
import { encodeKvCommand, type KvResult } from "./kv-test-machine.ts";
import { RuntimeCluster } from "./runtime-cluster.ts";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array | null): string | null =>
  value === null ? null : new TextDecoder().decode(value);
const put = (key: string, value: string): Uint8Array =>
  encodeKvCommand({ op: "put", key, value: bytes(value) });

describe("RaftRuntime over in-memory adapters", { timeout: 30_000 }, () => {
  const clusters: RuntimeCluster[] = [];
  const cluster = (ids: string[], overrides = {}): RuntimeCluster => {
    const created = new RuntimeCluster(ids, overrides);
    clusters.push(created);
    return created;
  };
  after(async () => {
    for (const created of clusters) await created.stopAll();
  });

  it("three runtimes elect one leader and proposals resolve with the state machine's result", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.startAll();
    const leader = await c.electLeader();
    const put1 = await c.await(leader.runtime.propose(put("x", "1")));
    assert.deepEqual(put1.result as KvResult, { op: "put" });
    const removed = await c.await(leader.runtime.propose(encodeKvCommand({ op: "delete", key: "x" })));
    assert.deepEqual(removed.result, { op: "delete", existed: true });
    assert.ok(removed.index > put1.index);
    // Every member applies the same commands.
    const applied = await c.run(() =>
      [...c.members.values()].every((m) => m.runtime.status().applied >= removed.index),
    );
    assert.ok(applied, "all members applied the delete");
    for (const member of c.members.values()) assert.equal(member.machine.read("x"), null);
  });

  it("an idle follower wakes for its election timeout, not at every tick; one whose leader is gone still campaigns in time", async () => {
    // Every member's timers go through this clock, which counts the tick timers that fire.
    let fired = 0;
    let inner: RuntimeCluster["clock"] | null = null;
    const clock = {
      now: () => (inner as RuntimeCluster["clock"]).now(),
      setTimer: (callback: () => void, delayMs: number) =>
        (inner as RuntimeCluster["clock"]).setTimer(() => {
          fired++;
          callback();
        }, delayMs),
    };
    const c = cluster(["a", "b", "c"], { clock });
    inner = c.clock;
    await c.startAll();
    const leader = await c.electLeader();
    await c.run(() => [...c.members.values()].every((m) => m.runtime.status().leader === leader.id));
    const term = leader.runtime.status().term;
    fired = 0;
    await c.run(() => false, 100); // 100 idle ticks (10 ms each; heartbeats every 2, timeouts 10–19)
    assert.equal(leader.runtime.status().term, term, "no election while idle");
    // The leader wakes at every tick (100); each follower about once per election timeout, not 100 times.
    assert.ok(
      fired >= 100 && fired < 160,
      `${fired} timer firings in 100 ticks (300 when followers woke every tick)`,
    );
    // The leader gone, a follower still campaigns once its election timeout passes.
    await c.crash(leader.id);
    const followers = [...c.members.values()].filter((m) => m !== leader);
    const ticks = await c.runCounting(() => followers.some((m) => m.runtime.status().term > term), 100);
    assert.ok(
      ticks <= 20,
      `a follower campaigned ${ticks} ticks after the leader stopped (timeouts 10–19 ticks)`,
    );
  });

  it("a leader's commit updates wait for the end of the turn, after the answer to the write they commit", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.startAll();
    const leader = await c.electLeader();
    await c.await(leader.runtime.propose(put("warm", "1")));
    await c.settle();
    const events: string[] = [];
    leader.onSend = (_to, message, options) => {
      const m = message as { type?: string; commitOnly?: boolean; commit?: number };
      if (m.type !== "append" || m.commitOnly !== true) return;
      // A coalesced message is written at the end of the turn at the latest (the TCP
      // transport's contract, test/transport/tcp-transport.test.ts), or sooner with a plain one.
      if (options?.coalesce === true) setImmediate(() => events.push(`commit update ${m.commit}`));
      else events.push(`commit update ${m.commit} (at once)`);
    };
    const written = leader.runtime.propose(put("k", "v")).then((outcome) => {
      events.push(`answered ${outcome.index}`);
      return outcome;
    });
    const { index } = await c.await(written);
    await c.settle();
    // Written at once, the update woke both followers, and on two cores they took the CPU from
    // the leader's answer (0.3–0.4 ms at one write in flight).
    assert.deepEqual(events.slice(0, 3), [
      `answered ${index}`,
      `commit update ${index}`,
      `commit update ${index}`,
    ]);
  });

  it("a forwarded write's result is sent after the commit update to that secondary, in the same turn (one frame)", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.startAll();
    const leader = await c.electLeader();
    const secondary = [...c.members.values()].find((m) => m !== leader);
    assert.ok(secondary !== undefined);
    await c.await(secondary.runtime.propose(put("warm", "1"), { forward: true }));
    await c.settle();
    const toSecondary: string[] = [];
    let turn = 0;
    leader.onSend = (to, message, options) => {
      if (to !== secondary.id) return;
      const m = message as { type?: string; commitOnly?: boolean };
      if (m.type === "forward-result") toSecondary.push(`result, turn ${turn}`);
      else if (m.type === "append" && m.commitOnly === true) {
        toSecondary.push(`commit update${options?.coalesce === true ? " (coalesced)" : ""}, turn ${turn}`);
        // Counts the end of this event-loop turn.
        setImmediate(() => {
          turn++;
        });
      }
    };
    await c.await(secondary.runtime.propose(put("k", "v"), { forward: true }));
    await c.settle();
    // The plain forward-result is flushed before the turn ends and takes the queued update along.
    assert.deepEqual(toSecondary.slice(0, 2), ["commit update (coalesced), turn 0", "result, turn 0"]);
  });

  it("a follower's acknowledgement is written before it applies what the same Ready committed", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.startAll();
    const leader = await c.electLeader();
    const follower = [...c.members.values()].find((m) => m !== leader);
    assert(follower);
    const events: string[] = [];
    follower.onSend = (_to, message) => {
      if ((message as { type?: string }).type === "append-response") events.push("ack");
    };
    follower.onFlush = () => events.push("flush");
    const apply = follower.machine.apply.bind(follower.machine);
    follower.machine.apply = (data) => {
      events.push("apply");
      return apply(data);
    };
    // Waves of writes, each proposed as the one before is answered: the follower's Readys then
    // hold new entries to acknowledge and earlier ones to apply.
    let wave = Promise.resolve();
    for (let i = 0; i < 20; i++) {
      wave = wave.then(async () => {
        await Promise.all([0, 1, 2].map((j) => leader.runtime.propose(put(`w${i}-${j}`, "v"))));
      });
    }
    await c.await(wave);
    await c.settle();
    const ackThenApply = events.filter((event, at) => event === "ack" && events[at + 1] === "apply");
    assert.equal(ackThenApply.length, 0, `an ack waited behind an apply: ${events.join(" ")}`);
    assert.ok(
      events.some((event, at) => event === "ack" && events[at + 1] === "flush" && events[at + 2] === "apply"),
      "some Ready both acknowledged and applied",
    );
  });

  it("a follower refuses a proposal and names the leader; readIndex on the leader sees acknowledged writes", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.startAll();
    const leader = await c.electLeader();
    await c.run(() => [...c.members.values()].every((m) => m.runtime.status().leader === leader.id));
    const follower = [...c.members.values()].find((m) => m !== leader);
    assert.ok(follower);
    await assert.rejects(c.await(follower.runtime.propose(put("k", "v"))), (error: unknown) => {
      assert.ok(isConclaveError(error, "CONCLAVE_NOT_PRIMARY"));
      assert.equal(error.details.leader, leader.id);
      return true;
    });
    await c.await(leader.runtime.propose(put("k", "v")));
    const read = await c.await(leader.runtime.readIndex());
    assert.ok(read.index >= 1);
    assert.equal(text(leader.machine.read("k")), "v");
    await assert.rejects(c.await(follower.runtime.readIndex()), (error: unknown) =>
      isConclaveError(error, "CONCLAVE_NOT_PRIMARY"),
    );
  });

  it("many proposals made together are all applied, with far fewer syncs than entries (group commit)", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.startAll();
    const leader = await c.electLeader();
    const syncsBefore = leader.syncs;
    const outcomes = await c.await(
      Promise.all(Array.from({ length: 200 }, (_, i) => leader.runtime.propose(put(`k${i}`, `${i}`)))),
    );
    const indexes = outcomes.map((outcome) => outcome.index);
    assert.equal(new Set(indexes).size, 200, "each proposal got its own index");
    assert.equal(text(leader.machine.read("k199")), "199");
    const syncs = leader.syncs - syncsBefore;
    assert.ok(syncs <= 20, `200 proposals took ${syncs} syncs on the leader`);
  });

  it("under load, the loop lets input gather before its next log write; a lone request never waits", async () => {
    const gatherMs = 5;
    const c = cluster(["a", "b", "c"], { groupCommit: { backlogMin: 4, gatherMs } });
    await c.startAll();
    const leader = await c.electLeader();
    const wave = (name: string) =>
      Array.from({ length: 8 }, (_, i) => leader.runtime.propose(put(`${name}${i}`, `${i}`)));

    // A lone request: written, committed and applied without the clock moving at all.
    let lone = false;
    void leader.runtime.propose(put("lone", "1")).then(() => (lone = true));
    await c.settle();
    assert.ok(lone, "a single proposal did not wait for the gathering timer");

    // Under load: after the first wave's write, the next two waves wait for `gatherMs` and then
    // go to disk together, in one write.
    const first = wave("first");
    await c.settle();
    const syncsAfterFirst = leader.syncs;
    const second = wave("second");
    await c.settle();
    const third = wave("third");
    await c.settle();
    assert.equal(leader.syncs, syncsAfterFirst, "no write while input gathers");
    c.clock.advance(gatherMs);
    await c.settle();
    assert.equal(leader.syncs, syncsAfterFirst + 1, "the second and third waves in one write");
    const outcomes = await c.await(Promise.all([...first, ...second, ...third]));
    assert.equal(new Set(outcomes.map((outcome) => outcome.index)).size, 24);
    assert.equal(text(leader.machine.read("third7")), "7");
  });

  it("a stop while the loop waits for input to gather does not wait for the clock", async () => {
    const c = cluster(["a", "b", "c"], { groupCommit: { backlogMin: 4, gatherMs: 5 } });
    await c.startAll();
    const leader = await c.electLeader();
    const first = Array.from({ length: 8 }, (_, i) => leader.runtime.propose(put(`a${i}`, "1")));
    await c.settle();
    const waiting = Array.from({ length: 8 }, (_, i) => leader.runtime.propose(put(`b${i}`, "1")));
    await c.settle();
    for (const call of [...first, ...waiting]) call.catch(() => {});
    // The manual clock never moves: the stop must end the wait itself.
    await leader.runtime.stop();
    await assert.rejects(waiting[0] as Promise<unknown>, (error: unknown) =>
      isConclaveError(error, "CONCLAVE_STOPPED"),
    );
  });

  it("as the primary, waits for its followers' answers before the next log write, up to commit_wait_ms", async () => {
    const waitMs = 5;
    const c = cluster(["a", "b", "c"], { commitWaitMs: waitMs });
    await c.startAll();
    const leader = await c.electLeader();
    const [b, c2] = [...c.members.values()].filter((member) => member !== leader).map((m) => m.id);
    assert.ok(b !== undefined && c2 !== undefined);
    // A lone request: its followers' answers end any wait, so the clock never has to move.
    let lone = false;
    void leader.runtime.propose(put("lone", "1")).then(() => (lone = true));
    await c.settle();
    assert.ok(lone, "a single proposal did not wait for the commit wait's bound");
    const waitsBefore = leader.runtime.stats().commitWaits;

    // The followers' disks hang: the leader writes p1, and p2 comes while p1 waits for a quorum.
    const releaseB = c.holdSyncs(b);
    const releaseC = c.holdSyncs(c2);
    let p1Done = false;
    const p1 = leader.runtime.propose(put("p1", "1")).then((outcome) => {
      p1Done = true;
      return outcome;
    });
    await c.settle();
    const syncsAfterP1 = leader.syncs;
    const p2 = leader.runtime.propose(put("p2", "2"));
    await c.settle();
    assert.equal(leader.syncs, syncsAfterP1, "no log write while the leader waits for the answers to p1");
    assert.equal(p1Done, false);
    assert.equal(leader.runtime.stats().commitWaits, waitsBefore + 1);

    // One follower answers (a quorum with the leader): p1 commits and p2 is written, no time passed.
    releaseB();
    await c.settle();
    assert.ok(p1Done, "p1 committed by the Ready after the answer");
    assert.ok(leader.syncs > syncsAfterP1, "p2 written after the answer");
    await c.await(p2);

    // The bound: with no answer, the next write starts once commit_wait_ms has passed.
    const releaseB2 = c.holdSyncs(b);
    let p3Done = false;
    const p3 = leader.runtime.propose(put("p3", "3")).then(() => (p3Done = true));
    await c.settle();
    const syncsAfterP3 = leader.syncs;
    const p4 = leader.runtime.propose(put("p4", "4"));
    await c.settle();
    assert.equal(leader.syncs, syncsAfterP3, "waiting for the answers to p3");
    c.clock.advance(waitMs);
    await c.settle();
    assert.ok(leader.syncs > syncsAfterP3, "p4 written once the wait's bound passed");
    assert.equal(p3Done, false, "p3 is still not on a quorum");
    releaseB2();
    releaseC();
    await c.await(Promise.all([p1, p3, p4]));
    assert.equal(text(leader.machine.read("p4")), "4");
  });

  it("a stop while the primary waits for its followers' answers does not wait for the clock", async () => {
    const c = cluster(["a", "b", "c"], { commitWaitMs: 5 });
    await c.startAll();
    const leader = await c.electLeader();
    const releases = [...c.members.values()].filter((m) => m !== leader).map((m) => c.holdSyncs(m.id));
    const first = leader.runtime.propose(put("first", "1"));
    await c.settle();
    const second = leader.runtime.propose(put("second", "1"));
    await c.settle();
    first.catch(() => {});
    second.catch(() => {});
    // The manual clock never moves: the stop must end the wait itself.
    await leader.runtime.stop();
    await assert.rejects(second, (error: unknown) => isConclaveError(error, "CONCLAVE_STOPPED"));
    for (const release of releases) release();
  });

  it("a proposal without a quorum times out with an unknown outcome", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.startAll();
    const leader = await c.electLeader();
    for (const member of c.members.values()) if (member !== leader) await c.crash(member.id);
    await assert.rejects(
      c.await(leader.runtime.propose(put("lonely", "1"), { timeoutMs: 100 }), 50),
      (error: unknown) =>
        isConclaveError(error, "CONCLAVE_TIMEOUT") || isConclaveError(error, "CONCLAVE_NOT_PRIMARY"),
    );
  });

  it("a crash of every member and a restart keeps every acknowledged write", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.startAll();
    const leader = await c.electLeader();
    const acknowledged: string[] = [];
    for (let i = 0; i < 20; i++) {
      await c.await(leader.runtime.propose(put(`key${i}`, `value${i}`)));
      acknowledged.push(`key${i}`);
    }
    for (const id of ["a", "b", "c"]) await c.crash(id);
    for (const id of ["a", "b", "c"]) await c.restart(id);
    const again = await c.electLeader();
    await c.await(again.runtime.readIndex());
    for (const [i, key] of acknowledged.entries()) assert.equal(text(again.machine.read(key)), `value${i}`);
  });

  it("members take their first snapshots at different indexes, so that they do not all copy at once", async () => {
    // First snapshots at 100 − phase: 30, 48 and 92 for a, b and c (snapshotPhase).
    const c = cluster(["a", "b", "c"], { snapshotEveryEntries: 100, snapshotKeepEntries: 0 });
    await c.startAll();
    const leader = await c.electLeader();
    for (let i = 0; i < 60; i++) await c.await(leader.runtime.propose(put(`p${i}`, `${i}`)));
    const commit = leader.runtime.status().commit;
    await c.run(() => [...c.members.values()].every((m) => m.runtime.status().applied >= commit));
    const compactedTo = Object.fromEntries(
      [...c.members.values()].map((m) => [m.id, m.runtime.status().firstIndex - 1]),
    );
    // c's first threshold (92) is not reached yet; a and b compacted at theirs (or just after).
    assert.equal(compactedTo.c, 0, JSON.stringify(compactedTo));
    assert.ok((compactedTo.a ?? 0) >= 30 && (compactedTo.a ?? 0) < 48, JSON.stringify(compactedTo));
    assert.ok((compactedTo.b ?? 0) >= 48, JSON.stringify(compactedTo));
    assert.equal(snapshotPhase("a", 100), 70);
  });

  /**
   * A 3-member cluster whose member `lagging` was down (crashed) while the leader wrote
   * `${prefix}0`…`${prefix}59` and compacted its log past them: it can only catch up by a snapshot.
   */
  const clusterWithLaggingMember = async (prefix: string) => {
    const c = cluster(["a", "b", "c"], {
      snapshotEveryEntries: 20,
      snapshotKeepEntries: 2,
      snapshotChunkBytes: 64,
    });
    await c.startAll();
    const leader = await c.electLeader();
    const lagging = [...c.members.values()].find((m) => m !== leader);
    assert.ok(lagging);
    await c.crash(lagging.id);
    for (let i = 0; i < 60; i++) await c.await(leader.runtime.propose(put(`${prefix}${i}`, `${i}`)));
    assert.ok(leader.runtime.status().firstIndex > 10, "the leader compacted its log");
    const assertCaughtUpBySnapshot = (): void => {
      assert.equal(text(lagging.machine.read(`${prefix}0`)), "0");
      assert.equal(text(lagging.machine.read(`${prefix}59`)), "59");
      assert.ok(
        lagging.runtime.status().firstIndex > 1,
        "it was brought up by a snapshot, not the whole log",
      );
    };
    return { c, leader, lagging, assertCaughtUpBySnapshot };
  };

  it("a lagging member catches up by the leader's snapshot after the log was compacted", async () => {
    const { c, leader, lagging, assertCaughtUpBySnapshot } = await clusterWithLaggingMember("s");
    await c.restart(lagging.id);
    const caughtUp = await c.run(() => lagging.runtime.status().applied >= leader.runtime.status().commit);
    assert.ok(caughtUp, "the restarted member caught up");
    assertCaughtUpBySnapshot();
  });

  it("a member whose disk fills up while it receives a snapshot waits for room, then installs it", async () => {
    const { c, leader, lagging, assertCaughtUpBySnapshot } = await clusterWithLaggingMember("f");
    // Three chunk writes (or the finish) find the disk full: each is tried again a second later.
    lagging.disk.snapshots.injectDiskFull(3);
    await c.restart(lagging.id);
    let reportedFull = false;
    const caughtUp = await c.run(() => {
      reportedFull ||= lagging.runtime.diskFullReason !== null;
      return lagging.runtime.status().applied >= leader.runtime.status().commit;
    }, 2_000);
    assert.ok(caughtUp, "the member installed the snapshot once there was room");
    assert.ok(reportedFull, "meanwhile it said its disk was full");
    assert.equal(lagging.runtime.diskFullReason, null, "and no longer says so");
    assert.equal(lagging.runtime.running, true, "a full disk during a snapshot is not fail-stop");
    assert.deepEqual(lagging.fatal, []);
    assertCaughtUpBySnapshot();
  });

  for (const code of ["CONCLAVE_DISK_FULL", "CONCLAVE_SNAPSHOT_FAILED"]) {
    it(`a snapshot of its own that fails with ${code} does not stop the node: it tries again after a pause`, async () => {
      const c = cluster(["a", "b", "c"], { snapshotEveryEntries: 20, snapshotKeepEntries: 2 });
      await c.startAll();
      const leader = await c.electLeader();
      // The next two snapshots this member starts fail (no room for the copy, or a copy overtaken
      // by a snapshot installed meanwhile); the third succeeds.
      const snapshots = leader.disk.snapshots;
      const begin = snapshots.begin.bind(snapshots);
      let failing = 2;
      const startedAtMs: number[] = [];
      const reasons: (string | null)[] = [];
      snapshots.begin = async (meta) => {
        reasons.push(leader.runtime.snapshotFailureReason);
        startedAtMs.push(c.clock.now());
        if (failing-- > 0) throw new ConclaveError(code, "injected snapshot failure");
        return begin(meta);
      };
      for (let i = 0; i < 60; i++) await c.await(leader.runtime.propose(put(`n${i}`, `${i}`)));
      const compacted = await c.run(() => leader.runtime.status().firstIndex > 10, 3_000);
      assert.ok(compacted, "a later snapshot succeeded and the log was compacted");
      assert.equal(leader.runtime.running, true);
      assert.deepEqual(leader.fatal, []);
      assert.ok(startedAtMs.length >= 3, `snapshots started at ${startedAtMs.join(", ")}`);
      const [first, second, third] = startedAtMs as [number, number, number];
      assert.ok(second - first >= 5_000, "the first retry waited 5 s");
      assert.ok(third - second >= 10_000, "the second waited twice as long");
      assert.equal(reasons[0], null);
      assert.match(String(reasons[1]), /injected snapshot failure/, "the failure is reported meanwhile");
      assert.equal(leader.runtime.snapshotFailureReason, null, "and no longer once a snapshot succeeded");
      // Writes went on meanwhile.
      assert.deepEqual((await c.await(leader.runtime.propose(put("after", "1")))).result, { op: "put" });
    });
  }

  /** Makes `member`'s own snapshots fail for want of room while `full()` says so. */
  const snapshotsFailWhile = (
    member: { disk: { snapshots: { begin: (meta: never) => Promise<unknown> } } },
    full: () => boolean,
  ): void => {
    const snapshots = member.disk.snapshots;
    const begin = snapshots.begin.bind(snapshots);
    snapshots.begin = async (meta: never) => {
      if (full()) throw new ConclaveError("CONCLAVE_DISK_FULL", "injected: no room for a snapshot");
      return begin(meta);
    };
  };
  const logLimits = { snapshotEveryEntries: 20, snapshotKeepEntries: 2, logBytesMaxWhileSnapshotsFail: 2000 };

  it("a primary whose snapshots fail refuses writes once its log holds the bound, hands the role to a member with room, and recovers once a snapshot succeeds", async () => {
    const c = cluster(["a", "b", "c"], logLimits);
    await c.startAll();
    const full = await c.electLeader();
    let diskFull = true;
    snapshotsFailWhile(full as never, () => diskFull);
    let refused: unknown = null;
    let accepted = 0;
    for (let i = 0; i < 400 && refused === null; i++) {
      await c
        .await(full.runtime.propose(put(`k${i}`, "x".repeat(40))))
        .then(() => accepted++)
        .catch((error: unknown) => {
          refused = error;
        });
    }
    assert.ok(isConclaveError(refused, "CONCLAVE_DISK_FULL"), `refused with ${String(refused)}`);
    assert.equal(refused.details.outcome, "not-applied");
    assert.match(refused.message, /no snapshot could compact.*injected: no room/);
    const logBytes = full.runtime.status().logBytes;
    assert.ok(
      logBytes >= 2000 && logBytes < 2000 + 200,
      `the log stopped near the bound (${logBytes} bytes)`,
    );
    assert.ok(accepted >= 20, `writes went on until the bound (${accepted})`);
    assert.match(String(full.runtime.logFullReason), /its log holds/);
    // It hands the role over: the cluster takes writes again while this member's disk is still full.
    assert.ok(await c.run(() => c.leaders().some((m) => m !== full), 300), "another member leads");
    const next = c.leaders()[0];
    assert.ok(next !== undefined && next !== full);
    const written = await c.await(next.runtime.propose(put("through-the-new-primary", "1")));
    assert.deepEqual(written.result, { op: "put" });
    assert.equal(full.runtime.running, true);
    // Room again: its next try (at most 30 s away) succeeds, its log is compacted, it catches up.
    diskFull = false;
    const recovered = await c.run(
      () => full.runtime.logFullReason === null && full.runtime.status().applied >= written.index,
      3_500,
    );
    assert.ok(recovered, "a snapshot succeeded within 30 s and it caught up");
    assert.ok(full.runtime.status().logBytes < 2000);
  });

  it("a secondary whose snapshots fail stops taking entries at the bound, the others go on, and it catches up once the disk has room", async () => {
    const c = cluster(["a", "b", "c"], logLimits);
    await c.startAll();
    const leader = await c.electLeader();
    const lagging = [...c.members.values()].find((m) => m !== leader);
    assert.ok(lagging);
    let diskFull = true;
    snapshotsFailWhile(lagging as never, () => diskFull);
    let last = 0;
    for (let i = 0; i < 150; i++)
      last = (await c.await(leader.runtime.propose(put(`k${i}`, "x".repeat(40))))).index;
    assert.ok(lagging.runtime.stats().appendsDroppedWhileLogFull > 0, "appends were dropped");
    assert.ok(
      lagging.runtime.status().logBytes < 2000 + 1000,
      `its log stayed near the bound (${lagging.runtime.status().logBytes})`,
    );
    assert.ok(lagging.runtime.status().lastIndex < last, "it holds fewer entries than were written");
    assert.match(String(lagging.runtime.logFullReason), /injected: no room/);
    diskFull = false;
    const caughtUp = await c.run(
      () => lagging.runtime.status().applied >= last && lagging.runtime.logFullReason === null,
      3_500,
    );
    // The primary compacted past it meanwhile, so it catches up by the primary's snapshot, whose
    // file could not be started while the disk was full: that waits for room (it was fail-stop).
    assert.ok(caughtUp, "it caught up once there was room");
    assert.equal(lagging.runtime.running, true);
    assert.equal(text(lagging.machine.read("k149")), "x".repeat(40));
  });

  it("a snapshot of its own that fails with a storage failure stops the node (fail-stop)", async () => {
    const c = cluster(["a", "b", "c"], { snapshotEveryEntries: 20, snapshotKeepEntries: 2 });
    await c.startAll();
    const leader = await c.electLeader();
    leader.disk.snapshots.begin = async () => {
      throw new ConclaveError("CONCLAVE_STORAGE_FAILED", "injected EIO");
    };
    for (let i = 0; i < 40 && leader.runtime.running; i++)
      await c.await(leader.runtime.propose(put(`e${i}`, `${i}`))).catch(() => undefined);
    await c.run(() => !leader.runtime.running, 500);
    assert.equal(leader.runtime.running, false);
    assert.ok(isConclaveError(leader.fatal[0]?.error, "CONCLAVE_STORAGE_FAILED"));
  });

  it("a storage EIO stops the runtime with a fatal event and fails its waiting calls", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.startAll();
    const leader = await c.electLeader();
    leader.disk.injectFault("io-error");
    await assert.rejects(c.await(leader.runtime.propose(put("doomed", "1"))), (error: unknown) =>
      isConclaveError(error, "CONCLAVE_STOPPED"),
    );
    assert.equal(leader.fatal.length, 1);
    assert.ok(isConclaveError(leader.fatal[0]?.error, "CONCLAVE_STORAGE_FAILED"));
    assert.equal(leader.runtime.running, false);
    await assert.rejects(leader.runtime.propose(put("after", "1")), (error: unknown) =>
      isConclaveError(error, "CONCLAVE_STOPPED"),
    );
    // The others carry on without it.
    const next = await c.electLeader();
    assert.notEqual(next.id, leader.id);
  });

  it("a full disk fails requests with a clear error (not a timeout), is not fail-stop, and the node recovers", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.startAll();
    const leader = await c.electLeader();
    leader.disk.injectFault("disk-full"); // the next sync finds the disk full, later ones succeed
    await assert.rejects(
      c.await(leader.runtime.propose(put("staged", "1"))),
      (error: unknown) =>
        isConclaveError(error, "CONCLAVE_DISK_FULL") &&
        // "unknown" if it was already staged when the sync failed, "not-applied" if still queued
        ["unknown", "not-applied"].includes(String(error.details.outcome)) &&
        /disk is full/.test(error.message),
    );
    // A stalled leader is replaced meanwhile (its ticks wait for the disk too). Once the retried
    // sync succeeds the node is not stopped: it rejoins and applies what the cluster committed.
    let written = false;
    for (let attempt = 0; attempt < 50 && !written; attempt++) {
      await c.run(() => false, 5);
      const current = c.leaders().find((member) => member.id !== leader.id) ?? c.leaders()[0];
      if (!current) continue;
      written = await c.await(current.runtime.propose(put("after", "2"))).then(
        () => true,
        () => false, // the stalled node still thinks it leads, or is still full: try again
      );
    }
    assert.ok(written, "the cluster takes writes again");
    assert.equal(leader.runtime.running, true, "a full disk is not fail-stop");
    const caughtUp = await c.run(() => text(leader.machine.read("after")) === "2");
    assert.ok(caughtUp, "the node that had a full disk caught up");
  });

  it("a write the followers committed is applied and answered while the leader's next log write is in flight, not one still being written", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.startAll();
    const leader = await c.electLeader();
    await c.await(leader.runtime.propose(put("before", "0")));
    const settled = new Set<string>();
    const track = (name: string, promise: Promise<unknown>): Promise<unknown> =>
      promise.finally(() => settled.add(name));
    // The leader's write of "first" hangs; the followers write it and answer meanwhile.
    const releaseFirst = c.holdSyncs(leader.id);
    const first = track("first", leader.runtime.propose(put("first", "1")));
    await c.run(() => false, 3);
    const second = track("second", leader.runtime.propose(put("second", "2")));
    // "first" is written; the next Ready commits it and writes "second", whose write hangs.
    releaseFirst();
    const releaseSecond = c.holdSyncs(leader.id);
    try {
      const firstAnswered = await c.run(() => settled.has("first"), 50);
      assert.ok(firstAnswered, "the committed write was answered during the next log write");
      assert.equal(text(leader.machine.read("first")), "1");
      assert.equal(settled.has("second"), false, "nothing is answered before its own entry is written here");
      assert.equal(leader.machine.read("second"), null);
    } finally {
      releaseSecond(); // also when an assertion failed: stopping the cluster waits for the write
    }
    await c.await(second);
    await first;
    assert.equal(text(leader.machine.read("second")), "2");
  });

  it("a follower whose disk hangs for several election timeouts does not campaign: its leader's heartbeats came in time", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.startAll();
    const leader = await c.electLeader();
    const follower = [...c.members.values()].find((member) => member.id !== leader.id);
    assert.ok(follower);
    const roles: string[] = [];
    follower.runtime.on("role-changed", (event) => roles.push(event.role));
    const { term } = leader.runtime.status();
    const votesBefore = follower.voteRequests;
    // The follower's loop waits on its disk with the next write; heartbeats keep arriving.
    const release = c.holdSyncs(follower.id);
    await c.await(leader.runtime.propose(put("during", "1")));
    await c.run(() => false, 40); // 4 election timeouts (10 ticks each)
    release();
    await c.run(() => text(follower.machine.read("during")) === "1");
    assert.equal(follower.voteRequests, votesBefore, "the follower asked for no (pre-)vote");
    assert.deepEqual(roles, [], "the follower never left the follower role");
    assert.equal(follower.runtime.status().term, term);
    assert.equal(leader.runtime.status().role, "leader");
  });

  it("a leader paused longer than an election timeout catches up on its ticks and steps down before serving a read", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.startAll();
    const leader = await c.electLeader();
    await c.await(leader.runtime.readIndex());
    // The whole process freezes for 5 s: no timer fires meanwhile; then a read arrives at once.
    c.clock.jump(5000);
    const read = leader.runtime.readIndex();
    await assert.rejects(c.await(read), (error: unknown) => isConclaveError(error, "CONCLAVE_NOT_PRIMARY"));
  });
});
