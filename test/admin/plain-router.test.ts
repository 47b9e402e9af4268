/**
 * The plain router in front of Hono (src/admin/plain-router.ts), over a real node:http server:
 * which route a request reaches, what falls through to Hono, the token check, HEAD, the query
 * and header views, and error answers (one JSON shape, never a stack trace).
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import type { AdminContext } from "../../src/admin/admin-context.ts";
import { HttpFailure } from "../../src/admin/http-failure.ts";
import { HttpMetrics } from "../../src/admin/http-metrics.ts";
import { PlainRouter, servePlain } from "../../src/admin/plain-router.ts";
import { jsonAnswer } from "../../src/admin/route-request.ts";
import { SlowRequestLog } from "../../src/admin/slow-requests.ts";
import { waitFor } from "../e2e/node-processes.ts";

const token = "cnc_test-token";
const ignore = (): void => {};
const silent = { debug: ignore, info: ignore, warn: ignore, error: ignore };

describe("the plain router", () => {
  const warnings: { fields: unknown; message: string }[] = [];
  const context = {
    apiToken: { check: (presented: string | undefined) => presented === token },
    logger: { warn: (fields: unknown, message: string) => warnings.push({ fields, message }) },
    slowRequests: new SlowRequestLog({ thresholdMs: 60_000, linesPerSecondMax: 10, logger: silent }),
    httpMetrics: new HttpMetrics(),
  } as unknown as AdminContext;
  let server: Server;
  let base: string;
  const call = (path: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, {
      signal: AbortSignal.timeout(5000),
      ...init,
      headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) },
    });

  before(async () => {
    const router = new PlainRouter();
    router.add("GET", "/v1/things/*", async (request) => jsonAnswer({ route: "thing", path: request.path }));
    router.add("GET", "/v1/things/special/*", async () => jsonAnswer({ route: "special" }));
    router.add("GET", "/v1/things/list", async () => jsonAnswer({ route: "list" }));
    router.add("PUT", "/v1/things/*", async (request) => {
      const body = Buffer.from(await request.bodyBytes(8, "a thing")).toString();
      return jsonAnswer({
        route: "put",
        body,
        n: request.query("n") ?? null,
        header: request.header("x-note"),
      });
    });
    router.add("GET", "/v1/bytes", async () => ({
      status: 200,
      contentType: "application/octet-stream",
      body: new Uint8Array([1, 2, 3]),
      headers: { "x-extra": "yes" },
    }));
    router.add("POST", "/v1/fail/expected", async (request) => {
      request.setAnswerHeader("x-kept", "1");
      throw new HttpFailure(409, "CONCLAVE_TEST", "it conflicts", { detail: 7 });
    });
    router.add("POST", "/v1/fail/unexpected", async () => {
      throw new TypeError("secret internals at line 42");
    });
    router.add("POST", "/v1/fail/unencodable", async () => {
      throw new HttpFailure(409, "CONCLAVE_TEST", "details JSON cannot hold", { count: 10n });
    });
    server = createServer((request, response) => {
      if (servePlain(router, context, request, response)) return;
      response.writeHead(404, { "content-type": "text/plain" });
      response.end("fell through");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("routes exact paths first, then the longest prefix, by method; the rest falls through", async () => {
    assert.deepEqual(await (await call("/v1/things/list")).json(), { route: "list" });
    assert.deepEqual(await (await call("/v1/things/special/x")).json(), { route: "special" });
    assert.deepEqual(await (await call("/v1/things/a%2Fb")).json(), {
      route: "thing",
      path: "/v1/things/a%2Fb",
    });
    assert.deepEqual(await (await call("/v1/other/../things/z")).json(), {
      route: "thing",
      path: "/v1/things/z",
    });
    for (const [path, method] of [
      ["/v1/things/x", "DELETE"],
      ["/v1/nothing", "GET"],
      ["/health/live", "GET"],
    ] as const) {
      const answer = await call(path, { method });
      assert.equal(answer.status, 404, `${method} ${path}`);
      assert.equal(await answer.text(), "fell through");
    }
  });

  it("checks the token on every route, with the same 401 as Hono's middleware", async () => {
    const answer = await fetch(`${base}/v1/things/x`);
    assert.equal(answer.status, 401);
    assert.equal(answer.headers.get("www-authenticate"), 'Bearer realm="conclave"');
    assert.equal(((await answer.json()) as { code: string }).code, "CONCLAVE_UNAUTHORIZED");
  });

  it("reads the body within its limit, decoded query parameters and headers", async () => {
    const answer = await call("/v1/things/k?n=a%20b&n=second", {
      method: "PUT",
      body: "12345678",
      headers: { "X-Note": "hello" },
    });
    assert.deepEqual(await answer.json(), { route: "put", body: "12345678", n: "a b", header: "hello" });
    const tooLarge = await call("/v1/things/k", { method: "PUT", body: "123456789" });
    assert.equal(tooLarge.status, 413);
    assert.equal(((await tooLarge.json()) as { limitBytes: number }).limitBytes, 8);
  });

  /** Sends `parts` over one raw connection, `gapMs` apart; resolves with the answer's status line and body. */
  async function rawRequest(
    parts: readonly string[],
    gapMs: number,
  ): Promise<{ status: string; body: string }> {
    const socket = connect(Number(new URL(base).port), "127.0.0.1");
    await once(socket, "connect");
    let received = "";
    socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
    for (const part of parts) {
      socket.write(part);
      await delay(gapMs);
    }
    await waitFor("an answer", 5000, async () => (received.includes("\r\n\r\n{") ? true : null));
    socket.destroy();
    return {
      status: received.split("\r\n")[0] ?? "",
      body: received.slice(received.indexOf("\r\n\r\n") + 4),
    };
  }
  const head = (extra: string) =>
    `PUT /v1/things/k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n${extra}\r\n`;

  it("reads a body that arrives in several packets, and one that arrives with its headers", async () => {
    const split = await rawRequest([head("Content-Length: 8\r\n"), "1234", "5678"], 30);
    assert.equal(split.status, "HTTP/1.1 200 OK");
    assert.equal((JSON.parse(split.body) as { body: string }).body, "12345678");
    const whole = await rawRequest([`${head("Content-Length: 3\r\n")}abc`], 0);
    assert.equal((JSON.parse(whole.body) as { body: string }).body, "abc");
    const empty = await rawRequest([head("Content-Length: 0\r\n")], 0);
    assert.equal((JSON.parse(empty.body) as { body: string }).body, "");
  });

  it("refuses a chunked body past the limit, whether it came in one packet or several (413)", async () => {
    const chunked = head("Transfer-Encoding: chunked\r\n");
    const inOne = await rawRequest([`${chunked}9\r\n123456789\r\n0\r\n\r\n`], 0);
    assert.equal(inOne.status, "HTTP/1.1 413 Payload Too Large");
    const inParts = await rawRequest([chunked, "5\r\n12345\r\n", "4\r\n6789\r\n0\r\n\r\n"], 30);
    assert.equal(inParts.status, "HTTP/1.1 413 Payload Too Large");
  });

  it("writes bytes with the route's headers; HEAD gets the GET route's headers and no body", async () => {
    const got = await call("/v1/bytes");
    assert.equal(got.headers.get("x-extra"), "yes");
    assert.deepEqual(new Uint8Array(await got.arrayBuffer()), new Uint8Array([1, 2, 3]));
    const head = await call("/v1/bytes", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), "3");
    assert.equal(head.headers.get("x-extra"), "yes");
    assert.equal((await head.arrayBuffer()).byteLength, 0);
  });

  it("answers errors in the one JSON shape: an HttpFailure as it is, anything else a logged 500", async () => {
    const expected = await call("/v1/fail/expected", { method: "POST" });
    assert.equal(expected.status, 409);
    assert.equal(expected.headers.get("x-kept"), "1", "headers set before the failure stay");
    assert.deepEqual(await expected.json(), { error: "it conflicts", code: "CONCLAVE_TEST", detail: 7 });
    const unexpected = await call("/v1/fail/unexpected", { method: "POST" });
    assert.equal(unexpected.status, 500);
    const text = await unexpected.text();
    assert.deepEqual(JSON.parse(text), { error: "internal error", code: "CONCLAVE_INTERNAL" });
    assert.doesNotMatch(text, /secret|line 42/);
    assert.ok(
      warnings.some((warning) => /secret internals/.test(JSON.stringify(warning.fields))),
      "the real error is in the log",
    );
    const unencodable = await call("/v1/fail/unencodable", { method: "POST" });
    assert.equal(unencodable.status, 500, "an error answer that cannot be encoded is still answered");
    assert.equal(((await unencodable.json()) as { code: string }).code, "CONCLAVE_INTERNAL");
  });
});
