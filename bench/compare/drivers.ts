/**
 * The two drivers: the same {@link KvDriver} operations over the same {@link HttpClient}.
 * - etcd: v3 JSON gateway, `POST /v3/kv/put` and `/v3/kv/range` with base64 keys and values
 *   (as the etcd harness's drivers/etcd-http.js); serializable = member-local read.
 * - Conclave: `PUT /v1/kv/<key>` (raw body), `GET /v1/kv/<key>?consistency=linearizable|none`,
 *   `GET /v1/kv?prefix=` (JSON, base64 values), and the SQL routes.
 */
import {
  type ClientKind,
  createHttpClient,
  type Endpoint,
  expectOk,
  type HttpClient,
} from "./http-client.ts";

/** The systems compared. */
export type SystemName = "etcd" | "conclave";

/** Key-value operations a test needs; `term` is the Raft term the write was acknowledged in. */
export interface KvDriver {
  readonly system: SystemName;
  put(key: string, value: Buffer): Promise<{ term: number | null }>;
  /** The value, or null when the key is absent. */
  get(key: string, linearizable: boolean): Promise<Buffer | null>;
  /** Every key under `prefix` (linearizable read). */
  scan(prefix: string): Promise<Map<string, Buffer>>;
  close(): void;
}

/** What a driver is built with: members, connection bound, per-request deadline. */
export interface DriverOptions {
  readonly socketsMax: number;
  readonly timeoutMs: number;
  /** Only this member (an index into `endpoints`), or every member round-robin when absent. */
  readonly member?: number;
  /** The client build (default "lean"; `--client`). */
  readonly client?: ClientKind;
}

const json = { "content-type": "application/json" };
const b64 = (text: string): string => Buffer.from(text).toString("base64");

/** The first key after every key that starts with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let at = end.length - 1; at >= 0; at--) {
    if ((end[at] ?? 0xff) < 0xff) {
      end[at] = (end[at] ?? 0) + 1;
      return end.subarray(0, at + 1);
    }
  }
  return Buffer.from([0]);
}

function pick(endpoints: readonly Endpoint[], options: DriverOptions): Endpoint[] {
  if (options.member === undefined) return [...endpoints];
  const one = endpoints[options.member];
  if (one === undefined) throw new Error(`no member ${options.member}`);
  return [one];
}

interface EtcdRangeAnswer {
  kvs?: { key: string; value: string }[];
}

/** A driver for etcd's v3 JSON gateway. */
export function etcdDriver(endpoints: readonly Endpoint[], options: DriverOptions): KvDriver {
  const client = createHttpClient(pick(endpoints, options), options);
  const post = async (path: string, body: unknown): Promise<unknown> => {
    const answer = await client.send("POST", path, Buffer.from(JSON.stringify(body)), json);
    return JSON.parse(expectOk(answer, path).body.toString("utf8")) as unknown;
  };
  return {
    system: "etcd",
    async put(key, value) {
      const answer = (await post("/v3/kv/put", { key: b64(key), value: value.toString("base64") })) as {
        header?: { raft_term?: string };
      };
      return { term: answer.header?.raft_term === undefined ? null : Number(answer.header.raft_term) };
    },
    async get(key, linearizable) {
      const answer = (await post("/v3/kv/range", {
        key: b64(key),
        serializable: !linearizable,
      })) as EtcdRangeAnswer;
      const first = answer.kvs?.[0];
      return first === undefined ? null : Buffer.from(first.value ?? "", "base64");
    },
    async scan(prefix) {
      const answer = (await post("/v3/kv/range", {
        key: b64(prefix),
        range_end: prefixEnd(prefix).toString("base64"),
      })) as EtcdRangeAnswer;
      const found = new Map<string, Buffer>();
      for (const kv of answer.kvs ?? [])
        found.set(Buffer.from(kv.key, "base64").toString(), Buffer.from(kv.value ?? "", "base64"));
      return found;
    },
    close: () => client.close(),
  };
}

/** Most keys one Conclave range request returns (the server's kvRangeLimitMax). */
const conclaveRangeLimit = 10_000;

/** A driver for Conclave's HTTP API, with its SQL routes. */
export function conclaveDriver(endpoints: readonly Endpoint[], options: DriverOptions): ConclaveDriver {
  const client = createHttpClient(pick(endpoints, options), options);
  const keyPath = (key: string): string => `/v1/kv/${encodeURIComponent(key)}`;
  const postJson = async (path: string, body: unknown): Promise<unknown> => {
    const answer = await client.send("POST", path, Buffer.from(JSON.stringify(body)), json);
    return JSON.parse(expectOk(answer, path).body.toString("utf8")) as unknown;
  };
  return {
    system: "conclave",
    async put(key, value) {
      const answer = expectOk(await client.send("PUT", keyPath(key), value), "PUT /v1/kv");
      const { term } = JSON.parse(answer.body.toString("utf8")) as { term?: number };
      return { term: term ?? null };
    },
    async get(key, linearizable) {
      const consistency = linearizable ? "linearizable" : "none";
      const answer = await client.send("GET", `${keyPath(key)}?consistency=${consistency}`, null);
      if (answer.status === 404) return null;
      return expectOk(answer, "GET /v1/kv").body;
    },
    async scan(prefix) {
      const path = `/v1/kv?prefix=${encodeURIComponent(prefix)}&limit=${conclaveRangeLimit}&consistency=linearizable`;
      const answer = (await getJson(client, path)) as {
        kvs: { key: string; value: string }[];
        more: boolean;
      };
      if (answer.more) throw new Error(`more than ${conclaveRangeLimit} keys under ${prefix}`);
      return new Map(answer.kvs.map((kv) => [kv.key, Buffer.from(kv.value, "base64")]));
    },
    async sqlExecute(sql, params) {
      await postJson("/v1/sql/execute", { statements: [{ sql, params }] });
    },
    async sqlQuery(sql, params) {
      const answer = (await postJson("/v1/sql/query", { sql, params })) as { rows: unknown[] };
      return answer.rows;
    },
    close: () => client.close(),
  };
}

async function getJson(client: HttpClient, path: string): Promise<unknown> {
  const answer = expectOk(await client.send("GET", path, null), "GET /v1/kv?prefix");
  return JSON.parse(answer.body.toString("utf8")) as unknown;
}

/** Conclave's driver adds single-statement SQL (one transaction per call; linearizable query). */
export interface ConclaveDriver extends KvDriver {
  sqlExecute(sql: string, params: unknown[]): Promise<void>;
  sqlQuery(sql: string, params: unknown[]): Promise<unknown[]>;
}
