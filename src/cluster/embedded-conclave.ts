/**
 * The embedding API: a Conclave node inside an application process, with the replicated
 * database (`db`, `kv`), locks, role events and leader-only work. `createConclave` in
 * src/conclave.ts builds it over a node; this file depends on the node's interface only.
 *
 * Every operation uses the same runtime paths as the HTTP API (which the node still serves on
 * `http.port`): writes and linearizable reads made on a secondary are forwarded to the primary.
 *
 * @example
 * ```ts
 * const conclave = await createConclave({ configFile: "conclave.toml" });
 * conclave.onPrimary(async (signal) => runLeaderOnlyJobs(signal));
 * await conclave.start();
 * await conclave.db.execute([{ sql: "CREATE TABLE IF NOT EXISTS runs (at TEXT)" }]);
 * // …
 * await conclave.stop();
 * ```
 */
import type { Database, KvChange } from "../ports/database.ts";
import type { Logger } from "../ports/logger.ts";
import type { RaftRuntime } from "../runtime/raft-runtime.ts";
import { EmbeddedDb, EmbeddedKv } from "./embedded-database.ts";
import { type WatchOptions, watchChanges } from "./kv-watch-iterator.ts";
import { Locks } from "./locks.ts";
import { type ConclaveEvents, RoleEvents } from "./role-events.ts";

/** What the embedding API needs of a node (src/conclave.ts's `ConclaveNode` has it all). */
export interface EmbeddableNode {
  readonly nodeName: string;
  readonly raftId: string;
  readonly runtime: RaftRuntime;
  readonly database: Database;
  readonly logger: Logger;
  /** The clock lease commands are stamped with (lease-clock.ts). */
  leaseClockMs(): number;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The key-value store, with watches. */
export class ConclaveKv extends EmbeddedKv {
  readonly #database: Database;
  readonly #stopped: AbortSignal;

  constructor(parts: ConstructorParameters<typeof EmbeddedKv>[0], stopped: AbortSignal) {
    super(parts);
    this.#database = parts.database;
    this.#stopped = stopped;
  }

  /**
   * Changes under `prefix` as they are applied on this member (history first when
   * `fromRevision` is given); ends on `signal`, on `stop()`, or when the loop breaks.
   *
   * @example
   * ```ts
   * for await (const change of conclave.kv.watch("jobs/", { signal })) console.log(change.key);
   * ```
   */
  watch(prefix: string, options: WatchOptions = {}): AsyncGenerator<KvChange, void, undefined> {
    return watchChanges(this.#database, prefix, { ...options, stopped: this.#stopped });
  }
}

/** An embedded Conclave node. Build it with `createConclave` (src/conclave.ts). */
export class Conclave {
  readonly db: EmbeddedDb;
  readonly kv: ConclaveKv;
  readonly locks: Locks;
  readonly #node: EmbeddableNode;
  readonly #stopped = new AbortController();
  readonly #roles: RoleEvents;
  #state: "new" | "started" | "stopped" = "new";

  constructor(node: EmbeddableNode) {
    this.#node = node;
    const parts = { runtime: node.runtime, database: node.database, leaseClockMs: () => node.leaseClockMs() };
    this.db = new EmbeddedDb(parts);
    this.kv = new ConclaveKv(parts, this.#stopped.signal);
    this.locks = new Locks({
      kv: this.kv,
      runtime: node.runtime,
      database: node.database,
      stopped: this.#stopped.signal,
    });
    // Subscribed before start, so that the first role change is seen.
    this.#roles = new RoleEvents(node.runtime, node.logger);
  }

  /** `name@host` of this node. */
  get nodeName(): string {
    return this.#node.nodeName;
  }

  /** This node's Raft id (the short name). */
  get raftId(): string {
    return this.#node.raftId;
  }

  /** True while this node is the primary. */
  get isPrimary(): boolean {
    return this.#roles.isPrimary;
  }

  /** The runtime underneath (status, transfer of leadership, counters). */
  get runtime(): RaftRuntime {
    return this.#node.runtime;
  }

  /** Starts the node (storage, cluster transport, HTTP API). */
  async start(): Promise<void> {
    this.#state = "started";
    await this.#node.start();
  }

  /** Stops leader-only work and watches, then the node. Idempotent. */
  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    this.#stopped.abort();
    this.#roles.stop();
    await this.#node.stop();
  }

  /**
   * Subscribes to `primary`, `secondary`, `role-changed` or `fatal`; returns the remover.
   * (`member-joined` / `member-left` come with join and leave: membership is static today.)
   *
   * @example
   * ```ts
   * conclave.on("fatal", ({ error }) => { console.error(error); process.exit(1); });
   * ```
   */
  on<K extends keyof ConclaveEvents>(name: K, listener: (event: ConclaveEvents[K]) => void): () => void {
    return this.#roles.on(name, listener);
  }

  /**
   * Runs `fn(signal)` each time this node becomes the primary; `signal` aborts when it stops
   * being the primary or the node stops. Returns a remover. See role-events.ts for the limit
   * (a deposed primary may overlap for up to an election timeout: use a lock to exclude it).
   *
   * @example
   * ```ts
   * conclave.onPrimary(async (signal) => {
   *   while (!signal.aborted) { await runJob(); await sleep(1000, undefined, { signal }).catch(() => {}); }
   * });
   * ```
   */
  onPrimary(fn: (signal: AbortSignal) => unknown): () => void {
    return this.#roles.onPrimary(fn);
  }
}
