/**
 * How a node joins: `conclave join n1@10.0.0.5` on the new node makes it dial that member over
 * the cluster transport (both hold the cookie; the target admits the newcomer as a guest) and
 * send a `join-request` with its member record. The target checks that the record names the
 * node that authenticated, records the join through the log (`member-join`, forwarded to the
 * primary when the target is not it — the state machine refuses a tombstoned identity or a
 * taken name), then answers `join-reply` with the cluster's member addresses so the newcomer can
 * talk to the primary. From there the primary's reconciler adds it as a learner, it receives the
 * snapshot and catches up, and is promoted (membership-reconciler.ts).
 *
 * @example
 * ```ts
 * await joins.join({ nodeId: "n1", name: "n1@10.0.0.5", host: "10.0.0.5", port: 4370 }, selfRecord, 30_000);
 * ```
 */
import { ConclaveError } from "../lib/errors.ts";
import type { MemberRecord } from "../ports/cluster-metadata.ts";
import type { PeerAddress } from "../ports/transport.ts";
import { type ClusterMessage, guestNodeName, isGuest } from "./cluster-channel.ts";

/** How long the target keeps a joiner in its peer set before the member list has it. */
const joinerPeerTtlMs = 60_000;
/** How long a joiner keeps the addresses it was handed (until its own member list has them). */
const handedPeersTtlMs = 600_000;
/** A join request is resent this often until answered. */
const joinResendMs = 1000;

/** What the join protocol needs from the node. */
export interface JoinProtocolOptions {
  readonly send: (to: string, message: ClusterMessage) => boolean;
  readonly addTemporaryPeer: (peer: PeerAddress, ttlMs: number) => void;
  /** This node's current peer set (handed to joiners). */
  readonly peers: () => readonly PeerAddress[];
  /** Records the join in the log; resolves with the state machine's verdict. */
  readonly recordJoin: (
    member: MemberRecord,
  ) => Promise<{ ok: true } | { ok: false; code: string; message: string }>;
  readonly selfAddress: () => PeerAddress;
}

type JoinReply = { ok: true } | { ok: false; code: string; message: string };

/** Both sides of the join handshake. See the module comment. */
export class JoinProtocol {
  readonly #options: JoinProtocolOptions;
  /** Joiners whose request is being recorded (one at a time per joiner). */
  readonly #recording = new Set<string>();
  #waiting: { target: string; settle: (reply: JoinReply) => void } | null = null;

  constructor(options: JoinProtocolOptions) {
    this.#options = options;
  }

  /**
   * Asks `target` to let this node in; resolves once the join is recorded and the member
   * addresses are known. Throws `CONCLAVE_JOIN_REFUSED` (with the cluster's reason) or
   * `CONCLAVE_JOIN_TIMEOUT` (the target never answered: wrong address, cookie or cluster id).
   */
  async join(target: PeerAddress, self: MemberRecord, timeoutMs: number): Promise<void> {
    if (this.#waiting !== null) {
      throw new ConclaveError(
        "CONCLAVE_JOIN_BUSY",
        "a join is already in progress on this node; wait for it to finish",
      );
    }
    this.#options.addTemporaryPeer(target, handedPeersTtlMs);
    let resend: NodeJS.Timeout | undefined;
    let deadline: NodeJS.Timeout | undefined;
    try {
      const reply = await new Promise<JoinReply | "timeout">((resolve) => {
        this.#waiting = { target: target.nodeId, settle: resolve };
        const ask = () => this.#options.send(target.nodeId, { type: "join-request", member: self });
        ask();
        resend = setInterval(ask, joinResendMs);
        deadline = setTimeout(() => resolve("timeout"), timeoutMs);
      });
      if (reply === "timeout") {
        throw new ConclaveError(
          "CONCLAVE_JOIN_TIMEOUT",
          `${target.name} did not answer the join request within ${timeoutMs} ms; check its address and cluster port (${target.host}:${target.port}), that it runs, and that both nodes use the same cookie and cluster id`,
        );
      }
      if (!reply.ok)
        throw new ConclaveError(
          "CONCLAVE_JOIN_REFUSED",
          `${target.name} refused the join: ${reply.message}`,
          { code: reply.code },
        );
    } finally {
      clearInterval(resend);
      clearTimeout(deadline);
      this.#waiting = null;
    }
  }

  /** Handles `join-request` and `join-reply`; returns false for other types. */
  receive(from: string, message: ClusterMessage): boolean {
    if (message.type === "join-request") {
      void this.#answer(from, message.member);
      return true;
    }
    if (message.type === "join-reply") {
      this.#onReply(from, message);
      return true;
    }
    return false;
  }

  #onReply(from: string, message: ClusterMessage): void {
    const waiting = this.#waiting;
    if (waiting === null || from !== waiting.target) return;
    if (message.ok === true && Array.isArray(message.peers)) {
      for (const peer of message.peers as PeerAddress[]) {
        if (isPeerAddress(peer)) this.#options.addTemporaryPeer(peer, handedPeersTtlMs);
      }
      waiting.settle({ ok: true });
    } else if (message.ok === false) {
      waiting.settle({
        ok: false,
        code: String(message.code),
        message: String(message.message).slice(0, 2000),
      });
    }
  }

  async #answer(from: string, member: unknown): Promise<void> {
    if (!isMemberShape(member)) return; // not a join request we can answer (or even address)
    const claimed = isGuest(from) ? guestNodeName(from) : null;
    const peer: PeerAddress = {
      nodeId: member.raftId,
      name: member.nodeName,
      host: member.clusterHost,
      port: member.clusterPort,
    };
    if (claimed !== null && claimed !== member.nodeName) return; // the record must name who authenticated
    if (this.#recording.has(member.raftId)) return; // the resend of a request being recorded
    this.#recording.add(member.raftId);
    try {
      this.#options.addTemporaryPeer(peer, joinerPeerTtlMs);
      const verdict = await this.#options.recordJoin(member).catch((error: unknown) => ({
        ok: false as const,
        code: (error as { code?: string }).code ?? "CONCLAVE_JOIN_FAILED",
        message: error instanceof Error ? error.message : String(error),
      }));
      const peers = verdict.ok
        ? [
            this.#options.selfAddress(),
            ...this.#options.peers().filter((entry) => entry.nodeId !== member.raftId),
          ]
        : [];
      this.#options.send(
        member.raftId,
        verdict.ok ? { type: "join-reply", ok: true, peers } : { type: "join-reply", ...verdict },
      );
    } finally {
      this.#recording.delete(member.raftId);
    }
  }
}

function isPeerAddress(value: unknown): value is PeerAddress {
  const peer = value as Partial<PeerAddress> | null;
  return (
    typeof peer?.nodeId === "string" &&
    typeof peer.name === "string" &&
    typeof peer.host === "string" &&
    typeof peer.port === "number"
  );
}

/** Enough of a member record to address the joiner; the log command validates the rest. */
function isMemberShape(value: unknown): value is MemberRecord {
  const member = value as Partial<MemberRecord> | null;
  return (
    typeof member?.raftId === "string" &&
    typeof member.nodeName === "string" &&
    typeof member.clusterHost === "string" &&
    typeof member.clusterPort === "number" &&
    Number.isInteger(member.clusterPort) &&
    member.clusterPort > 0 &&
    member.clusterPort < 65_536 &&
    member.raftId.length <= 64 &&
    member.nodeName.length <= 300 &&
    member.clusterHost.length <= 300
  );
}
