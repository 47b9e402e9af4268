/**
 * The HTTP client both systems are driven through, over keep-alive connections (at most
 * `socketsMax` per member), requests spread round-robin over the members unless a member is
 * named. Same code path for etcd and Conclave, so client CPU and latency compare. Two builds of
 * it (`--client`): the lean one (lean-http-client.ts, the default since session 27) and
 * node:http's (below, the one every earlier result used).
 */
import { Agent, request } from "node:http";
import { LeanHttpClient } from "./lean-http-client.ts";

/** A member's base URL and the headers every request to it carries (e.g. a bearer token). */
export interface Endpoint {
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
}

/** A completed HTTP exchange (any status). */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

/** The client's operations, whichever build. */
export interface HttpClient {
  readonly endpoints: readonly Endpoint[];
  /** Sends one request to member `member` (an index) or, when null, to the next member in turn. */
  send(
    method: string,
    path: string,
    body: Buffer | null,
    headers?: Readonly<Record<string, string>>,
    member?: number | null,
  ): Promise<HttpAnswer>;
  /** Closes every connection. */
  close(): void;
}

/** Which client build drives the load (`--client`). */
export type ClientKind = "lean" | "node-http";
export const clientKinds: readonly ClientKind[] = ["lean", "node-http"];

export interface HttpClientOptions {
  readonly socketsMax: number;
  readonly timeoutMs: number;
  /** Default "lean". */
  readonly client?: ClientKind;
}

export function createHttpClient(endpoints: readonly Endpoint[], options: HttpClientOptions): HttpClient {
  return options.client === "node-http"
    ? new NodeHttpClient(endpoints, options)
    : new LeanHttpClient(endpoints, options);
}

/** Largest answer body read; larger ones fail the request (a bench answer is small). */
const answerBytesMax = 64 * 1024 * 1024;

/** node:http's client with a keep-alive Agent. */
export class NodeHttpClient implements HttpClient {
  readonly endpoints: readonly Endpoint[];
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  #next = 0;

  constructor(endpoints: readonly Endpoint[], options: { socketsMax: number; timeoutMs: number }) {
    if (endpoints.length === 0) throw new Error("an HttpClient needs at least one endpoint");
    this.endpoints = endpoints;
    this.#timeoutMs = options.timeoutMs;
    this.#agent = new Agent({
      keepAlive: true,
      maxSockets: options.socketsMax,
      maxFreeSockets: options.socketsMax,
    });
  }

  /** Sends one request to member `member` (an index) or, when null, to the next member in turn. */
  send(
    method: string,
    path: string,
    body: Buffer | null,
    headers: Readonly<Record<string, string>> = {},
    member: number | null = null,
  ): Promise<HttpAnswer> {
    const at = member ?? this.#next++ % this.endpoints.length;
    const endpoint = this.endpoints[at];
    if (endpoint === undefined) return Promise.reject(new Error(`no member ${at}`));
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: endpoint.url.hostname,
          port: endpoint.url.port,
          path,
          method,
          agent: this.#agent,
          headers: { ...endpoint.headers, ...headers, "content-length": body?.length ?? 0 },
          timeout: this.#timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          res.on("data", (chunk: Buffer) => {
            bytes += chunk.length;
            if (bytes > answerBytesMax) res.destroy(new Error(`answer larger than ${answerBytesMax} bytes`));
            else chunks.push(chunk);
          });
          res.on("error", reject);
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
        },
      );
      req.on("timeout", () => req.destroy(new Error(`timeout after ${this.#timeoutMs} ms`)));
      req.on("error", reject);
      req.end(body ?? undefined);
    });
  }

  /** Closes every connection. */
  close(): void {
    this.#agent.destroy();
  }
}

/** Throws unless the answer is 2xx; the error names the status and the start of the body. */
export function expectOk(answer: HttpAnswer, what: string): HttpAnswer {
  if (answer.status >= 200 && answer.status < 300) return answer;
  throw new Error(`${what}: HTTP ${answer.status} ${answer.body.toString("utf8").slice(0, 200)}`);
}
