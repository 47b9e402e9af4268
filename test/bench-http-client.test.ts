import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from "node:net";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { HttpAnswerParser, type ParsedAnswer } from "../bench/compare/http-answer-parser.ts";
import {
  type ClientKind,
  clientKinds,
  createHttpClient,
  type Endpoint,
} from "../bench/compare/http-client.ts";

const limits = { headBytesMax: 1024, bodyBytesMax: 4096 };

/** Parses `raw` (an answer to `method`) fed in the pieces `cuts` gives; null when incomplete. */
function parse(raw: string | Buffer, method = "GET", cuts: number[] = []): ParsedAnswer | null {
  const bytes = typeof raw === "string" ? Buffer.from(raw, "latin1") : raw;
  const parser = new HttpAnswerParser(limits);
  parser.expect(method);
  let from = 0;
  for (const cut of [
    ...cuts.filter((at) => at > 0 && at < bytes.length).sort((a, b) => a - b),
    bytes.length,
  ]) {
    if (cut <= from) continue;
    const answer = parser.push(bytes.subarray(from, cut));
    from = cut;
    if (answer !== null) {
      assert.equal(from, bytes.length, "the answer completed before its last byte");
      return answer;
    }
  }
  return null;
}

const everyByte = (raw: string): number[] => Array.from({ length: raw.length }, (_, at) => at);

describe("bench HTTP answer parser", () => {
  it("reads a Content-Length answer, whole or one byte at a time", () => {
    const raw = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"term":42}';
    for (const cuts of [[], everyByte(raw)]) {
      const answer = parse(raw, "PUT", cuts);
      assert.ok(answer !== null);
      assert.equal(answer.status, 200);
      assert.equal(answer.headers["content-type"], "application/json");
      assert.equal(answer.body.toString(), '{"term":42}');
      assert.equal(answer.close, false);
    }
  });

  it("decodes a chunked answer with extensions and trailers, one byte at a time", () => {
    const raw =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=x\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n";
    for (const cuts of [[], everyByte(raw)])
      assert.equal(parse(raw, "GET", cuts)?.body.toString(), "hello 0123456789");
  });

  it("skips interim 1xx answers and reads the final one", () => {
    const answer = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
    assert.equal(answer?.status, 201);
    assert.equal(answer?.body.toString(), "ok");
  });

  it("reads no body after HEAD, 204 and 304, whatever Content-Length says", () => {
    assert.equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "HEAD")?.body.length, 0);
    assert.equal(parse("HTTP/1.1 204 No Content\r\n\r\n")?.status, 204);
    assert.equal(parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n")?.status, 304);
  });

  it("reads a body without a length to the connection's end, and then closes", () => {
    const parser = new HttpAnswerParser(limits);
    parser.expect("GET");
    assert.equal(parser.push(Buffer.from("HTTP/1.1 200 OK\r\n\r\npart one, ")), null);
    assert.equal(parser.push(Buffer.from("part two")), null);
    const answer = parser.end();
    assert.equal(answer?.body.toString(), "part one, part two");
    assert.equal(answer?.close, true);
  });

  it("closes after Connection: close and after an HTTP/1.0 answer without keep-alive", () => {
    assert.equal(parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")?.close, true);
    assert.equal(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")?.close, true);
    assert.equal(
      parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")?.close,
      false,
    );
  });

  it("joins a repeated header as node:http does, and keeps set-cookie as a list", () => {
    const answer = parse(
      "HTTP/1.1 200 OK\r\nVia: a\r\nVia: b\r\nSet-Cookie: x=1\r\nSet-Cookie: y=2\r\nContent-Length: 0\r\n\r\n",
    );
    assert.equal(answer?.headers.via, "a, b");
    assert.deepEqual(answer?.headers["set-cookie"], ["x=1", "y=2"]);
  });

  it("refuses malformed and oversized answers with an error naming the problem", () => {
    const refused: [string, RegExp][] = [
      ["HTTP/2 200 OK\r\n\r\n", /not an HTTP\/1\.x status line/],
      ["HTTP/1.1 20 OK\r\n\r\n", /not an HTTP\/1\.x status line/],
      ["HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", /malformed header line/],
      ["HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", /malformed Content-Length/],
      ["HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", /malformed Content-Length/],
      ["HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", /body is larger than 4096 bytes/],
      ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", /malformed chunk size line/],
      ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", /not followed by CRLF/],
      ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2000\r\n", /body is larger than 4096 bytes/],
      ["HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab", /more bytes than its answer/],
      ["HTTP/1.1 101 Switching Protocols\r\n\r\n", /switched protocols/],
      [`HTTP/1.1 200 OK\r\nX: ${"y".repeat(2000)}`, /head is longer than 1024 bytes/],
    ];
    for (const [raw, error] of refused) assert.throws(() => parse(raw), error, raw.slice(0, 40));
  });

  it("fails an answer the connection cut short", () => {
    const parser = new HttpAnswerParser(limits);
    parser.expect("GET");
    parser.push(Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
    assert.throws(() => parser.end(), /closed the connection before the answer was complete/);
  });

  it("reads answers of different framings one after another with one parser", () => {
    const parser = new HttpAnswerParser(limits);
    const answers: [string, string, string][] = [
      ["GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "abc"],
      ["HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", ""],
      ["PUT", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nwxyz", "wxyz"],
      ["GET", "HTTP/1.1 204 No Content\r\n\r\n", ""],
    ];
    for (const [method, raw, body] of answers) {
      parser.expect(method);
      assert.equal(
        parser.push(Buffer.from(raw, "latin1"))?.body.toString(),
        body,
        `${method} ${raw.slice(0, 30)}`,
      );
    }
  });

  it("reads any body, framed either way, after a 100 Continue or not, with chunk extensions and trailers or not, however the bytes are cut", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.boolean(),
        fc.array(fc.nat({ max: 800 }), { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        (bytes, chunked, cuts, chunkSizes, extras) => {
          const body = Buffer.from(bytes);
          let framed: Buffer;
          if (!chunked) {
            framed = Buffer.concat([
              Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`),
              body,
            ]);
          } else {
            const parts = [Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")];
            for (let at = 0, n = 0; at < body.length; n++) {
              const size = Math.min(chunkSizes[n % chunkSizes.length] ?? 1, body.length - at);
              parts.push(
                Buffer.from(`${size.toString(16)}${extras ? ";ext=1" : ""}\r\n`),
                body.subarray(at, at + size),
                Buffer.from("\r\n"),
              );
              at += size;
            }
            parts.push(Buffer.from(extras ? "0\r\nX-Checksum: 1\r\n\r\n" : "0\r\n\r\n"));
            framed = Buffer.concat(parts);
          }
          if (extras) framed = Buffer.concat([Buffer.from("HTTP/1.1 100 Continue\r\n\r\n"), framed]);
          const answer = parse(framed, "GET", cuts);
          assert.ok(answer !== null);
          assert.deepEqual(answer.body, body);
        },
      ),
      { numRuns: 500 },
    );
  });
});

/** A server on loopback; closed after the tests. */
async function listen(server: Server): Promise<Endpoint> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  after(() => server.close());
  const { port } = server.address() as AddressInfo;
  return { url: new URL(`http://127.0.0.1:${port}`), headers: { authorization: "Bearer secret" } };
}

/** A node:http server answering with `handle`, counting the connections it accepted. */
async function httpServer(
  handle: (request: IncomingMessage, body: Buffer, response: ServerResponse) => void,
): Promise<{ endpoint: Endpoint; connections: () => number }> {
  let connections = 0;
  const server = createHttpServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => handle(request, Buffer.concat(chunks), response));
  });
  server.on("connection", () => connections++);
  after(() => server.closeAllConnections());
  return { endpoint: await listen(server), connections: () => connections };
}

/** Answers with what the server received: method, path, chosen headers and the body. */
const echo = (request: IncomingMessage, body: Buffer, response: ServerResponse): void => {
  const received = {
    method: request.method,
    url: request.url,
    authorization: request.headers.authorization,
    contentType: request.headers["content-type"] ?? null,
    contentLength: request.headers["content-length"],
    body: body.toString("base64"),
  };
  response.writeHead(200, { "content-type": "application/json", "x-test": "yes" });
  response.end(JSON.stringify(received));
};

/**
 * A raw server answers a connection's first request with "ok" and, 30 ms later, does `toIdle` to
 * that idle connection: the client's next request must succeed on a new connection.
 */
async function expectNewConnectionAfterIdle(
  makeClient: (endpoint: Endpoint) => ReturnType<typeof createHttpClient>,
  toIdle: (socket: Socket) => void,
): Promise<void> {
  let connections = 0;
  const server = createNetServer((socket: Socket) => {
    connections++;
    socket.once("data", () => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      setTimeout(() => toIdle(socket), 30);
    });
  });
  const http = makeClient(await listen(server));
  try {
    assert.equal((await http.send("GET", "/1", null)).body.toString(), "ok");
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await http.send("GET", "/2", null)).body.toString(), "ok");
    assert.equal(connections, 2);
  } finally {
    http.close();
  }
}

for (const kind of clientKinds) {
  describe(`bench HTTP client (${kind})`, () => {
    const client = (endpoints: Endpoint[], socketsMax = 4, timeoutMs = 5_000) =>
      createHttpClient(endpoints, { socketsMax, timeoutMs, client: kind as ClientKind });

    it("sends the method, target, the endpoint's and the call's headers and the body; reads the answer", async () => {
      const { endpoint } = await httpServer(echo);
      const http = client([endpoint]);
      try {
        const body = Buffer.from([0, 1, 2, 255, 13, 10]);
        const answer = await http.send("PUT", "/v1/kv/a%2Fb?x=1", body, {
          "content-type": "application/octet-stream",
        });
        assert.equal(answer.status, 200);
        assert.equal(answer.headers["x-test"], "yes");
        assert.deepEqual(JSON.parse(answer.body.toString()), {
          method: "PUT",
          url: "/v1/kv/a%2Fb?x=1",
          authorization: "Bearer secret",
          contentType: "application/octet-stream",
          contentLength: "6",
          body: body.toString("base64"),
        });
        const empty = JSON.parse((await http.send("GET", "/x", null)).body.toString()) as {
          contentLength: string;
        };
        assert.equal(empty.contentLength, "0");
      } finally {
        http.close();
      }
    });

    it("keeps one connection alive for requests one after another", async () => {
      const { endpoint, connections } = await httpServer(echo);
      const http = client([endpoint]);
      try {
        for (let i = 0; i < 20; i++) assert.equal((await http.send("GET", `/n/${i}`, null)).status, 200);
        assert.equal(connections(), 1);
      } finally {
        http.close();
      }
    });

    it("opens at most socketsMax connections per member; the rest wait their turn", async () => {
      let inFlight = 0;
      let inFlightMax = 0;
      const { endpoint, connections } = await httpServer((request, body, response) => {
        inFlight++;
        inFlightMax = Math.max(inFlightMax, inFlight);
        setTimeout(() => {
          inFlight--;
          echo(request, body, response);
        }, 20);
      });
      const http = client([endpoint], 2);
      try {
        const answers = await Promise.all(
          Array.from({ length: 7 }, (_, i) => http.send("GET", `/w/${i}`, null)),
        );
        assert.deepEqual(
          answers.map((answer) => (JSON.parse(answer.body.toString()) as { url: string }).url),
          Array.from({ length: 7 }, (_, i) => `/w/${i}`),
        );
        assert.equal(inFlightMax, 2);
        assert.equal(connections(), 2);
      } finally {
        http.close();
      }
    });

    it("spreads requests over the members in turn, or sends to the one named", async () => {
      const a = await httpServer((_request, _body, response) => response.end("a"));
      const b = await httpServer((_request, _body, response) => response.end("b"));
      const http = client([a.endpoint, b.endpoint]);
      try {
        const seen: string[] = [];
        for (let i = 0; i < 4; i++) seen.push((await http.send("GET", "/", null)).body.toString());
        assert.deepEqual(seen, ["a", "b", "a", "b"]);
        assert.equal((await http.send("GET", "/", null, {}, 1)).body.toString(), "b");
      } finally {
        http.close();
      }
    });

    it("reads chunked answers, and opens a new connection after Connection: close", async () => {
      const { endpoint, connections } = await httpServer((request, _body, response) => {
        if (request.url === "/close") response.setHeader("connection", "close");
        response.write("first ");
        response.end("second");
      });
      const http = client([endpoint]);
      try {
        assert.equal((await http.send("GET", "/chunked", null)).body.toString(), "first second");
        assert.equal((await http.send("GET", "/close", null)).body.toString(), "first second");
        assert.equal((await http.send("GET", "/again", null)).body.toString(), "first second");
        assert.equal(connections(), 2);
      } finally {
        http.close();
      }
    });

    it("times out a request the server never answers, and goes on with a new connection", async () => {
      const { endpoint } = await httpServer((request, body, response) => {
        if (request.url !== "/never") echo(request, body, response);
      });
      const http = client([endpoint], 1, 300);
      try {
        const started = performance.now();
        await assert.rejects(http.send("GET", "/never", null), /timeout after 300 ms/);
        assert.ok(performance.now() - started < 2_000);
        assert.equal((await http.send("GET", "/after", null)).status, 200);
      } finally {
        http.close();
      }
    });

    it("fails requests to a member that is not listening, and one whose connection breaks mid-answer", async () => {
      const closed = createNetServer();
      const free = await listen(closed);
      closed.close();
      const broken = createNetServer((socket: Socket) =>
        socket.once("data", () => socket.end("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")),
      );
      const cut = await listen(broken);
      const http = client([free, cut]);
      try {
        await assert.rejects(http.send("GET", "/", null, {}, 0), /ECONNREFUSED/);
        const cutShort = kind === "lean" ? /before the answer was complete/ : /aborted|hang up|ECONNRESET/;
        await assert.rejects(http.send("GET", "/", null, {}, 1), cutShort);
      } finally {
        http.close();
      }
    });

    it("starts a waiting request as soon as a connection closes", async () => {
      const { endpoint, connections } = await httpServer((request, body, response) => {
        if (request.url === "/close") response.setHeader("connection", "close");
        setTimeout(() => echo(request, body, response), 20);
      });
      const http = client([endpoint], 1);
      try {
        const started = performance.now();
        const [first, second] = await Promise.all([
          http.send("GET", "/close", null),
          http.send("GET", "/next", null),
        ]);
        assert.equal(first.status, 200);
        assert.equal(second.status, 200);
        assert.ok(performance.now() - started < 2_000, "the second request waited for a timeout");
        assert.equal(connections(), 2);
      } finally {
        http.close();
      }
    });

    it("times out a request still waiting for a connection", async () => {
      const { endpoint } = await httpServer(() => {});
      const http = client([endpoint], 1, 300);
      try {
        const started = performance.now();
        const outcomes = await Promise.allSettled([
          http.send("GET", "/a", null),
          http.send("GET", "/b", null),
        ]);
        for (const outcome of outcomes) {
          assert.equal(outcome.status, "rejected");
          assert.match(String((outcome as PromiseRejectedResult).reason), /timeout after 300 ms/);
        }
        assert.ok(performance.now() - started < 2_000);
      } finally {
        http.close();
      }
    });

    it("does not reuse a connection the server closed while it was idle", async () => {
      await expectNewConnectionAfterIdle(
        (endpoint) => client([endpoint], 1),
        (socket) => socket.end(),
      );
    });
  });
}

describe("bench HTTP client (lean) connections", () => {
  const lean = (endpoint: Endpoint) => createHttpClient([endpoint], { socketsMax: 1, timeoutMs: 5_000 });

  it("drops an idle connection the server sent stray bytes on, and goes on with a new one", async () => {
    await expectNewConnectionAfterIdle(lean, (socket) => socket.write("garbage"));
  });

  it("drops an idle connection before the server's Keep-Alive timeout runs out", async () => {
    let connections = 0;
    const hinting = createNetServer((socket: Socket) => {
      connections++;
      // timeout=1: reusable for 1 s less a 1 s margin, so never; the server itself never closes.
      socket.on("data", () =>
        socket.write("HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok"),
      );
    });
    const http = lean(await listen(hinting));
    try {
      for (let i = 0; i < 3; i++) assert.equal((await http.send("GET", `/${i}`, null)).body.toString(), "ok");
      assert.equal(connections, 3);
    } finally {
      http.close();
    }
  });

  it("refuses an endpoint that is not plain HTTP", () => {
    assert.throws(
      () =>
        createHttpClient([{ url: new URL("https://127.0.0.1:1"), headers: {} }], {
          socketsMax: 1,
          timeoutMs: 1,
        }),
      /plain HTTP only, not https:/,
    );
  });
});

describe("bench HTTP client (lean) bounds", () => {
  it("refuses a request target or header it would have to send as something else", async () => {
    const http = createHttpClient([{ url: new URL("http://127.0.0.1:9"), headers: {} }], {
      socketsMax: 1,
      timeoutMs: 1_000,
    });
    try {
      await assert.rejects(http.send("GET", "/a b", null), /not a plain request target/);
      await assert.rejects(http.send("GET", "/", null, { "x-a": "line\r\nbreak" }), /may not carry/);
    } finally {
      http.close();
    }
  });

  it("fails requests still waiting for a connection when the client closes", async () => {
    const silent = createNetServer(() => {});
    const endpoint = await listen(silent);
    after(() => silent.close());
    const http = createHttpClient([endpoint], { socketsMax: 1, timeoutMs: 10_000 });
    const first = http.send("GET", "/1", null);
    const second = http.send("GET", "/2", null);
    http.close();
    await assert.rejects(first, /closed/);
    await assert.rejects(second, /closed/);
  });
});
