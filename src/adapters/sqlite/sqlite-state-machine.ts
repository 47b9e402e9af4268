/**
 * The replicated database: every member applies the committed entries, in order, to its own
 * SQLite file `<dataDir>/db.sqlite`. An entry is one transaction that also records its index in
 * `_conclave_meta`, so `appliedIndex` is exact across restarts and never ahead of the data.
 *
 * @example
 * ```ts
 * const machine = new SqliteStateMachine({ dataDir });
 * const data = encodeCommand({ kind: "sql", statements: prepareSql([{ sql: "INSERT INTO t VALUES (1)" }], clock) });
 * machine.apply(data, 7); // { ok: true, results: [{ rowsChanged: 1, lastInsertRowid: 1 }] }
 * machine.query("SELECT count(*) AS n FROM t"); // { rows: [{ n: 1 }], truncated: false }
 * ```
 */
import { mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { assert } from "../../lib/assert.ts";
import { ConclaveError } from "../../lib/errors.ts";
import type { StateMachine, StateMachineSnapshot } from "../../ports/state-machine.ts";
import { ClusterCatalog, createClusterSchema } from "./cluster-catalog.ts";
import {
  type DatabaseCommand,
  decodeCommand,
  type KeyedCommand,
  type KvCommand,
  type SqlStatement,
  type SqlValue,
} from "./commands.ts";
import { createIdempotencySchema, IdempotencyTable } from "./idempotency.ts";
import { migrateKvLayout } from "./kv-layout-migration.ts";
import { createKvSchema } from "./kv-schema.ts";
import { type KvChange, type KvResult, KvStore } from "./kv-store.ts";
import { ReplicatedStatements } from "./replicated-statements.ts";
import { readOnlyAuthorizer, replicatedSqlAuthorizer } from "./sql-authorizer.ts";
import { readQueryProblem, replicationProblem } from "./sql-rewrite.ts";
import {
  alignSnapshotHeader,
  checkDatabaseFile,
  copyDatabaseInBackground,
  fsyncDirectory,
  fsyncFileInBackground,
  readCopyAppliedIndex,
  removeSidecarFiles,
  streamFileThenDelete,
  writeChunksToFile,
} from "./sqlite-snapshot-file.ts";
import { isEnvironmentalFailure, sqliteErrorCode, toSqlValue } from "./sqlite-values.ts";

/** Default: most rows one `query` returns. */
export const queryRowsMaxDefault = 10_000;
/** Default: most bytes (estimated) one `query` returns. */
export const queryBytesMaxDefault = 16 * 1024 * 1024;
/** Default: KV history revisions kept for watches. Must be the same on every member. */
export const kvHistoryRevisionsMaxDefault = 10_000;
/**
 * Default: how long applied entries may wait in one open SQLite transaction before it commits
 * (`cluster.apply_commit_interval_ms`); see {@link SqliteStateMachine.flushIfDue}.
 */
export const applyCommitIntervalMsDefault = 100;
/** Most entries one open transaction takes before it commits, however young it is. */
const applyCommitEntriesMax = 10_000;
/** SQLite's default automatic checkpoint threshold (pages of WAL), restored after a copy. */
const walAutocheckpointPages = 1000;

export interface SqliteStateMachineOptions {
  /** Holds `db.sqlite` (and its WAL) plus temporary snapshot files. */
  readonly dataDir: string;
  /** KV revisions of change history kept; the same on every member (it decides what is deleted). */
  readonly kvHistoryRevisionsMax?: number;
  /** Log entries an idempotency key is remembered for; the same on every member (idempotency.ts). */
  readonly idempotencyWindowEntries?: number;
  readonly queryRowsMax?: number;
  readonly queryBytesMax?: number;
  /** Milliseconds applied batches may stay uncommitted (0: each batch commits at its end). */
  readonly applyCommitIntervalMs?: number;
  /** Monotonic milliseconds, for the age of the open transaction (tests pass their own). */
  readonly now?: () => number;
}

/** The outcome of one statement. */
export interface StatementResult {
  readonly rowsChanged: number;
  readonly lastInsertRowid: number | bigint;
}

/** The outcome of an entry: per-statement results, or the error that rolled the entry back. */
export type ApplyResult =
  | { readonly ok: true; readonly results: readonly StatementResult[] }
  | KvResult
  | {
      readonly ok: false;
      readonly error: { readonly code: string; readonly message: string; readonly statementIndex?: number };
    };

/** Rows of a local read. */
export interface QueryResult {
  readonly rows: readonly Record<string, SqlValue>[];
  /** True when `queryRowsMax` or `queryBytesMax` cut the result short. */
  readonly truncated: boolean;
}

const databaseFileName = "db.sqlite";
const temporaryFilePattern = /^(snapshot-.*|restore)\.tmp(-wal|-shm|-journal)?$/;

/** SQLite + KV state machine. See the module comment and DESIGN.md. */
export class SqliteStateMachine implements StateMachine {
  readonly #dataDir: string;
  readonly #path: string;
  readonly #queryRowsMax: number;
  readonly #queryBytesMax: number;
  readonly kv: KvStore;
  /** The cluster's own metadata (members, settings); see cluster-catalog.ts. */
  readonly cluster: ClusterCatalog;
  readonly #clusterListeners = new Set<() => void>();
  readonly #idempotency: IdempotencyTable;
  #db: DatabaseSync;
  #batching = false;
  #batchChanges: KvChange[] = [];
  #clusterChangedInBatch = false;
  #triggerCheck: { version: number; any: boolean } | null = null;
  #reader: DatabaseSync | null = null;
  #statements = new Map<string, StatementSync>();
  /** Replicated SQL, prepared once per text (replicated-statements.ts; sql-rewrite.ts keeps the checks). */
  readonly #replicated = new ReplicatedStatements();
  #applied = 0;
  /** The applied index the open transaction has written to _conclave_meta. */
  #metaIndex = 0;
  #userSqlActive = false;
  #snapshotCount = 0;
  /**
   * While background copies run: the schema cookie after each entry that may have changed the
   * schema, from the copy's start on, ascending by index (see #cookieAt). A backup copy carries
   * a cookie of its own, so the source's is put back into its header.
   */
  #copyCookies: { index: number; cookie: number }[] = [];
  #copiesInFlight = 0;
  readonly #applyCommitIntervalMs: number;
  readonly #now: () => number;
  /** When the open transaction began (#now), and how many entries it holds. */
  #transactionOpenedAt = 0;
  #entriesUncommitted = 0;

  constructor(options: SqliteStateMachineOptions) {
    this.#dataDir = options.dataDir;
    this.#path = join(options.dataDir, databaseFileName);
    this.#queryRowsMax = options.queryRowsMax ?? queryRowsMaxDefault;
    this.#queryBytesMax = options.queryBytesMax ?? queryBytesMaxDefault;
    this.#applyCommitIntervalMs = options.applyCommitIntervalMs ?? applyCommitIntervalMsDefault;
    this.#now = options.now ?? (() => performance.now());
    mkdirSync(this.#dataDir, { recursive: true });
    // Copies a crash left behind, and the -wal/-shm files SQLite made beside them.
    for (const name of readdirSync(this.#dataDir)) {
      if (temporaryFilePattern.test(name)) rmSync(join(this.#dataDir, name), { force: true });
    }
    this.#db = this.#openDatabase();
    this.kv = new KvStore(this.#db, options.kvHistoryRevisionsMax ?? kvHistoryRevisionsMaxDefault);
    this.cluster = new ClusterCatalog(this.#db);
    this.#idempotency = new IdempotencyTable(this.#db, options.idempotencyWindowEntries);
    this.#applied = this.#readAppliedIndex();
  }

  /**
   * The last applied index. On disk, the index committed with the data may be behind it by the
   * open transaction (see {@link flushIfDue}); after a restart the node starts from the
   * committed one, which is never ahead of the data, and applies the rest from its log again.
   */
  get appliedIndex(): number {
    return this.#applied;
  }

  #openDatabase(): DatabaseSync {
    const db = new DatabaseSync(this.#path, { timeout: 0 });
    // WAL + synchronous=NORMAL: a commit never fsyncs (the Raft log is the durable record) yet a
    // crash or power loss only loses a suffix of whole transactions, never corrupts the file, and
    // applied_index commits with its entry — so appliedIndex is never ahead of the data.
    db.exec(
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA trusted_schema = OFF; PRAGMA journal_size_limit = 67108864;",
    );
    db.enableDefensive(true);
    db.exec(
      "CREATE TABLE IF NOT EXISTS _conclave_meta (id INTEGER PRIMARY KEY, applied_index INTEGER NOT NULL);",
    );
    db.exec("INSERT OR IGNORE INTO _conclave_meta (id, applied_index) VALUES (0, 0);");
    migrateKvLayout(db);
    createKvSchema(db);
    createClusterSchema(db);
    createIdempotencySchema(db);
    db.setAuthorizer(replicatedSqlAuthorizer(() => this.#userSqlActive));
    return db;
  }

  #readAppliedIndex(): number {
    const row = this.#sql("SELECT applied_index FROM _conclave_meta WHERE id = 0").get() as {
      applied_index: number;
    };
    return row.applied_index;
  }

  #sql(text: string): StatementSync {
    let statement = this.#statements.get(text);
    if (statement === undefined) {
      statement = this.#db.prepare(text);
      this.#statements.set(text, statement);
    }
    return statement;
  }

  /** Applies one committed entry (see the StateMachine contract); never throws for a bad command. */
  apply(data: Uint8Array, index: number): ApplyResult {
    if (index <= this.#applied) {
      const message = `entry ${index} was already applied (applied index ${this.#applied}); it is not applied twice`;
      return { ok: false, error: { code: "CONCLAVE_ALREADY_APPLIED", message } };
    }
    const decoded = decodeCommand(data);
    // An SQL entry that may end the whole transaction itself (`OR ROLLBACK`, a trigger's
    // RAISE(ROLLBACK)) would take the batch's earlier entries with it: it runs on its own.
    const alone =
      decoded.ok && decoded.command.kind === "sql" && this.#mayEndTransaction(decoded.command.statements);
    if (alone) this.#commitBatch();
    let result: ApplyResult;
    try {
      const inBatch = this.#db.isTransaction;
      if (decoded.ok && isPlainKvWrite(decoded.command)) {
        result = this.#applyPlainKvWrite(decoded.command);
      } else {
        this.#beginEntry(index);
        result = decoded.ok
          ? this.#applyCommand(decoded.command, index)
          : { ok: false, error: decoded.problem };
        this.#batchChanges.push(...this.#endEntry(index, result.ok, inBatch));
      }
      // After the entry's savepoint, so that an entry that failed still prunes.
      this.#idempotency.prune(index);
    } catch (error) {
      this.kv.abandonEntry();
      if (this.#db.isTransaction) this.#sql("ROLLBACK").run();
      this.#batchChanges = [];
      // The rollback took the earlier uncommitted entries with it: say what the file holds.
      this.#entriesUncommitted = 0;
      this.#applied = this.#readAppliedIndex();
      throw new ConclaveError(
        "CONCLAVE_DATABASE_FAILED",
        `applying entry ${index} failed in the database itself (disk, memory or corruption); the node stops rather than diverge: ${String(error)}`,
        { index },
        { cause: error },
      );
    }
    this.#applied = index;
    this.#entriesUncommitted += 1;
    if (this.#copiesInFlight > 0 && decoded.ok && decoded.command.kind !== "kv")
      this.#copyCookies.push({ index, cookie: this.#schemaCookie() });
    if (decoded.ok && decoded.command.kind === "cluster" && result.ok) this.#clusterChangedInBatch = true;
    if (!this.#batching || alone) this.#commitBatch();
    return result;
  }

  /**
   * Groups the entries applied until {@link endBatch} into one SQLite transaction (each entry
   * still its own savepoint, with its own result): one WAL write per batch instead of one per
   * entry. The runtime calls it around each batch of committed entries; callers see results only
   * after `endBatch` (promise continuations run later), and a crash before it re-applies the
   * batch from the log.
   */
  beginBatch(): void {
    this.#batching = true;
  }

  /**
   * Ends the batch: tells watches and cluster listeners what changed, but leaves the transaction
   * open for the next batches (up to `applyCommitIntervalMs`, see {@link flushIfDue}), so that
   * pages written by every batch (the applied index, the KV revision, the tails of the tables and
   * indexes) reach the WAL once per interval instead of once per batch.
   */
  endBatch(): void {
    this.#batching = false;
    if (this.#applyCommitIntervalMs === 0 || this.#entriesUncommitted >= applyCommitEntriesMax) {
      this.#commitBatch();
    } else {
      this.#settleBatch();
    }
  }

  /**
   * Commits the open transaction once it is `applyCommitIntervalMs` old; the runtime calls it
   * on every turn of its loop, idle ones included (they come with each tick).
   *
   * Why waiting is safe: the Raft log, fsynced before any entry is committed, is the durable
   * record; SQLite is a cache of it (as etcd's bbolt is, committed every 100 ms). This member's
   * own reads use the writing connection and see the open transaction; everything that reads
   * the file through another connection (query, snapshots, restore, close) commits first. A
   * crash loses only the open transaction, together with its applied index, and the restarted
   * node applies those entries again from its log: the log is only compacted up to a snapshot,
   * and a snapshot commits first.
   *
   * Why: with one commit per batch, sequential puts wrote 36 KB per put on every member
   * (about six 4 KiB pages and their WAL frame headers, 19–21 write calls) against etcd's 5 KB;
   * with 100 ms, 6 KB and 4–7 write calls (see docs/benchmarks.md, session 10).
   */
  flushIfDue(): void {
    if (this.#batching || !this.#db.isOpen || !this.#db.isTransaction) return;
    if (this.#now() - this.#transactionOpenedAt < this.#applyCommitIntervalMs) return;
    try {
      this.#commitBatch();
    } catch (error) {
      throw new ConclaveError(
        "CONCLAVE_DATABASE_FAILED",
        `committing applied entries through ${this.#applied} failed in the database itself (disk, memory or corruption); the node stops rather than diverge: ${String(error)}`,
        { index: this.#applied },
        { cause: error },
      );
    }
  }

  /**
   * A put without a lease or a delete: it cannot fail except in the database itself (fail-stop),
   * so it needs no savepoint of its own, and it reads neither last_insert_rowid() nor changes(),
   * so the applied index is written once per batch, at its commit (see #commitBatch), not
   * before every entry; the KV revision too (KvStore.flushRevision). Both together, measured
   * with a scratch benchmark (three runs each): 20.0–22.1 → 17.4–18.2 µs of CPU per put in
   * batches of 16, 26.3–32.6 → 24.4–29.1 µs in batches of 4.
   */
  #applyPlainKvWrite(command: KvCommand): ApplyResult {
    if (!this.#db.isTransaction) this.#begin();
    const result = this.kv.apply(command);
    assert(result.ok, "a put without a lease or a delete always succeeds");
    this.#batchChanges.push(...this.kv.finishEntry());
    return result;
  }

  /**
   * Records `index` in _conclave_meta inside the open transaction. INSERT OR REPLACE of rowid 0
   * also resets last_insert_rowid() to 0 and changes() to 1 (see #beginEntry).
   */
  #writeAppliedIndex(index: number): void {
    this.#sql("INSERT OR REPLACE INTO _conclave_meta (id, applied_index) VALUES (0, ?)").run(index);
    this.#metaIndex = index;
  }

  #begin(): void {
    this.#sql("BEGIN IMMEDIATE").run();
    this.#transactionOpenedAt = this.#now();
  }

  /** Commits the open transaction (if any), then settles the batch. */
  #commitBatch(): void {
    if (this.#db.isTransaction) {
      this.kv.flushRevision();
      // Plain KV writes leave the applied index to the commit (see #applyPlainKvWrite).
      if (this.#metaIndex !== this.#applied) {
        this.#writeAppliedIndex(this.#applied);
      }
      this.#sql("COMMIT").run();
    }
    this.#entriesUncommitted = 0;
    this.#settleBatch();
  }

  /** Tells watches and cluster listeners what the entries applied since the last time changed. */
  #settleBatch(): void {
    const changes = this.#batchChanges;
    this.#batchChanges = [];
    if (changes.length > 0) this.kv.watches.notify(changes);
    if (this.#clusterChangedInBatch) {
      this.#clusterChangedInBatch = false;
      this.#notifyClusterChanged();
    }
  }

  /** True when one of `statements` (or a trigger it may fire) can roll back the whole transaction. */
  #mayEndTransaction(statements: readonly SqlStatement[]): boolean {
    if (statements.some((statement) => /rollback/i.test(statement.sql))) return true;
    const { schema_version: version } = this.#sql("PRAGMA schema_version").get() as {
      schema_version: number;
    };
    if (this.#triggerCheck?.version !== version) {
      const row = this.#sql("SELECT count(*) AS n FROM sqlite_master WHERE type = 'trigger'").get() as {
        n: number;
      };
      this.#triggerCheck = { version, any: row.n > 0 };
    }
    return this.#triggerCheck.any;
  }

  #beginEntry(index: number): void {
    if (!this.#db.isTransaction) this.#begin();
    // INSERT OR REPLACE of rowid 0 also resets last_insert_rowid() to 0 and changes() to 1, so an
    // entry's first statement sees the same values on a member that just restarted.
    this.#writeAppliedIndex(index);
    this.#sql("SAVEPOINT conclave_entry").run();
  }

  /** Ends the entry (rolling back its statements when they failed); the KV changes it made. */
  #endEntry(index: number, succeeded: boolean, inBatch: boolean): KvChange[] {
    if (succeeded) {
      const changes = this.kv.finishEntry();
      this.#sql("RELEASE conclave_entry").run();
      return changes;
    }
    this.kv.abandonEntry();
    if (this.#db.isTransaction) {
      this.#sql("ROLLBACK TO conclave_entry").run();
      this.#sql("RELEASE conclave_entry").run();
      return [];
    }
    // `INSERT OR ROLLBACK` or RAISE(ROLLBACK) ended the whole transaction: such entries run
    // alone (see #mayEndTransaction), so nothing else was lost; record the index alone.
    assert(!inBatch, "an entry that ended the transaction ran alone, not inside a batch");
    this.#begin();
    this.#writeAppliedIndex(index);
    return [];
  }

  /**
   * Calls `listener` after every applied cluster command and after a snapshot restore (inside
   * the apply loop: it must be quick and must not throw). Returns its remover.
   */
  listenCluster(listener: () => void): () => void {
    this.#clusterListeners.add(listener);
    return () => this.#clusterListeners.delete(listener);
  }

  #notifyClusterChanged(): void {
    for (const listener of this.#clusterListeners) listener();
  }

  #applyCommand(command: DatabaseCommand, index: number): ApplyResult {
    if (command.kind === "kv") return this.kv.apply(command);
    if (command.kind === "cluster") return this.cluster.apply(command, index);
    if (command.kind === "keyed") return this.#applyKeyed(command, index);
    const results: StatementResult[] = [];
    for (const [statementIndex, statement] of command.statements.entries()) {
      const outcome = this.#runStatement(statement, statementIndex);
      if ("error" in outcome) return { ok: false, error: outcome.error };
      results.push(outcome);
    }
    return { ok: true, results };
  }

  /**
   * A keyed write: applied once; a retry with the same key and request gets the recorded result
   * (`replayed: true`), another request with the same key an error. Only successful results are
   * recorded: a failed write applied nothing, so trying it again cannot apply it twice.
   */
  #applyKeyed(command: KeyedCommand, index: number): ApplyResult {
    const found = this.#idempotency.lookup(command.key, command.requestSha256);
    if (found.kind === "reused") {
      return { ok: false, error: { code: "CONCLAVE_IDEMPOTENCY_KEY_REUSED", message: found.message } };
    }
    if (found.kind === "replay")
      return { ...(found.result as object), replayed: true } as unknown as ApplyResult;
    const result = this.#applyCommand(command.command, index);
    if (result.ok) this.#idempotency.record(command.key, command.requestSha256, result, index);
    return result;
  }

  #totalChangesStatement: StatementSync | null = null;

  /** SQLite's total_changes() of this connection (rows changed by every statement so far). */
  #totalChanges(): number {
    this.#totalChangesStatement ??= this.#db.prepare("SELECT total_changes() AS n");
    return Number((this.#totalChangesStatement.get() as { n: number | bigint }).n);
  }

  #runStatement(
    statement: SqlStatement,
    statementIndex: number,
  ): StatementResult | { error: { code: string; message: string; statementIndex: number } } {
    const problem = replicationProblem(statement.sql);
    if (problem !== null) {
      const message = `${problem.construct} cannot be replicated: ${problem.reason}`;
      return { error: { code: "CONCLAVE_SQL_REFUSED", message, statementIndex } };
    }
    // Counted outside the user's statement: the authorizer refuses total_changes() inside it.
    const totalBefore = this.#totalChanges();
    const schemaVersion = this.#schemaCookie();
    let succeeded = false;
    this.#userSqlActive = true;
    try {
      const prepared = this.#replicated.statement(this.#db, statement.sql, schemaVersion);
      const { changes, lastInsertRowid } = prepared.run(...((statement.params ?? []) as SqlValue[]));
      this.#userSqlActive = false;
      succeeded = true;
      // changes() keeps the count of the last INSERT/UPDATE/DELETE, so after DDL or a SELECT it
      // would repeat an older count: report 0 when this statement changed nothing at all.
      const changedSomething = this.#totalChanges() !== totalBefore;
      return {
        rowsChanged: changedSomething ? Number(changes) : 0,
        lastInsertRowid: toSqlValue(lastInsertRowid) as number | bigint,
      };
    } catch (error) {
      if (isEnvironmentalFailure(error)) throw error;
      const message = error instanceof Error ? error.message : String(error);
      return { error: { code: sqliteErrorCode(error), message, statementIndex } };
    } finally {
      this.#userSqlActive = false;
      const statistics = this.#replicated.ran(statement.sql, succeeded);
      if (succeeded && statistics) this.#sortPlannerStatistics();
    }
  }

  /**
   * ANALYZE writes its `sqlite_stat1` rows in the order of the connection's in-memory schema, and
   * that order depends on the connection's history: a member that restarted (and loaded its
   * schema from the file) wrote the same statistics under other rowids, so its file differed
   * (found by test/sqlite/determinism.test.ts once lease commands were in its log). The rows are
   * rewritten in one order, in the entry's transaction, so members stay byte-identical.
   */
  #sortPlannerStatistics(): void {
    const exists = this.#db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'").get();
    if (exists === undefined) return;
    const rows = this.#db
      .prepare("SELECT tbl, idx, stat FROM sqlite_stat1 ORDER BY tbl, idx, stat")
      .all() as { tbl: string; idx: string | null; stat: string }[];
    this.#db.exec("DELETE FROM sqlite_stat1");
    const insert = this.#db.prepare("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)");
    for (const row of rows) insert.run(row.tbl, row.idx, row.stat);
  }

  /**
   * Runs a read-only statement on a read-only connection, at this member's applied index.
   * Throws `CONCLAVE_QUERY_REFUSED` for anything but a read, `CONCLAVE_QUERY_FAILED` for SQL errors.
   */
  query(sql: string, params: readonly SqlValue[] = []): QueryResult {
    this.#commitBatch(); // the reader sees committed data only
    const problem = readQueryProblem(sql);
    if (problem !== null) {
      throw new ConclaveError("CONCLAVE_QUERY_REFUSED", `${problem.construct} is refused: ${problem.reason}`);
    }
    this.#reader ??= this.#openReader();
    let statement: StatementSync;
    try {
      statement = this.#reader.prepare(sql);
    } catch (error) {
      const notRead = sqliteErrorCode(error) === "SQLITE_AUTH";
      throw new ConclaveError(
        notRead ? "CONCLAVE_QUERY_REFUSED" : "CONCLAVE_QUERY_FAILED",
        notRead
          ? "query() only reads; send writes as a replicated sql command"
          : `the query failed: ${String(error)}`,
        {},
        { cause: error },
      );
    }
    statement.setReadBigInts(true);
    return this.#collectRows(
      statement.iterate(...(params as SqlValue[])) as Iterable<Record<string, unknown>>,
    );
  }

  #openReader(): DatabaseSync {
    const reader = new DatabaseSync(this.#path, { readOnly: true, timeout: 1000 });
    reader.setAuthorizer(readOnlyAuthorizer);
    return reader;
  }

  #collectRows(iterator: Iterable<Record<string, unknown>>): QueryResult {
    const rows: Record<string, SqlValue>[] = [];
    let bytes = 0;
    for (const raw of iterator) {
      const row: Record<string, SqlValue> = {};
      for (const [column, value] of Object.entries(raw)) {
        const converted = toSqlValue(value);
        row[column] = converted;
        bytes +=
          column.length +
          (typeof converted === "string"
            ? converted.length * 2
            : converted instanceof Uint8Array
              ? converted.byteLength
              : 8);
      }
      if (rows.length >= this.#queryRowsMax || bytes > this.#queryBytesMax) return { rows, truncated: true };
      rows.push(row);
    }
    return { rows, truncated: false };
  }

  /**
   * Commits what is applied and syncs the WAL and the database file off the event loop; returns
   * the applied index that is then durable (StateMachine.checkpoint: the runtime compacts the
   * log up to it against a snapshot mark instead of a copy of the database). With WAL and
   * synchronous=NORMAL a commit is written but not synced: syncing the WAL makes it durable, and
   * a checkpoint that moved it into the database file meanwhile synced that file itself (SQLite
   * syncs the WAL before a checkpoint and the database after it); the database is synced too all
   * the same, which costs nothing when nothing is dirty.
   */
  async checkpoint(): Promise<number> {
    this.#commitBatch();
    const index = this.#applied;
    await fsyncFileInBackground(`${this.#path}-wal`);
    await fsyncFileInBackground(this.#path);
    return index;
  }

  /** A consistent copy (`VACUUM INTO` a temporary file) streamed in 1 MiB chunks, then deleted. */
  snapshot(): StateMachineSnapshot {
    this.#commitBatch();
    this.#snapshotCount += 1;
    const path = join(this.#dataDir, `snapshot-${process.pid}-${this.#snapshotCount}.tmp`);
    const { schema_version: schemaCookie } = this.#sql("PRAGMA schema_version").get() as {
      schema_version: number;
    };
    this.#db.exec(`VACUUM INTO '${path.replaceAll("'", "''")}'`);
    alignSnapshotHeader(path, schemaCookie);
    const sizeBytes = statSync(path).size;
    return { sizeBytes, chunks: streamFileThenDelete(path, sizeBytes), file: path };
  }

  /**
   * A copy like {@link snapshot}'s, made off the event loop so that applies (and the node's
   * heartbeats) go on meanwhile: SQLite's online backup on Node's thread pool, through its own
   * read-only connection (copyDatabaseInBackground). Copying takes about a second per 200 MB,
   * long enough to lose the primary role if the loop waited on it. The copy's own
   * `_conclave_meta` says which index it holds. It keeps the source's pages, so its bytes are
   * the source's (a VACUUM INTO copy is rebuilt and compacted instead).
   */
  async snapshotInBackground(): Promise<StateMachineSnapshot & { readonly index: number }> {
    // No automatic checkpoints while a copy runs: its read transaction pins the WAL, and the
    // checkpoints that commits start meanwhile run on the event loop, with fsyncs, while the
    // copies fill the disk. In the 5-node, 10 KB benchmark the members stalled for up to 600–850
    // ms around their simultaneous snapshots and lost the primary (233 and 682 failed puts in two
    // runs; with checkpoints held back 0 and 12). The WAL grows by what is applied meanwhile and
    // the first commit after the copy checkpoints it.
    this.#commitBatch();
    this.#snapshotCount += 1;
    const path = join(this.#dataDir, `snapshot-${process.pid}-${this.#snapshotCount}.tmp`);
    if (this.#copiesInFlight === 0) {
      this.#copyCookies = [{ index: this.#applied, cookie: this.#schemaCookie() }];
      this.#db.exec("PRAGMA wal_autocheckpoint = 0");
    }
    this.#copiesInFlight += 1;
    try {
      await copyDatabaseInBackground(this.#path, path);
      const index = readCopyAppliedIndex(path);
      removeSidecarFiles(path);
      alignSnapshotHeader(path, this.#cookieAt(index));
      const sizeBytes = statSync(path).size;
      return { index, sizeBytes, chunks: streamFileThenDelete(path, sizeBytes), file: path };
    } catch (error) {
      rmSync(path, { force: true });
      removeSidecarFiles(path);
      throw error;
    } finally {
      this.#copiesInFlight -= 1;
      if (this.#copiesInFlight === 0) {
        this.#copyCookies = [];
        if (this.#db.isOpen) this.#db.exec(`PRAGMA wal_autocheckpoint = ${walAutocheckpointPages}`);
      }
    }
  }

  #schemaCookie(): number {
    const { schema_version: cookie } = this.#sql("PRAGMA schema_version").get() as { schema_version: number };
    return cookie;
  }

  /** The schema cookie the database had with entry `index` applied, during a background copy. */
  #cookieAt(index: number): number {
    const known = this.#copyCookies.findLast((point) => point.index <= index);
    if (known === undefined)
      throw new ConclaveError(
        "CONCLAVE_SNAPSHOT_FAILED",
        `the copy holds entry ${index}, from before the copy started (a snapshot was restored meanwhile); the next snapshot replaces it`,
      );
    return known.cookie;
  }

  /** Replaces the database with a snapshot: written to a temp file, fsynced, checked, renamed over. */
  async restore(chunks: AsyncIterable<Uint8Array>, sizeBytes: number): Promise<void> {
    this.#commitBatch();
    const temporary = join(this.#dataDir, "restore.tmp");
    let restoredIndex: number;
    try {
      await writeChunksToFile(chunks, temporary, sizeBytes);
      restoredIndex = checkDatabaseFile(temporary);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    } finally {
      removeSidecarFiles(temporary);
    }
    this.#closeConnections();
    for (const suffix of ["-wal", "-shm"]) rmSync(`${this.#path}${suffix}`, { force: true });
    renameSync(temporary, this.#path);
    fsyncDirectory(this.#dataDir);
    this.#db = this.#openDatabase();
    this.#totalChangesStatement = null; // it belonged to the closed connection
    this.kv.attach(this.#db);
    this.cluster.attach(this.#db);
    this.#idempotency.attach(this.#db);
    this.#applied = this.#readAppliedIndex();
    if (this.#copiesInFlight > 0)
      this.#copyCookies = [{ index: this.#applied, cookie: this.#schemaCookie() }];
    assert(
      this.#applied === restoredIndex,
      "the restored database reads back the applied index it was checked with",
    );
    this.#notifyClusterChanged();
  }

  #closeConnections(): void {
    this.#reader?.close();
    this.#reader = null;
    this.#statements = new Map();
    this.#replicated.clear();
    if (this.#db.isOpen) this.#db.close();
  }

  /** Closes the database (a checkpoint folds the WAL back into db.sqlite). */
  close(): void {
    if (this.#db.isOpen) this.#commitBatch();
    this.#closeConnections();
  }
}

/** A put without a lease, or a delete: a KV write that cannot fail (see #applyPlainKvWrite). */
function isPlainKvWrite(command: DatabaseCommand): command is KvCommand {
  return (
    command.kind === "kv" &&
    (command.op === "delete" || (command.op === "put" && command.lease === undefined))
  );
}
