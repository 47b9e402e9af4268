/**
 * Keeps this node's row of the replicated member list true: once the node is in the Raft
 * membership and a primary is known, it proposes `member-announce` with its own record (its
 * addresses, role and preferences from its configuration) whenever the row is missing or says
 * something else — at first start of a static cluster, after a restart with a new HTTP port, or
 * after a role change in the configuration. One proposal in flight; checked every second, after
 * each cluster change, and as soon as the node learns of a primary (cluster-services.ts), so the
 * first member of a new cluster has its row before a joiner takes the first position.
 *
 * @example
 * ```ts
 * const announcer = new MemberAnnouncer({ record, runtime, metadata, encode, logger });
 * announcer.start();
 * ```
 */
import type { ClusterCommand, ClusterMetadata, MemberRecord } from "../ports/cluster-metadata.ts";
import type { Logger } from "../ports/logger.ts";
import type { RaftRuntime } from "../runtime/raft-runtime.ts";

const checkIntervalMs = 1000;

export interface MemberAnnouncerOptions {
  /** This node's record as its configuration states it. */
  readonly record: MemberRecord;
  readonly runtime: Pick<RaftRuntime, "status" | "running" | "propose">;
  readonly metadata: ClusterMetadata;
  readonly encode: (command: ClusterCommand) => Uint8Array;
  readonly logger: Logger;
}

/** See the module comment. */
export class MemberAnnouncer {
  readonly #options: MemberAnnouncerOptions;
  #timer: NodeJS.Timeout | null = null;
  #inFlight = false;
  #lastRefusal = "";

  constructor(options: MemberAnnouncerOptions) {
    this.#options = options;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.check(), checkIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** True when the replicated row says what this node's configuration says. */
  upToDate(): boolean {
    const row = this.#options.metadata
      .members()
      .find((member) => member.raftId === this.#options.record.raftId);
    if (row === undefined) return false;
    return recordFields.every((field) => row[field] === this.#options.record[field]);
  }

  /** Proposes the record when needed (also called by the timer). */
  check(): void {
    const { runtime, record } = this.#options;
    if (this.#inFlight || this.#timer === null || !runtime.running) return;
    const status = runtime.status();
    const member =
      status.membership.voters.includes(record.raftId) || status.membership.learners.includes(record.raftId);
    if (!member || status.leader === null || this.upToDate()) return;
    this.#inFlight = true;
    runtime
      .propose(this.#options.encode({ kind: "cluster", op: "member-announce", member: record }), {
        forward: true,
        timeoutMs: 5000,
      })
      .then(({ result }) => {
        const outcome = result as { ok: boolean; error?: { message: string } };
        if (outcome.ok)
          this.#options.logger.info({}, "announced this member's addresses and preferences to the cluster");
        else this.#logRefusal(outcome.error?.message ?? "refused");
      })
      .catch((error: unknown) => this.#logRefusal(String(error)))
      .finally(() => {
        this.#inFlight = false;
      });
  }

  #logRefusal(message: string): void {
    if (message !== this.#lastRefusal)
      this.#options.logger.warn({ error: message }, "could not announce this member; retrying");
    this.#lastRefusal = message;
  }
}

const recordFields = [
  "nodeId",
  "nodeName",
  "clusterHost",
  "clusterPort",
  "httpUrl",
  "role",
  "neverPrimary",
  "priority",
  "segment",
  "configuredPosition",
] as const satisfies readonly (keyof MemberRecord)[];
