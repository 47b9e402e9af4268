/**
 * Forwarding to the primary over the (in-memory) cluster transport: a write made on a follower
 * is applied once and answered with the primary's result; a follower's forwarded ReadIndex sees
 * a write acknowledged just before; a primary lost mid-forward leaves the outcome unknown (never
 * a success); malformed or foreign forward messages are dropped and counted; the outstanding
 * bound refuses what does not fit.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { unpack } from "msgpackr";
import { encodeBody } from "../../src/adapters/transport/frame-codec.ts";
import { decodeMessage } from "../../src/adapters/transport/message-codec.ts";
import { isConclaveError } from "../../src/lib/errors.ts";
import { RequestTrace } from "../../src/runtime/request-trace.ts";
import { encodeKvCommand, type KvResult } from "./kv-test-machine.ts";
import type { Member } from "./runtime-cluster.ts";
import { RuntimeCluster } from "./runtime-cluster.ts";
import { primaryStepsOfForwardedWrite } from "./trace-steps.ts";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array | null): string | null =>
  value === null ? null : new TextDecoder().decode(value);
const put = (key: string, value: string): Uint8Array =>
  encodeKvCommand({ op: "put", key, value: bytes(value) });

/** Counts, per member, how many times a put of `key` was applied. */
function countApplies(members: Iterable<Member>, key: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const member of members) {
    counts.set(member.id, 0);
    const apply = member.machine.apply.bind(member.machine);
    member.machine.apply = (data: Uint8Array) => {
      const result = apply(data);
      // The key is stored as plain text inside the msgpack command.
      if (result.op === "put" && new TextDecoder().decode(data).includes(key))
        counts.set(member.id, (counts.get(member.id) ?? 0) + 1);
      return result;
    };
  }
  return counts;
}

describe("forwarding to the primary (RaftRuntime over in-memory adapters)", { timeout: 30_000 }, () => {
  const clusters: RuntimeCluster[] = [];
  const started = async (
    overrides = {},
  ): Promise<{ c: RuntimeCluster; leader: Member; follower: Member }> => {
    const c = new RuntimeCluster(["a", "b", "c"], overrides);
    clusters.push(c);
    await c.startAll();
    const leader = await c.electLeader();
    await c.run(() => [...c.members.values()].every((m) => m.runtime.status().leader === leader.id));
    const follower = [...c.members.values()].find((m) => m !== leader);
    assert.ok(follower);
    return { c, leader, follower };
  };
  after(async () => {
    for (const created of clusters) await created.stopAll();
  });

  it("group commit counts a follower's forwarded writes, never its forwarded reads", async () => {
    const gatherMs = 5;
    const { c, leader, follower } = await started({ groupCommit: { backlogMin: 4, gatherMs } });
    await c.await(follower.runtime.propose(put("warm", "1"), { forward: true }));
    // Twelve reads on each follower (a read index needs one follower's heartbeat answer): answered
    // without the clock moving, so no member held a Ready for them.
    let read = 0;
    const followers = [...c.members.values()].filter((member) => member !== leader);
    const reads = followers.flatMap((member) =>
      Array.from({ length: 12 }, () => member.runtime.readIndex({ forward: true }).then(() => read++)),
    );
    await c.settle(20);
    assert.equal(read, 24, "forwarded reads never wait for group commit");
    await Promise.all(reads);
    // Twelve writes: they wait for the gathering timer (on the primary and on this follower).
    let written = 0;
    const writes = Array.from({ length: 12 }, (_, i) =>
      follower.runtime.propose(put(`w${i}`, `${i}`), { forward: true }).then((outcome) => {
        written++;
        return outcome;
      }),
    );
    await c.settle(20);
    assert.ok(written < 12, "forwarded writes under load wait for input to gather");
    c.clock.advance(gatherMs);
    const outcomes = await c.await(Promise.all(writes));
    assert.equal(new Set(outcomes.map((outcome) => outcome.index)).size, 12);
    assert.equal(text(follower.machine.read("w11")), "11", "the member that answered has applied it");
    await c.run(() => text(leader.machine.read("w11")) === "11");
  });

  it("a write made on a follower is applied once on every member and answered with the primary's result", async () => {
    const { c, leader, follower } = await started();
    const counts = countApplies(c.members.values(), "forwarded-key");
    const outcome = await c.await(follower.runtime.propose(put("forwarded-key", "v1"), { forward: true }));
    assert.deepEqual(outcome.result as KvResult, { op: "put" });
    const removed = await c.await(
      follower.runtime.propose(encodeKvCommand({ op: "delete", key: "forwarded-key" }), { forward: true }),
    );
    assert.deepEqual(removed.result, { op: "delete", existed: true }, "the result is the state machine's");
    assert.ok(removed.index > outcome.index);
    await c.run(() => [...c.members.values()].every((m) => m.runtime.status().applied >= removed.index));
    assert.deepEqual(
      [...counts.values()],
      [1, 1, 1],
      "the forwarded put was applied exactly once per member",
    );
    assert.equal(follower.runtime.stats().forwarding.forwarded, 2);
    assert.equal(leader.runtime.stats().forwarding.served, 2);
    assert.equal(follower.runtime.stats().forwarding.outstanding, 0);
  });

  it("a follower sends a forwarded request to its primary at once, without a loop turn; without a primary it refuses", async () => {
    const { c, leader, follower } = await started();
    const sentBefore = follower.runtime.stats().forwarding.forwarded;
    const write = follower.runtime.propose(put("direct", "v"), { forward: true });
    const read = follower.runtime.readIndex({ forward: true });
    // Counted synchronously: nothing waited for the follower's next turn (a setImmediate away).
    assert.equal(follower.runtime.stats().forwarding.forwarded, sentBefore + 2);
    const written = await c.await(write);
    assert.deepEqual(written.result as KvResult, { op: "put" });
    assert.ok((await c.await(read)).index >= 1);
    // The primary gone and this follower campaigning: it follows no primary, so it refuses
    // (nothing was proposed) instead of forwarding to the old one.
    await c.crash(leader.id);
    await c.run(() => follower.runtime.status().leader === null);
    const refused = follower.runtime.propose(put("after", "v"), { forward: true, timeoutMs: 2000 });
    assert.equal(follower.runtime.stats().forwarding.forwarded, sentBefore + 2, "not forwarded");
    await assert.rejects(c.await(refused), (error: unknown) =>
      isConclaveError(error, "CONCLAVE_NOT_PRIMARY"),
    );
  });

  it("a lone forward leaves as the code yields; one sent while others are outstanding waits to share a frame", async () => {
    const { c, follower } = await started();
    const coalesced: boolean[] = [];
    follower.onSend = (_to, message, options) => {
      if ((message as { type?: unknown }).type === "forward-propose")
        coalesced.push(options?.coalesce === true);
    };
    await c.await(follower.runtime.propose(put("alone", "v"), { forward: true }));
    const together = [1, 2, 3].map((n) =>
      follower.runtime.propose(put(`together-${n}`, "v"), { forward: true }),
    );
    for (const pending of together) await c.await(pending);
    follower.onSend = null;
    assert.deepEqual(coalesced, [false, false, true, true]);
  });

  it("a follower's forwarded read index waits until it applied a write the primary acknowledged just before", async () => {
    const { c, leader, follower } = await started();
    await c.await(leader.runtime.propose(put("x", "old")));
    await c.run(() => text(follower.machine.read("x")) === "old");
    // Cut the primary's Raft messages to the follower (forward messages still pass): the primary
    // commits with the third member, and the follower does not learn of the new write.
    const inbound = c.network.find(follower.id);
    assert.ok(inbound);
    const receive = inbound.receive.bind(inbound);
    let raftBlocked = true;
    inbound.receive = (from, body) => {
      const decoded = decodeMessage(body);
      const type = decoded.ok ? String((decoded.value as { type?: unknown }).type) : "";
      if (raftBlocked && from.nodeId === leader.id && !type.startsWith("forward-")) return true;
      return receive(from, body);
    };
    await c.await(leader.runtime.propose(put("x", "new")));
    let served = false;
    const read = follower.runtime.readIndex({ forward: true, timeoutMs: 5000 }).finally(() => {
      served = true;
    });
    await c.run(() => leader.runtime.stats().forwarding.served === 1, 4);
    assert.equal(leader.runtime.stats().forwarding.served, 1, "the primary answered the read index");
    await c.settle();
    assert.equal(served, false, "the read waits until the follower applied the read index");
    assert.equal(text(follower.machine.read("x")), "old");
    raftBlocked = false;
    const outcome = await c.await(read);
    assert.ok(follower.runtime.status().applied >= outcome.index);
    assert.equal(text(follower.machine.read("x")), "new", "the read sees the acknowledged write");
    await assert.rejects(c.await(follower.runtime.readIndex()), (error: unknown) =>
      isConclaveError(error, "CONCLAVE_NOT_PRIMARY"),
    );
  });

  it("reads that come while a forwarded read index is out share the next one, asked after they came", async () => {
    const { c, leader, follower } = await started();
    await c.await(leader.runtime.propose(put("y", "old")));
    // Hold the primary's answers to the follower's forwards until released.
    const inbound = c.network.find(follower.id);
    assert.ok(inbound);
    const receive = inbound.receive.bind(inbound);
    const held: [Parameters<typeof receive>[0], Uint8Array][] = [];
    let holding = true;
    inbound.receive = (from, body) => {
      const decoded = decodeMessage(body);
      const type = decoded.ok ? String((decoded.value as { type?: unknown }).type) : "";
      if (holding && type === "forward-result") {
        held.push([from, body]);
        return true;
      }
      return receive(from, body);
    };
    const sentBefore = follower.runtime.stats().forwarding.forwarded;
    const servedBefore = leader.runtime.stats().forwarding.served;
    const first = follower.runtime.readIndex({ forward: true, timeoutMs: 5000 });
    await c.run(() => leader.runtime.stats().forwarding.served === servedBefore + 1);
    // Acknowledged after the first read's index was given: later reads must see it.
    const written = await c.await(leader.runtime.propose(put("y", "new")));
    const later = [1, 2, 3].map(() => follower.runtime.readIndex({ forward: true, timeoutMs: 5000 }));
    assert.equal(follower.runtime.stats().forwarding.forwarded, sentBefore + 1, "the later reads wait");
    holding = false;
    for (const [from, body] of held.splice(0)) receive(from, body);
    const firstOutcome = await c.await(first);
    assert.ok(firstOutcome.index < written.index, "the first read's index was given before the write");
    for (const pending of later) {
      const outcome = await c.await(pending);
      assert.ok(outcome.index >= written.index, "a later read's index covers the acknowledged write");
    }
    assert.equal(text(follower.machine.read("y")), "new");
    assert.equal(follower.runtime.stats().forwarding.forwarded, sentBefore + 2, "one request for the three");
    assert.equal(leader.runtime.stats().forwarding.served, servedBefore + 2);
    assert.equal(follower.runtime.stats().forwarding.outstanding, 0);
  });

  it("reads waiting to share a read index are refused not-primary when the primary is lost", async () => {
    const { c, leader, follower } = await started();
    // The primary's answers never arrive: the first read stays out, the second waits behind it.
    const inbound = c.network.find(follower.id);
    assert.ok(inbound);
    const receive = inbound.receive.bind(inbound);
    inbound.receive = (from, body) => {
      const decoded = decodeMessage(body);
      if (decoded.ok && (decoded.value as { type?: unknown }).type === "forward-result") return true;
      return receive(from, body);
    };
    const errors = [1, 2].map(() =>
      follower.runtime.readIndex({ forward: true, timeoutMs: 5000 }).then(
        () => null,
        (error: unknown) => error,
      ),
    );
    assert.equal(follower.runtime.stats().forwarding.outstanding, 2);
    await c.crash(leader.id);
    for (const error of errors) {
      const refused = await c.await(error, 2000);
      assert.ok(isConclaveError(refused, "CONCLAVE_NOT_PRIMARY"), String(refused));
    }
    assert.equal(follower.runtime.stats().forwarding.outstanding, 0);
  });

  it("a primary lost after the request reached it leaves the outcome unknown, never a success", async () => {
    const { c, leader, follower } = await started();
    const pending = follower.runtime.propose(put("mid-forward", "v"), { forward: true, timeoutMs: 5000 });
    pending.catch(() => {});
    // Let the request reach the primary (it is serving it), then power-cut the primary.
    for (let turn = 0; turn < 50 && leader.runtime.stats().forwarding.serving === 0; turn++)
      await c.settle(1);
    assert.equal(leader.runtime.stats().forwarding.serving, 1, "the primary received the forwarded write");
    await c.crash(leader.id);
    await assert.rejects(c.await(pending, 1000), (error: unknown) => {
      assert.ok(isConclaveError(error), String(error));
      assert.ok(
        error.code === "CONCLAVE_OUTCOME_UNKNOWN" || error.code === "CONCLAVE_TIMEOUT",
        `${error.code}: ${error.message}`,
      );
      assert.match(error.message, /outcome is unknown/);
      return true;
    });
  });

  it("malformed, misaddressed or foreign forward messages are dropped and counted; the node keeps working", async () => {
    const { c, leader, follower } = await started();
    const receiver = c.network.find(leader.id);
    assert.ok(receiver);
    const from = { nodeId: follower.id, name: `${follower.id}@mem` };
    const junk: unknown[] = [
      { type: "forward-propose", id: 1, from: follower.id, to: leader.id, data: "not bytes", timeoutMs: 100 },
      { type: "forward-propose", id: 0, from: follower.id, to: leader.id, data: bytes("x"), timeoutMs: 100 },
      { type: "forward-propose", id: 2, from: follower.id, to: leader.id, data: bytes("x"), timeoutMs: -1 },
      {
        type: "forward-propose",
        id: 3,
        from: "someone-else",
        to: leader.id,
        data: bytes("x"),
        timeoutMs: 100,
      },
      { type: "forward-read-index", id: 4, from: follower.id, to: "not-me", timeoutMs: 100 },
      { type: "forward-result", id: 5, from: follower.id, to: leader.id, outcome: { ok: "maybe" } },
      { type: "forward-result", id: 6, from: follower.id, to: leader.id, outcome: { ok: false, code: "x" } },
      // A trace flag must be `true`; a primary's steps must be a short list of [name, ms] pairs.
      { type: "forward-read-index", id: 7, from: follower.id, to: leader.id, timeoutMs: 100, trace: "yes" },
      {
        type: "forward-result",
        id: 8,
        from: follower.id,
        to: leader.id,
        outcome: { ok: true, index: 1, term: 1 },
        trace: [["x".repeat(100), 1]],
      },
      // Well-formed, but an answer to a request never sent (or already settled): ignored, not counted.
      {
        type: "forward-result",
        id: 999,
        from: follower.id,
        to: leader.id,
        outcome: { ok: true, index: 1, term: 1 },
      },
    ];
    for (const message of junk) {
      const encoded = encodeBody(message);
      assert.ok(encoded.ok);
      assert.ok(receiver.receive(from, encoded.value));
    }
    await c.settle();
    assert.equal(leader.runtime.stats().forwarding.malformedDropped, 9);
    assert.equal(leader.runtime.stats().forwarding.served, 0, "nothing malformed was proposed");
    assert.ok(leader.runtime.running);
    const outcome = await c.await(follower.runtime.propose(put("after-junk", "ok"), { forward: true }));
    assert.deepEqual(outcome.result, { op: "put" });
  });

  it("a forwarded proposal that asks for it is restamped by the primary's hook; nothing else is", async () => {
    // The hook stands in for the database's clock stamp: it rewrites a put's value and records
    // on which member it ran.
    const stampedOn: string[] = [];
    let self = "";
    const stampAtPrimary = (data: Uint8Array): Uint8Array => {
      stampedOn.push(self);
      const { key } = unpack(data) as { key: string };
      if (key === "broken") throw new Error("cannot stamp this one");
      return put(key, "stamped");
    };
    const { c, leader, follower } = await started({ stampAtPrimary });
    self = leader.id;
    const value = (key: string): (string | null)[] =>
      [...c.members.values()].map((member) => text(member.machine.read(key)));

    const stamped = await c.await(
      follower.runtime.propose(put("lease-like", "secondary clock"), { forward: true, stampAtPrimary: true }),
    );
    const plain = await c.await(follower.runtime.propose(put("plain", "as sent"), { forward: true }));
    const local = await c.await(
      leader.runtime.propose(put("local", "primary clock"), { forward: true, stampAtPrimary: true }),
    );
    // A hook that throws: the command is proposed as it came (the state machine judges it).
    const broken = await c.await(
      follower.runtime.propose(put("broken", "as sent"), { forward: true, stampAtPrimary: true }),
    );
    const last = Math.max(stamped.index, plain.index, local.index, broken.index);
    await c.run(() => [...c.members.values()].every((m) => m.runtime.status().applied >= last));
    assert.deepEqual(
      value("lease-like"),
      ["stamped", "stamped", "stamped"],
      "every member applied the primary's stamp",
    );
    assert.deepEqual(value("plain"), ["as sent", "as sent", "as sent"], "no stamp unless asked");
    assert.deepEqual(
      value("local"),
      ["primary clock", "primary clock", "primary clock"],
      "the primary's own proposal is already stamped by it",
    );
    assert.deepEqual(value("broken"), ["as sent", "as sent", "as sent"]);
    assert.deepEqual(
      stampedOn,
      [leader.id, leader.id],
      "the hook ran on the primary, once per stamped forward",
    );
  });

  it("forwarded requests beyond the outstanding bound are refused busy (nothing proposed)", async () => {
    const { c, follower } = await started({ forwarding: { outstandingMax: 1 } });
    const first = follower.runtime.propose(put("b1", "1"), { forward: true });
    const second = follower.runtime.propose(put("b2", "2"), { forward: true });
    await assert.rejects(c.await(second), (error: unknown) => isConclaveError(error, "CONCLAVE_BUSY"));
    assert.deepEqual((await c.await(first)).result, { op: "put" });
  });

  it("a forward that settled otherwise (aborted) frees its place under the bound at once", async () => {
    const { c, follower } = await started({ forwarding: { outstandingMax: 1 } });
    const abort = new AbortController();
    const first = follower.runtime.propose(put("a1", "1"), { forward: true, signal: abort.signal });
    abort.abort();
    // Same turn: no loop turn has pruned the aborted request yet; reaching the bound prunes it.
    const second = follower.runtime.propose(put("a2", "2"), { forward: true });
    await assert.rejects(c.await(first), (error: unknown) => isConclaveError(error, "CONCLAVE_ABORTED"));
    assert.deepEqual((await c.await(second)).result, { op: "put" });
  });

  it("a traced request gets the primary's steps back, placed between forwarding and the answer", async () => {
    const { c, leader, follower } = await started();
    // Without durable notices the primary's answer is what settles a forwarded write.
    leader.loses = (_to, message) => (message as { type?: unknown }).type === "durable";
    const names = (trace: RequestTrace, on?: string): string[] =>
      trace
        .steps()
        .filter((step) => step.on === on)
        .map((step) => step.step);
    const writeTrace = new RequestTrace();
    await c.await(follower.runtime.propose(put("traced", "v"), { forward: true, trace: writeTrace }));
    assert.deepEqual(names(writeTrace), ["forwarded", "primary answered"]);
    assert.deepEqual(names(writeTrace, leader.id), primaryStepsOfForwardedWrite);
    const times = writeTrace.steps().map((step) => step.atMs);
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      "the primary's steps fall between forwarding and the answer",
    );

    const readTrace = new RequestTrace();
    await c.await(follower.runtime.readIndex({ forward: true, trace: readTrace }));
    assert.deepEqual(names(readTrace), ["forwarded", "primary answered", "caught up"]);
    assert.deepEqual(names(readTrace, leader.id), [
      "received",
      "read index confirmed",
      "caught up",
      "answered",
    ]);

    // A request that cannot become slow because of the primary gets only the primary's total.
    const briefTrace = new RequestTrace({ detailAfterMs: 60_000 });
    await c.await(follower.runtime.propose(put("traced-brief", "v"), { forward: true, trace: briefTrace }));
    assert.deepEqual(names(briefTrace, leader.id), ["answered"]);
    assert.deepEqual(names(briefTrace), ["forwarded", "primary answered"]);

    const localTrace = new RequestTrace();
    await c.await(leader.runtime.propose(put("traced-local", "v"), { trace: localTrace }));
    assert.deepEqual(names(localTrace), [
      "proposed",
      "log write started",
      "log written",
      "committed",
      "applied",
    ]);
  });

  it("a secondary answers its forwarded write from its own state machine once the primary's durable notice names it", async () => {
    const { c, leader, follower } = await started();
    // The primary's answers never arrive: the write is settled by the follower's own apply.
    leader.loses = (_to, message) => (message as { type?: unknown }).type === "forward-result";
    const trace = new RequestTrace();
    const outcome = await c.await(
      follower.runtime.propose(put("answered-here", "v"), { forward: true, trace, timeoutMs: 3000 }),
    );
    assert.deepEqual(outcome.result as KvResult, { op: "put" }, "the state machine's own result");
    assert.equal(text(follower.machine.read("answered-here")), "v");
    const steps = trace.steps().map((step) => step.step);
    assert.deepEqual(steps.slice(0, 2), ["forwarded", "primary durable"]);
    assert.equal(steps.at(-1), "applied");
    assert.ok(!steps.includes("primary answered"));
    // The primary applies it too, and only once everywhere; nothing is left outstanding.
    await c.run(() => [...c.members.values()].every((m) => m.runtime.status().applied >= outcome.index));
    assert.equal(follower.runtime.stats().forwarding.outstanding, 0);
  });

  it("durable notices go only to the member that forwarded the writes they cover, naming each one", async () => {
    const { c, leader, follower } = await started();
    const notices: { to: string; forwarded: unknown }[] = [];
    leader.onSend = (to, message) => {
      const sent = message as { type?: unknown; forwarded?: unknown };
      if (sent.type === "durable") notices.push({ to, forwarded: sent.forwarded });
    };
    await c.await(leader.runtime.propose(put("on-primary", "v")));
    assert.deepEqual(notices, [], "a write proposed on the primary wakes no follower with a notice");
    const outcome = await c.await(follower.runtime.propose(put("forwarded", "v"), { forward: true }));
    const sent = notices as { to: string; forwarded: unknown }[]; // (deepEqual above narrowed it)
    assert.equal(sent.length, 1);
    assert.equal(sent[0]?.to, follower.id);
    const pairs = sent[0]?.forwarded as [number, number][];
    assert.equal(pairs.length, 1);
    assert.equal(pairs[0]?.[1], outcome.index, "the notice names the write's log index");
  });

  it("a malformed durable notice is dropped and counted, logged once a minute per peer; the node keeps working", async () => {
    const warnings: string[] = [];
    const logger = {
      debug: () => {},
      info: () => {},
      error: () => {},
      warn: (_fields: unknown, message: string) => warnings.push(message),
    };
    const { c, leader, follower } = await started({ logger });
    const receiver = c.network.find(follower.id);
    assert.ok(receiver);
    const from = { nodeId: leader.id, name: `${leader.id}@mem` };
    const { term } = follower.runtime.status();
    const junk: unknown[] = [
      { type: "durable", from: leader.id, to: follower.id, term, index: -1 },
      { type: "durable", from: leader.id, to: follower.id, term, index: 5, forwarded: [[1]] },
      { type: "durable", from: leader.id, to: follower.id, term, index: 5, forwarded: [[1, "2"]] },
      { type: "durable", from: leader.id, to: follower.id, term, index: 5, forwarded: "all" },
    ];
    const before = follower.runtime.stats().malformedMessagesDropped;
    for (const message of junk) {
      const encoded = encodeBody(message);
      assert.ok(encoded.ok);
      assert.ok(receiver.receive(from, encoded.value));
    }
    await c.settle();
    assert.equal(follower.runtime.stats().malformedMessagesDropped, before + junk.length);
    const dropped = warnings.filter((warning) => warning.startsWith("dropped a malformed cluster message"));
    assert.equal(dropped.length, 1, "one warning for four drops from one peer within a minute");
    assert.match(dropped[0] ?? "", /another build/);
    const outcome = await c.await(follower.runtime.propose(put("after-junk", "ok"), { forward: true }));
    assert.deepEqual(outcome.result, { op: "put" });
  });
});
