/**
 * The bench's lean HTTP/1.1 client: `net` sockets kept alive, one request at a time on each (no
 * pipelining, as node:http's Agent), at most `socketsMax` per member, requests beyond that wait
 * in order. Why: the client shares this machine's two cores with the servers it measures, and
 * node:http's client (request and response streams, the Agent's bookkeeping, a timer per socket)
 * cost ~130–160 µs of CPU per request, more than a quarter of the machine's CPU per put. This
 * one writes each request in one `write` and parses the answer from the socket's bytes
 * (http-answer-parser.ts), and times requests out with one sweep timer per client. A timeout
 * here is a deadline from `send` (time waiting for a connection included, checked every tenth
 * of it), where node:http's is a socket's inactivity once it has one: slow-failure counts in the
 * failover test may differ a little between the two clients.
 * Same code for etcd and Conclave, like the node:http client it replaces (kept as
 * `--client node-http`, http-client.ts).
 */
import { connect, type Socket } from "node:net";
import { HttpAnswerParser } from "./http-answer-parser.ts";
import type { Endpoint, HttpAnswer, HttpClient } from "./http-client.ts";

/** Largest answer head and body read; larger ones fail the request (a bench answer is small). */
const limits = { headBytesMax: 64 * 1024, bodyBytesMax: 64 * 1024 * 1024 };
/** Request targets and header values must be visible ASCII (with spaces and tabs in values). */
const targetPattern = /^[\x21-\x7e]+$/;
const headerValuePattern = /^[\x20-\x7e\t]*$/;
const headerNamePattern = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/**
 * An idle connection is dropped this long before the server's `Keep-Alive: timeout=N` runs out
 * (node:http's Agent keeps the same margin): reused at the last moment, the server's close
 * crosses the request and it fails.
 */
const keepAliveMarginMs = 1000;
const keepAliveTimeoutPattern = /(?:^|[,;\s])timeout=(\d{1,9})/i;

interface Exchange {
  readonly method: string;
  readonly bytes: Buffer;
  readonly deadlineMs: number;
  readonly resolve: (answer: HttpAnswer) => void;
  readonly reject: (error: Error) => void;
}

/** One member's connections and the requests waiting for one. */
class MemberPool {
  readonly endpoint: Endpoint;
  /** How the member is named in errors. */
  readonly name: string;
  readonly idle: Connection[] = [];
  readonly busy = new Set<Connection>();
  readonly waiting: Exchange[] = [];
  open = 0;
  /** The request line's "Host" header and the member's own headers, written once. */
  readonly fixedHead: string;

  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
    if (endpoint.url.protocol !== "http:")
      throw new Error(
        `the lean client speaks plain HTTP only, not ${endpoint.url.protocol} (${endpoint.url.host})`,
      );
    this.name = endpoint.url.host;
    let head = `Host: ${endpoint.url.host}\r\n`;
    for (const [name, value] of Object.entries(endpoint.headers)) head += headerLine(name, value);
    this.fixedHead = head;
  }
}

class Connection {
  readonly #socket: Socket;
  readonly #parser = new HttpAnswerParser(limits);
  readonly #pool: MemberPool;
  readonly #onFree: (connection: Connection | null, pool: MemberPool) => void;
  #exchange: Exchange | null = null;
  #closed = false;
  /** While idle: reusable until then (the server's keep-alive hint less a margin). */
  #reusableUntilMs = Number.POSITIVE_INFINITY;

  constructor(pool: MemberPool, onFree: (connection: Connection | null, pool: MemberPool) => void) {
    this.#pool = pool;
    this.#onFree = onFree;
    const { hostname, port } = pool.endpoint.url;
    this.#socket = connect({ host: hostname, port: Number(port || 80), noDelay: true });
    this.#socket.on("data", (bytes: Buffer) => this.#onData(bytes));
    this.#socket.on("end", () => this.#onEnd());
    this.#socket.on("error", (error) => this.#fail(error));
    this.#socket.on("close", () => this.#fail(new Error("the connection closed")));
  }

  get deadlineMs(): number {
    return this.#exchange?.deadlineMs ?? Number.POSITIVE_INFINITY;
  }

  send(exchange: Exchange): void {
    this.#exchange = exchange;
    this.#parser.expect(exchange.method);
    this.#socket.write(exchange.bytes);
  }

  /** False once the server's keep-alive timeout (less a margin) has run out on this idle connection. */
  reusableAt(nowMs: number): boolean {
    return nowMs < this.#reusableUntilMs;
  }

  /** Ends the connection; a request on it fails with `error`. */
  destroy(error: Error): void {
    this.#fail(error);
  }

  #onData(bytes: Buffer): void {
    let answer: ReturnType<HttpAnswerParser["push"]>;
    try {
      answer = this.#parser.push(bytes);
    } catch (error) {
      this.#fail(error as Error);
      return;
    }
    if (answer !== null) this.#complete(answer);
  }

  #onEnd(): void {
    let answer: ReturnType<HttpAnswerParser["end"]>;
    try {
      answer = this.#parser.end();
    } catch (error) {
      this.#fail(error as Error);
      return;
    }
    if (answer !== null) this.#complete(answer);
    else this.#fail(new Error("the server closed the connection"));
  }

  #complete(answer: { status: number; headers: HttpAnswer["headers"]; body: Buffer; close: boolean }): void {
    const exchange = this.#exchange;
    this.#exchange = null;
    if (answer.close) this.#fail(new Error("the server closed the connection"));
    else this.#reusableUntilMs = reusableUntil(answer.headers["keep-alive"]);
    exchange?.resolve({ status: answer.status, headers: answer.headers, body: answer.body });
    if (!answer.close) this.#onFree(this, this.#pool);
  }

  /** Closes the connection once: the request on it (if any) fails, and the pool forgets it. */
  #fail(error: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
    const pool = this.#pool;
    pool.open--;
    pool.busy.delete(this);
    const at = pool.idle.indexOf(this);
    if (at >= 0) pool.idle.splice(at, 1);
    const exchange = this.#exchange;
    this.#exchange = null;
    exchange?.reject(error);
    this.#onFree(null, pool); // a slot opened: a waiting request may start
  }
}

export class LeanHttpClient implements HttpClient {
  readonly endpoints: readonly Endpoint[];
  readonly #pools: MemberPool[];
  readonly #socketsMax: number;
  readonly #timeoutMs: number;
  readonly #sweep: ReturnType<typeof setInterval>;
  #next = 0;
  #closed = false;

  constructor(endpoints: readonly Endpoint[], options: { socketsMax: number; timeoutMs: number }) {
    if (endpoints.length === 0) throw new Error("an HttpClient needs at least one endpoint");
    this.endpoints = endpoints;
    this.#pools = endpoints.map((endpoint) => new MemberPool(endpoint));
    this.#socketsMax = options.socketsMax;
    this.#timeoutMs = options.timeoutMs;
    // One timer for every request (node:http arms one per socket and request).
    this.#sweep = setInterval(() => this.#timeOut(), Math.max(10, Math.min(1000, this.#timeoutMs / 10)));
    this.#sweep.unref();
  }

  send(
    method: string,
    path: string,
    body: Buffer | null,
    headers: Readonly<Record<string, string>> = {},
    member: number | null = null,
  ): Promise<HttpAnswer> {
    if (this.#closed) return Promise.reject(new Error("the client is closed"));
    const at = member ?? this.#next++ % this.#pools.length;
    const pool = this.#pools[at];
    if (pool === undefined) return Promise.reject(new Error(`no member ${at}`));
    if (!targetPattern.test(path)) return Promise.reject(new Error(`not a plain request target: ${path}`));
    let head = `${method} ${path} HTTP/1.1\r\n${pool.fixedHead}`;
    try {
      for (const name in headers) head += headerLine(name, headers[name] ?? "");
    } catch (error) {
      return Promise.reject(error);
    }
    head += `Content-Length: ${body?.length ?? 0}\r\n\r\n`;
    const bytes = Buffer.allocUnsafe(head.length + (body?.length ?? 0));
    bytes.write(head, 0, "latin1");
    body?.copy(bytes, head.length);
    return new Promise((resolve, reject) => {
      const now = performance.now();
      const exchange = { method, bytes, deadlineMs: now + this.#timeoutMs, resolve, reject };
      const connection = this.#takeIdle(pool, now);
      if (connection !== undefined) this.#start(connection, pool, exchange);
      else if (pool.open < this.#socketsMax) this.#start(this.#open(pool), pool, exchange);
      else pool.waiting.push(exchange);
    });
  }

  /** Closes every connection; requests still out or waiting fail. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const pool of this.#pools) {
      for (const exchange of pool.waiting.splice(0)) exchange.reject(new Error("the client was closed"));
      for (const connection of [...pool.busy, ...pool.idle])
        connection.destroy(new Error("the client was closed"));
    }
  }

  #open(pool: MemberPool): Connection {
    pool.open++;
    return new Connection(pool, (connection, from) => this.#freed(connection, from));
  }

  /** An idle connection the server has not timed out yet; older ones are closed. */
  #takeIdle(pool: MemberPool, nowMs: number): Connection | undefined {
    for (let connection = pool.idle.pop(); connection !== undefined; connection = pool.idle.pop()) {
      if (connection.reusableAt(nowMs)) return connection;
      connection.destroy(new Error("idle past the server's keep-alive timeout"));
    }
    return undefined;
  }

  #start(connection: Connection, pool: MemberPool, exchange: Exchange): void {
    pool.busy.add(connection);
    connection.send(exchange);
  }

  /** `connection` is free again (null: one closed, so a new one may open). */
  #freed(connection: Connection | null, pool: MemberPool): void {
    if (connection !== null) pool.busy.delete(connection);
    this.#expireWaiting(pool, performance.now()); // never start a request that has already timed out
    const next = pool.waiting.shift();
    if (next === undefined) {
      if (connection !== null) pool.idle.push(connection);
      return;
    }
    if (connection !== null) this.#start(connection, pool, next);
    else if (!this.#closed && pool.open < this.#socketsMax) this.#start(this.#open(pool), pool, next);
    else pool.waiting.unshift(next);
  }

  /**
   * Fails the requests past their deadline: first those still waiting for a connection (so that
   * the connections closed next do not start them), then those waiting for an answer.
   */
  #timeOut(): void {
    const now = performance.now();
    for (const pool of this.#pools) {
      this.#expireWaiting(pool, now);
      for (const connection of [...pool.busy])
        if (connection.deadlineMs <= now)
          connection.destroy(
            new Error(`timeout after ${this.#timeoutMs} ms waiting for ${pool.name} to answer`),
          );
    }
  }

  /** Waiting requests share one timeout and queue in order, so the expired ones are at the head. */
  #expireWaiting(pool: MemberPool, nowMs: number): void {
    while ((pool.waiting[0]?.deadlineMs ?? Number.POSITIVE_INFINITY) <= nowMs)
      pool.waiting
        .shift()
        ?.reject(new Error(`timeout after ${this.#timeoutMs} ms waiting for a connection to ${pool.name}`));
  }
}

/** Until when an idle connection may be reused, from the answer's `Keep-Alive` header. */
function reusableUntil(keepAlive: string | string[] | undefined): number {
  const hint = keepAliveTimeoutPattern.exec(
    Array.isArray(keepAlive) ? keepAlive.join(",") : (keepAlive ?? ""),
  );
  if (hint === null) return Number.POSITIVE_INFINITY;
  return performance.now() + Number(hint[1]) * 1000 - keepAliveMarginMs;
}

function headerLine(name: string, value: string): string {
  if (!headerNamePattern.test(name)) throw new Error(`not a header name: ${JSON.stringify(name)}`);
  if (!headerValuePattern.test(value)) throw new Error(`header ${name} has a character it may not carry`);
  return `${name}: ${value}\r\n`;
}
