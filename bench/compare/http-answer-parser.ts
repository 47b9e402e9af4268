/**
 * An HTTP/1.1 response parser for the bench's lean client (lean-http-client.ts): bytes in, in any
 * pieces; one complete answer out. Framing as RFC 9112 §6.3 says: no body after HEAD or for
 * 1xx/204/304; chunked when the last transfer coding is chunked; else Content-Length; else the
 * body runs to the connection's close. Interim 1xx answers (100 Continue) are skipped. Bounded:
 * the head and the body each have a limit, and a malformed or oversized answer throws an Error
 * naming what was wrong (the client then fails the request and drops the connection).
 *
 * @example
 * ```ts
 * const parser = new HttpAnswerParser({ headBytesMax: 65_536, bodyBytesMax: 64 << 20 });
 * parser.expect("PUT");
 * socket.on("data", (bytes) => { const answer = parser.push(bytes); if (answer) done(answer); });
 * socket.on("end", () => { const answer = parser.end(); ... });
 * ```
 */

/** A complete answer. `close`: the server ends the connection after it (or the body ran to its end). */
export interface ParsedAnswer {
  readonly status: number;
  /** Lower-case names; a repeated header's values joined with ", " (set-cookie: an array), as node:http does. */
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly body: Buffer;
  readonly close: boolean;
}

export interface AnswerLimits {
  readonly headBytesMax: number;
  readonly bodyBytesMax: number;
}

type Framing =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly bytes: number }
  | { readonly kind: "chunked" }
  | { readonly kind: "until-close" };

const crlfcrlf = Buffer.from("\r\n\r\n", "latin1");
const statusLinePattern = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [^\r\n]*)?$/;
const headerNamePattern = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const chunkSizePattern = /^([0-9a-fA-F]{1,8})[ \t]*(?:;[^\r\n]*)?$/;

export class HttpAnswerParser {
  readonly #limits: AnswerLimits;
  /** Bytes not consumed yet (the head being read, or a chunked body's next line). */
  #pending: Buffer = Buffer.alloc(0);
  #method = "GET";
  #state: "idle" | "head" | "body" | "done" = "idle";
  #status = 0;
  #headers: Record<string, string | string[]> = {};
  #close = false;
  #framing: Framing = { kind: "none" };
  #bodyChunks: Buffer[] = [];
  #bodyBytes = 0;
  /** Chunked: bytes of the current chunk still to read (-1: its size line is next; -2: trailers). */
  #chunkLeft = -1;

  constructor(limits: AnswerLimits) {
    this.#limits = limits;
  }

  /** Starts on the answer to a request with `method` (HEAD answers carry no body). */
  expect(method: string): void {
    if (this.#pending.length > 0) throw new Error("the server sent bytes before the request was sent");
    this.#method = method;
    this.#state = "head";
    this.#headers = {};
    this.#bodyChunks = [];
    this.#bodyBytes = 0;
    this.#chunkLeft = -1;
  }

  /** Feeds bytes read from the socket; the answer once it is complete, else null. Throws on a malformed answer. */
  push(bytes: Buffer): ParsedAnswer | null {
    if (this.#state !== "head" && this.#state !== "body")
      throw new Error("the server sent bytes while no request was waiting");
    this.#pending = this.#pending.length === 0 ? bytes : Buffer.concat([this.#pending, bytes]);
    for (;;) {
      if (this.#state === "head") {
        if (!this.#readHead()) return null;
        continue;
      }
      return this.#readBody();
    }
  }

  /** The connection ended: the answer, when its body runs to the close; else throws. */
  end(): ParsedAnswer | null {
    if (this.#state === "idle" || this.#state === "done") return null;
    if (this.#state === "body" && this.#framing.kind === "until-close") {
      this.#close = true;
      return this.#finish();
    }
    throw new Error("the server closed the connection before the answer was complete");
  }

  /** Reads the head when it is all here; false when more bytes are needed. */
  #readHead(): boolean {
    const at = this.#pending.indexOf(crlfcrlf);
    if (at < 0) {
      if (this.#pending.length > this.#limits.headBytesMax)
        throw new Error(`the answer's head is longer than ${this.#limits.headBytesMax} bytes`);
      return false;
    }
    if (at > this.#limits.headBytesMax)
      throw new Error(`the answer's head is longer than ${this.#limits.headBytesMax} bytes`);
    const lines = this.#pending.toString("latin1", 0, at).split("\r\n");
    this.#pending = this.#pending.subarray(at + 4);
    const status = statusLinePattern.exec(lines[0] ?? "");
    if (status === null)
      throw new Error(`not an HTTP/1.x status line: ${JSON.stringify(lines[0]?.slice(0, 80))}`);
    const minor = Number(status[1]);
    const code = Number(status[2]);
    const headers: Record<string, string | string[]> = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] ?? "";
      const colon = line.indexOf(":");
      const name = colon > 0 ? line.slice(0, colon) : "";
      if (!headerNamePattern.test(name))
        throw new Error(`a malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
      addHeader(headers, name.toLowerCase(), line.slice(colon + 1).trim());
    }
    if (code < 200) {
      if (code === 101) throw new Error("the server switched protocols (101), which the bench does not use");
      return true; // interim answer (100 Continue, 103 Early Hints): the real one follows
    }
    this.#status = code;
    this.#headers = headers;
    const connection = headerTokens(headers.connection);
    this.#close = connection.includes("close") || (minor === 0 && !connection.includes("keep-alive"));
    this.#framing = framingOf(this.#method, code, headers);
    if (this.#framing.kind === "length" && this.#framing.bytes > this.#limits.bodyBytesMax)
      throw new Error(`the answer's body is larger than ${this.#limits.bodyBytesMax} bytes`);
    this.#state = "body";
    return true;
  }

  #readBody(): ParsedAnswer | null {
    const framing = this.#framing;
    switch (framing.kind) {
      case "none":
        return this.#finish();
      case "until-close":
        this.#take(this.#pending.length);
        return null;
      case "length": {
        this.#take(Math.min(this.#pending.length, framing.bytes - this.#bodyBytes));
        return this.#bodyBytes === framing.bytes ? this.#finish() : null;
      }
      case "chunked":
        return this.#readChunks();
    }
  }

  #readChunks(): ParsedAnswer | null {
    for (;;) {
      if (this.#chunkLeft > 0) {
        const bytes = Math.min(this.#chunkLeft, this.#pending.length);
        if (bytes === 0) return null;
        this.#take(bytes);
        this.#chunkLeft -= bytes;
        if (this.#chunkLeft > 0) return null;
        this.#chunkLeft = 0; // the CRLF after the chunk's data is next
      }
      const lineEnd = this.#pending.indexOf("\r\n", 0, "latin1");
      if (lineEnd < 0) {
        if (this.#pending.length > this.#limits.headBytesMax)
          throw new Error("a chunked answer's size or trailer line is too long");
        return null;
      }
      const line = this.#pending.toString("latin1", 0, lineEnd);
      this.#pending = this.#pending.subarray(lineEnd + 2);
      if (this.#chunkLeft === 0) {
        if (line !== "") throw new Error("a chunk's data is not followed by CRLF");
        this.#chunkLeft = -1;
        continue;
      }
      if (this.#chunkLeft === -2) {
        if (line === "") return this.#finish(); // the trailers end with an empty line
        continue; // a trailer field: not used
      }
      const size = chunkSizePattern.exec(line);
      if (size === null) throw new Error(`a malformed chunk size line: ${JSON.stringify(line.slice(0, 80))}`);
      const bytes = Number.parseInt(size[1] ?? "", 16);
      this.#chunkLeft = bytes === 0 ? -2 : bytes;
      if (this.#bodyBytes + bytes > this.#limits.bodyBytesMax)
        throw new Error(`the answer's body is larger than ${this.#limits.bodyBytesMax} bytes`);
    }
  }

  /** Moves `bytes` from the pending bytes into the body. */
  #take(bytes: number): void {
    if (bytes === 0) return;
    if (this.#bodyBytes + bytes > this.#limits.bodyBytesMax)
      throw new Error(`the answer's body is larger than ${this.#limits.bodyBytesMax} bytes`);
    this.#bodyChunks.push(this.#pending.subarray(0, bytes));
    this.#pending = this.#pending.subarray(bytes);
    this.#bodyBytes += bytes;
  }

  #finish(): ParsedAnswer {
    // No pipelining: one request is out at a time, so nothing may follow its answer.
    if (this.#pending.length > 0) throw new Error("the server sent more bytes than its answer");
    this.#state = "done";
    const chunks = this.#bodyChunks;
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.#bodyBytes);
    this.#bodyChunks = [];
    this.#pending = Buffer.alloc(0);
    const close = this.#close || this.#framing.kind === "until-close";
    return { status: this.#status, headers: this.#headers, body, close };
  }
}

function addHeader(headers: Record<string, string | string[]>, name: string, value: string): void {
  const before = headers[name];
  if (before === undefined) headers[name] = name === "set-cookie" ? [value] : value;
  else if (Array.isArray(before)) before.push(value);
  else headers[name] = `${before}, ${value}`;
}

/** A header's comma-separated tokens, lower case. */
function headerTokens(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value.join(",") : value)
    .split(",")
    .map((token) => token.trim().toLowerCase());
}

/** How the body is delimited (RFC 9112 §6.3). */
function framingOf(method: string, status: number, headers: Record<string, string | string[]>): Framing {
  if (method === "HEAD" || status === 204 || status === 304) return { kind: "none" };
  const codings = headerTokens(headers["transfer-encoding"]).filter((token) => token !== "");
  if (codings.length > 0) return codings.at(-1) === "chunked" ? { kind: "chunked" } : { kind: "until-close" };
  const length = headers["content-length"];
  if (length === undefined) return { kind: "until-close" };
  // Repeated (joined by addHeader) is allowed only with one value throughout.
  const values = new Set(headerTokens(length));
  const only = values.size === 1 ? [...values][0] : undefined;
  if (only === undefined || !/^\d{1,15}$/.test(only))
    throw new Error(`a malformed Content-Length: ${JSON.stringify(String(length).slice(0, 80))}`);
  const bytes = Number(only);
  return bytes === 0 ? { kind: "none" } : { kind: "length", bytes };
}
