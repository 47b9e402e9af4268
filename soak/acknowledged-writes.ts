/**
 * The soak's write load and what it must find afterwards. Writers alternate a KV put of a key of
 * their own and a SQL INSERT of one row, through the TypeScript client (primary discovery,
 * retries with an idempotency key), at a fixed total rate. Every write the client acknowledged
 * is remembered. After the run, on every member (local reads, once all have applied the same
 * index): each acknowledged key holds its value, each acknowledged row is there exactly once.
 * Rows have no unique constraint on (writer, seq), so a write applied twice shows up as two rows.
 */
import { setTimeout as delay } from "node:timers/promises";
import { ConclaveClient } from "../src/client/index.ts";
import { testApiToken } from "../test/e2e/api-token.ts";

/** Keys per KV prefix that one range read covers (the range limit is 10,000). */
const keysPerBucket = 1000;
/** Rows per SQL read when checking. */
const rowsPerQuery = 5000;
const writerCount = 4;

const kvKey = (writer: number, seq: number): string =>
  `w/${writer}/${Math.floor(seq / keysPerBucket)}/${String(seq).padStart(7, "0")}`;
const kvValue = (writer: number, seq: number): string => `${writer}:${seq}:${"v".repeat(80)}`;

export interface WriteCounts {
  kvAcknowledged: number;
  sqlAcknowledged: number;
  /** Writes the client gave up on (outcome unknown or refused), by error code. */
  failed: Map<string, number>;
}

export interface MemberFindings {
  readonly name: string;
  readonly kvMissing: number;
  readonly kvWrongValue: number;
  readonly sqlMissing: number;
  readonly sqlDuplicated: number;
  /** The first few problems, for the report. */
  readonly examples: readonly string[];
}

export class AcknowledgedWriters {
  readonly counts: WriteCounts = { kvAcknowledged: 0, sqlAcknowledged: 0, failed: new Map() };
  /** performance.now() of every acknowledgement, in order (recovery times after faults). */
  readonly acknowledgedAtMs: number[] = [];
  readonly #client: ConclaveClient;
  readonly #writesPerSecond: number;
  /** Acknowledged seqs per writer: even seqs are KV puts, odd ones SQL rows. */
  readonly #acknowledged: number[][] = Array.from({ length: writerCount }, () => []);
  #running = false;

  constructor(endpoints: readonly string[], writesPerSecond: number) {
    // A short timeout: a writer stuck on a paused primary gives up and retries (same idempotency
    // key) on the new one, so the figures show when the cluster could write again.
    this.#client = new ConclaveClient({ endpoints, timeoutMs: 1_500, token: testApiToken });
    this.#writesPerSecond = writesPerSecond;
  }

  async setUp(): Promise<void> {
    await this.#client.sql.execute([
      {
        sql: "CREATE TABLE soak_rows (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, seq INTEGER NOT NULL, payload TEXT NOT NULL)",
      },
    ]);
  }

  /** Writes until `stop` resolves; resolves when every writer has settled. */
  async run(stop: Promise<void>): Promise<void> {
    this.#running = true;
    const writers = Array.from({ length: writerCount }, (_, writer) => this.#writer(writer));
    try {
      await stop;
    } finally {
      this.#running = false;
      await Promise.all(writers);
    }
  }

  async #writer(writer: number): Promise<void> {
    const intervalMs = (1000 * writerCount) / this.#writesPerSecond;
    const startedMs = performance.now();
    for (let seq = 0; this.#running; seq++) {
      const dueMs = startedMs + seq * intervalMs;
      const waitMs = dueMs - performance.now();
      if (waitMs > 0) await delay(waitMs);
      // Behind schedule (a failover): go on at once, without a burst bigger than one write per writer.
      try {
        if (seq % 2 === 0) {
          await this.#client.kv.put(kvKey(writer, seq), kvValue(writer, seq));
          this.counts.kvAcknowledged++;
        } else {
          await this.#client.sql.execute([
            {
              sql: "INSERT INTO soak_rows (writer, seq, payload) VALUES (?, ?, ?)",
              params: [writer, seq, kvValue(writer, seq)],
            },
          ]);
          this.counts.sqlAcknowledged++;
        }
        (this.#acknowledged[writer] as number[]).push(seq);
        this.acknowledgedAtMs.push(performance.now());
      } catch (error) {
        const code = (error as { code?: string }).code ?? String(error).slice(0, 60);
        this.counts.failed.set(code, (this.counts.failed.get(code) ?? 0) + 1);
      }
    }
  }

  /** Checks one member's own copy (consistency "none": what it has applied). */
  async checkMember(name: string, endpoint: string): Promise<MemberFindings> {
    const client = new ConclaveClient({ endpoints: [endpoint], timeoutMs: 30_000, token: testApiToken });
    let kvMissing = 0;
    let kvWrongValue = 0;
    let sqlMissing = 0;
    const examples: string[] = [];
    const note = (text: string): void => {
      if (examples.length < 5) examples.push(text);
    };
    for (let writer = 0; writer < writerCount; writer++) {
      const seqs = this.#acknowledged[writer] as number[];
      const kvSeqs = seqs.filter((seq) => seq % 2 === 0);
      const buckets = new Set(kvSeqs.map((seq) => Math.floor(seq / keysPerBucket)));
      const present = new Map<string, string>();
      for (const bucket of buckets) {
        const { kvs } = await client.kv.range(`w/${writer}/${bucket}/`, {
          consistency: "none",
          limit: keysPerBucket,
        });
        for (const kv of kvs) present.set(kv.key, kv.text());
      }
      for (const seq of kvSeqs) {
        const value = present.get(kvKey(writer, seq));
        if (value === undefined) {
          kvMissing++;
          note(`key ${kvKey(writer, seq)} missing`);
        } else if (value !== kvValue(writer, seq)) {
          kvWrongValue++;
          note(`key ${kvKey(writer, seq)} holds ${JSON.stringify(value.slice(0, 40))}`);
        }
      }
      const rowSeqs = new Set<number>();
      const sqlSeqs = seqs.filter((seq) => seq % 2 === 1);
      const lastSeq = sqlSeqs.at(-1) ?? -1;
      for (let from = 0; from <= lastSeq; from += rowsPerQuery) {
        const { rows } = await client.sql.query(
          "SELECT seq FROM soak_rows WHERE writer = ? AND seq >= ? AND seq < ? ORDER BY seq",
          [writer, from, from + rowsPerQuery],
          { consistency: "none" },
        );
        for (const row of rows) rowSeqs.add(Number(row.seq));
      }
      for (const seq of sqlSeqs) {
        if (!rowSeqs.has(seq)) {
          sqlMissing++;
          note(`row ${writer}/${seq} missing`);
        }
      }
    }
    const { rows: duplicates } = await client.sql.query(
      "SELECT writer, seq, count(*) AS n FROM soak_rows GROUP BY writer, seq HAVING n > 1",
      [],
      { consistency: "none" },
    );
    for (const row of duplicates.slice(0, 3)) note(`row ${row.writer}/${row.seq} applied ${row.n} times`);
    return { name, kvMissing, kvWrongValue, sqlMissing, sqlDuplicated: duplicates.length, examples };
  }
}
