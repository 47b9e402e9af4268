/**
 * One test per rule of the Raft paper's §5 (in the spirit of etcd's raft_paper_test.go), each on
 * one node fed hand-made messages, or on a small cluster where the rule is about several nodes.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { AppendResponse, Message, RaftNode } from "../../src/raft/index.ts";
import { Cluster } from "./harness.ts";
import { encodeCommand } from "./kv-store.ts";
import {
  appendMessage,
  drain,
  exchange,
  logOf,
  loneNode,
  makeLeader,
  noops,
  voteMessage,
} from "./lone-node.ts";

const heartbeatFrom = (from: string, to: string, term: number, commit = 0): Message => ({
  type: "heartbeat",
  from,
  to,
  term,
  commit,
  round: 1,
});

const appendOk = (from: string, term: number, matchIndex: number): AppendResponse => ({
  type: "append-response",
  from,
  to: "a",
  term,
  success: true,
  matchIndex,
  rejectedIndex: 0,
  conflictIndex: 0,
  conflictTerm: 0,
  lastIndex: matchIndex,
});

function brief(node: RaftNode): { role: string; term: number; leader: string | null } {
  const { role, term, leader } = node.status();
  return { role, term, leader };
}

function ticksUntilCampaign(node: RaftNode): number {
  for (let ticks = 1; ticks <= 100; ticks++) {
    node.tick();
    if (node.status().role !== "follower") return ticks;
  }
  throw new Error("never campaigned");
}

// ---------------------------------------------------------------- §5.1 terms

test("§5.1 a follower, a candidate and a leader that see a higher term become followers of it", () => {
  const follower = loneNode("a");
  follower.step(heartbeatFrom("b", "a", 2));
  assert.deepEqual(brief(follower), { role: "follower", term: 2, leader: "b" });

  const candidate = loneNode("a");
  candidate.campaign();
  candidate.step(appendMessage({ from: "c", to: "a", term: 3, prevIndex: 1, prevTerm: 1 }));
  assert.deepEqual(brief(candidate), { role: "follower", term: 3, leader: "c" });

  const leader = loneNode("a");
  makeLeader(leader);
  leader.step({ ...appendOk("b", 4, 0), success: false });
  assert.deepEqual(brief(leader), { role: "follower", term: 4, leader: null });
});

test("§5.1 a request with a stale term is refused and answered with the current term", () => {
  const node = loneNode("a", { term: 3 });
  node.step(heartbeatFrom("b", "a", 2));
  node.step(voteMessage({ from: "c", to: "a", term: 2, lastLogIndex: 9, lastLogTerm: 2 }));
  const { messages } = drain(node);
  assert.deepEqual(
    messages.map((message) => [message.type, message.to, message.term]),
    [["append-response", "b", 3]],
    "the stale leader learns term 3; the stale candidate gets no vote",
  );
  assert.deepEqual(brief(node), { role: "follower", term: 3, leader: null });
});

// ---------------------------------------------------------------- §5.2 elections

test("§5.2 the leader sends a heartbeat to every peer every heartbeatTicks", () => {
  const leader = loneNode("a", { heartbeatTicks: 3 });
  makeLeader(leader);
  const sentPerTick: string[] = [];
  for (let tick = 1; tick <= 6; tick++) {
    leader.tick();
    const heartbeats = drain(leader).messages.filter((message) => message.type === "heartbeat");
    sentPerTick.push(heartbeats.map((message) => message.to).join(","));
  }
  assert.deepEqual(sentPerTick, ["", "", "b,c", "", "", "b,c"]);
});

test("§5.2 a follower that hears from nobody campaigns after a timeout in [T, 2T)", () => {
  for (let seed = 1; seed <= 30; seed++) {
    const ticks = ticksUntilCampaign(loneNode("a", { seed }));
    assert.ok(ticks >= 10 && ticks < 20, `seed ${seed}: campaigned after ${ticks} ticks`);
  }
});

test("§5.2 election timeouts are randomized: differently seeded nodes time out at different ticks", () => {
  const timeouts = new Set<number>();
  for (let seed = 1; seed <= 30; seed++) timeouts.add(ticksUntilCampaign(loneNode("a", { seed })));
  assert.ok(timeouts.size >= 5, `only ${timeouts.size} distinct timeouts`);
});

test("§5.2 a follower that keeps hearing from its leader never campaigns", () => {
  const node = loneNode("a");
  for (let tick = 1; tick <= 200; tick++) {
    node.tick();
    if (tick % 5 === 0) node.step(heartbeatFrom("b", "a", 1));
    drain(node);
  }
  assert.deepEqual(brief(node), { role: "follower", term: 1, leader: "b" });
});

test("§5.2 a candidate raises its term, votes for itself (persisted) and asks every other voter", () => {
  const node = loneNode("a", { log: logOf([1, 1]) });
  node.campaign();
  const { messages, hardState } = drain(node);
  assert.deepEqual(hardState, { term: 2, vote: "a", commit: 1 });
  assert.deepEqual(messages, [
    voteMessage({ from: "a", to: "b", term: 2, lastLogIndex: 2, lastLogTerm: 1 }),
    voteMessage({ from: "a", to: "c", term: 2, lastLogIndex: 2, lastLogTerm: 1 }),
  ]);
});

test("§5.2 a candidate wins with a majority of votes and loses with a majority of refusals", () => {
  const winner = loneNode("a");
  winner.campaign();
  winner.step({ type: "vote-response", from: "c", to: "a", term: 2, preVote: false, granted: true });
  assert.equal(winner.status().role, "leader");

  const loser = loneNode("a");
  loser.campaign();
  for (const from of ["b", "c"]) {
    loser.step({ type: "vote-response", from, to: "a", term: 2, preVote: false, granted: false });
  }
  assert.deepEqual(brief(loser), { role: "follower", term: 2, leader: null });
});

test("§5.2 a candidate that hears from a leader of its own term becomes its follower", () => {
  const node = loneNode("a");
  node.campaign();
  node.step(appendMessage({ from: "b", to: "a", term: 2, prevIndex: 1, prevTerm: 1 }));
  assert.deepEqual(brief(node), { role: "follower", term: 2, leader: "b" });
});

test("§5.2 after a split vote the candidate times out and starts a new election in a higher term", () => {
  const node = loneNode("a");
  node.campaign();
  drain(node);
  for (let tick = 0; tick < 20 && node.status().term === 2; tick++) node.tick();
  assert.deepEqual(brief(node), { role: "candidate", term: 3, leader: null });
  assert.equal(node.status().vote, "a");
});

test("§5.2 a voter grants at most one vote per term, first come first served, in the Ready that persists it", () => {
  const node = loneNode("a");
  node.step(voteMessage({ from: "b", to: "a", term: 2, lastLogIndex: 1, lastLogTerm: 1 }));
  const ready = node.ready();
  assert.deepEqual(
    ready.hardState,
    { term: 2, vote: "b", commit: 1 },
    "the vote is persisted before it is sent",
  );
  assert.deepEqual(
    ready.messages.map((message) => message.type === "vote-response" && message.granted),
    [true],
  );
  node.advance();
  node.step(voteMessage({ from: "c", to: "a", term: 2, lastLogIndex: 5, lastLogTerm: 1 }));
  node.step(voteMessage({ from: "b", to: "a", term: 2, lastLogIndex: 1, lastLogTerm: 1 }));
  assert.deepEqual(
    drain(node).messages.map(
      (message) => `${message.to}:${message.type === "vote-response" && message.granted}`,
    ),
    ["c:false", "b:true"],
    "c is refused; b's repeated request is granted again",
  );
});

test("§5.2 a restarted voter remembers its vote", () => {
  const node = loneNode("a", { term: 2, vote: "b" });
  node.step(voteMessage({ from: "c", to: "a", term: 2, lastLogIndex: 1, lastLogTerm: 1 }));
  const [answer] = drain(node).messages;
  assert.equal(answer?.type === "vote-response" && answer.granted, false);
});

test("§5.4.1 a voter refuses a candidate whose log is less up-to-date than its own", () => {
  // The voter's log ends at index 3 in term 2.
  const cases: [lastLogIndex: number, lastLogTerm: number, granted: boolean][] = [
    [3, 1, false], // older last term
    [2, 2, false], // same last term, shorter
    [3, 2, true], // same
    [4, 2, true], // longer
    [2, 3, true], // newer last term, even if shorter
  ];
  for (const [lastLogIndex, lastLogTerm, granted] of cases) {
    const voter = loneNode("a", { term: 2, log: logOf([1, 2, 2]) });
    voter.step(voteMessage({ from: "b", to: "a", term: 3, lastLogIndex, lastLogTerm }));
    const [answer] = drain(voter).messages;
    assert.equal(
      answer?.type === "vote-response" && answer.granted,
      granted,
      `candidate ${lastLogIndex}/${lastLogTerm}`,
    );
  }
});

// ---------------------------------------------------------------- §5.3 replication

test("§5.3 a new leader appends a no-op of its term and sends it to every follower", () => {
  const leader = loneNode("a");
  leader.campaign();
  drain(leader);
  leader.step({ type: "vote-response", from: "b", to: "a", term: 2, preVote: false, granted: true });
  const { messages, entries } = drain(leader);
  assert.deepEqual(entries, [{ kind: "noop", index: 2, term: 2 }]);
  assert.deepEqual(
    messages.filter((message) => message.type === "append"),
    ["b", "c"].map((to) =>
      appendMessage({ from: "a", to, term: 2, prevIndex: 1, prevTerm: 1, entries: entries, commit: 1 }),
    ),
  );
});

test("§5.3 an entry is committed (and applied) once a majority stores it, not before", () => {
  const leader = loneNode("a");
  makeLeader(leader);
  leader.step(appendOk("b", 2, 2));
  drain(leader);
  const proposal = leader.propose(encodeCommand("x", "1"));
  assert.deepEqual(proposal, { ok: true, index: 3, term: 2 });
  assert.equal(drain(leader).committed.length, 0, "only the leader stores it");
  leader.step(appendOk("c", 2, 3));
  const { committed } = drain(leader);
  assert.deepEqual(
    committed.map((entry) => entry.index),
    [3],
  );
  assert.equal(leader.status().commit, 3);
});

test("§5.3 the commit index reaches followers with the next append or heartbeat, capped at what they hold", () => {
  const follower = loneNode("a", { log: logOf([1, 1, 1]) });
  follower.step(appendMessage({ from: "b", to: "a", term: 1, prevIndex: 2, prevTerm: 1, commit: 9 }));
  assert.equal(follower.status().commit, 2, "only up to the last entry the append vouches for");
  follower.step(heartbeatFrom("b", "a", 1, 3));
  assert.equal(follower.status().commit, 3);
  assert.deepEqual(
    drain(follower).committed.map((entry) => entry.index),
    [2, 3],
  );
});

test("a commit-only append moves the follower's commit without an answer; a mismatch or a plain empty append is answered", () => {
  const follower = loneNode("a", { log: logOf([1, 1, 1]) });
  const update = { from: "b", to: "a", term: 1, prevIndex: 3, prevTerm: 1, commit: 3 } as const;
  follower.step(appendMessage({ ...update, commitOnly: true }));
  const quiet = drain(follower);
  assert.equal(follower.status().commit, 3);
  assert.deepEqual(quiet.messages, [], "the leader waits for no answer to a commit update");
  assert.deepEqual(
    quiet.committed.map((entry) => entry.index),
    [2, 3],
  );
  // The follower's log does not hold prevIndex 4: the leader must hear of it.
  follower.step(appendMessage({ ...update, prevIndex: 4, commitOnly: true }));
  const [rejection] = drain(follower).messages;
  assert.equal(rejection?.type === "append-response" && rejection.success, false);
  // Without the flag (an older leader, or one retrying a lost acknowledgement) the answer comes.
  follower.step(appendMessage(update));
  const [answer] = drain(follower).messages;
  assert.deepEqual(answer?.type === "append-response" && [answer.success, answer.matchIndex], [true, 3]);
});

test("a leader marks only commit updates to a streaming follower as commit-only", () => {
  const leader = loneNode("a");
  makeLeader(leader);
  leader.step(appendOk("b", 2, 2));
  leader.step(appendOk("c", 2, 2));
  const appends = drain(leader).messages.filter((message) => message.type === "append");
  assert.deepEqual(
    appends.map((message) => [message.to, message.entries.length, message.commitOnly]),
    [
      ["b", 0, true],
      ["c", 0, true],
    ],
    "the no-op's commit reaches b and c as commit-only appends",
  );
  leader.propose(encodeCommand("x", "1"));
  const withEntries = drain(leader).messages.filter((message) => message.type === "append");
  assert.deepEqual(
    withEntries.map((message) => [message.to, message.entries.length, message.commitOnly]),
    [
      ["b", 1, false],
      ["c", 1, false],
    ],
  );
});

test("§5.3 a follower refuses an append whose previous entry does not match, and keeps its log", () => {
  const follower = loneNode("a", { log: logOf([1, 1, 1]) });
  follower.step(
    appendMessage({
      from: "b",
      to: "a",
      term: 2,
      prevIndex: 3,
      prevTerm: 2,
      entries: noops(4, [2]),
      commit: 3,
    }),
  );
  const { messages, entries } = drain(follower);
  assert.deepEqual(entries, []);
  assert.equal(follower.status().lastIndex, 3);
  assert.equal(follower.status().commit, 1);
  const [answer] = messages;
  assert.equal(answer?.type, "append-response");
  assert.deepEqual(
    answer?.type === "append-response" && [answer.success, answer.rejectedIndex, answer.conflictTerm],
    [false, 3, 1],
  );
});

test("§5.3 the leader backs off after a refusal; fast back-off skips a whole conflicting term at once", () => {
  // b holds five entries of term 2 (4..8) that the leader a (term 5, entries of term 4) never had.
  const leader = loneNode("a", { term: 4, log: logOf([1, 1, 1, 4, 4, 4]) });
  const follower = loneNode("b", { term: 4, log: logOf([1, 1, 1, 2, 2, 2, 2, 2]) });
  makeLeader(leader, ["c"]);
  const delivered = exchange([leader, follower], reprobe(leader, "b"));
  const refusals = delivered.filter((message) => message.type === "append-response" && !message.success);
  assert.equal(refusals.length, 1, "one round trip skips indexes 4..7");
  assert.deepEqual(
    { lastIndex: follower.status().lastIndex, lastTerm: follower.status().lastTerm },
    { lastIndex: 7, lastTerm: 5 },
  );
});

/** makeLeader drained (never delivered) the first probe; a heartbeat answer from `peer` makes the leader probe again. */
function reprobe(leader: RaftNode, peer: string): Message[] {
  const term = leader.status().term;
  leader.step({ type: "heartbeat-response", from: peer, to: leader.id, term, round: 1, lastIndex: 0 });
  return drain(leader).messages.filter((message) => message.to === peer);
}

test("§5.3 a follower deletes a conflicting entry and all that follow it, and keeps the matching prefix", () => {
  const follower = loneNode("a", { term: 2, log: logOf([1, 1, 2, 2]) });
  follower.step(
    appendMessage({
      from: "b",
      to: "a",
      term: 3,
      prevIndex: 2,
      prevTerm: 1,
      entries: noops(3, [3]),
      commit: 1,
    }),
  );
  const { entries, messages } = drain(follower);
  assert.deepEqual(entries, [{ kind: "noop", index: 3, term: 3 }], "persist from index 3 on, overwriting");
  assert.deepEqual(
    { lastIndex: follower.status().lastIndex, lastTerm: follower.status().lastTerm },
    { lastIndex: 3, lastTerm: 3 },
  );
  const [answer] = messages;
  assert.equal(answer?.type === "append-response" && answer.matchIndex, 3);
});

test("§5.3 an append of entries the follower already holds truncates nothing (reordered or repeated)", () => {
  const follower = loneNode("a", { term: 2, log: logOf([1, 1, 2, 2]) });
  follower.step(
    appendMessage({
      from: "b",
      to: "a",
      term: 2,
      prevIndex: 1,
      prevTerm: 1,
      entries: noops(2, [1]),
      commit: 1,
    }),
  );
  const { entries, messages } = drain(follower);
  assert.deepEqual(entries, []);
  assert.equal(follower.status().lastIndex, 4);
  const [answer] = messages;
  assert.equal(answer?.type === "append-response" && answer.matchIndex, 2, "vouches only for what was sent");
});

test("§5.3 a leader never overwrites or deletes its own entries (leader append-only)", () => {
  const leader = loneNode("a", { term: 2, log: logOf([1, 2, 2]) });
  makeLeader(leader);
  leader.propose(encodeCommand("x", "1"));
  drain(leader);
  const before = { lastIndex: leader.status().lastIndex, lastTerm: leader.status().lastTerm };
  // Refusals with every kind of hint, and a stale success, only move the leader's view of b.
  for (const [rejectedIndex, conflictIndex, conflictTerm] of [
    [5, 1, 0],
    [4, 2, 1],
    [3, 3, 2],
  ] as const) {
    leader.step({ ...appendOk("b", 3, 0), success: false, rejectedIndex, conflictIndex, conflictTerm });
  }
  leader.step(appendOk("b", 3, 1));
  const { entries } = drain(leader);
  assert.deepEqual(entries, [], "nothing to re-persist");
  assert.deepEqual({ lastIndex: leader.status().lastIndex, lastTerm: leader.status().lastTerm }, before);
  assert.equal(leader.status().role, "leader");
});

// ---------------------------------------------------------------- §5.4 safety

test("§5.4.2 an entry of an older term stored on a majority is committed only with an entry of the current term", () => {
  // Figure 8: a leads term 3; entries 2..3 are from term 2. b already stores them all.
  const leader = loneNode("a", { term: 2, log: logOf([1, 2, 2]) });
  makeLeader(leader);
  assert.equal(leader.status().lastIndex, 4, "the term-3 no-op is at 4");
  leader.step(appendOk("b", 3, 3));
  assert.equal(
    leader.status().commit,
    1,
    "3 is on a majority (a, b) but from term 2: not committed by counting",
  );
  leader.step(appendOk("b", 3, 4));
  assert.equal(leader.status().commit, 4);
  assert.deepEqual(
    drain(leader).committed.map((entry) => `${entry.index}/${entry.term}`),
    ["2/2", "3/2", "4/3"],
  );
});

test("§5.4.1 leader completeness: a node missing a committed entry cannot be elected", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.isolate("c");
  cluster.propose("a", "x", "1");
  cluster.tickAll(2);
  assert.deepEqual(cluster.applied("b"), { x: "1" }, "committed by a and b");
  // a disappears; c (without x) and b remain. c asks first; only b can win.
  cluster.partition(["b", "c"], ["a"]);
  cluster.tickAll(10);
  cluster.on("c", (raft) => raft.campaign());
  cluster.tickUntil(() => cluster.leader() === "b" || cluster.leader() === "c", 60);
  assert.equal(cluster.leader(), "b");
  cluster.tickAll(1);
  assert.deepEqual(cluster.applied("c"), { x: "1" });
});
