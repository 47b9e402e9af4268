/**
 * Reading request bodies with a limit: the Content-Length is checked first, then the stream is
 * counted as it arrives, so an oversized body is refused (413 naming the limit) without being
 * held in memory. JSON that does not parse is a 400 with the parser's reason.
 */
import type { IncomingMessage } from "node:http";
import type { Context } from "hono";
import { nodeIncoming } from "./direct-answer.ts";
import { HttpFailure } from "./http-failure.ts";
import type { RouteRequest } from "./route-request.ts";

function bodyTooLarge(limitBytes: number, what: string): HttpFailure {
  return new HttpFailure(
    413,
    "CONCLAVE_BODY_TOO_LARGE",
    `the body is larger than ${limitBytes} bytes (the limit for ${what})`,
    { limitBytes },
  );
}

/** A Hono request's body as bytes, at most `limitBytes`; `what` names the limit in the 413 message. */
export async function readHonoBody(c: Context, limitBytes: number, what: string): Promise<Uint8Array> {
  const tooLarge = () => bodyTooLarge(limitBytes, what);
  const declared = Number(c.req.header("content-length") ?? 0);
  if (declared > limitBytes) throw tooLarge();
  const incoming = nodeIncoming(c);
  if (incoming !== null) return readIncoming(incoming, limitBytes, tooLarge);
  const stream = c.req.raw.body;
  if (stream === null) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > limitBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** node:http's request body as bytes, at most `limitBytes`; `what` names the limit in the 413 message. */
export function readNodeBody(
  incoming: IncomingMessage,
  limitBytes: number,
  what: string,
): Promise<Uint8Array> {
  const tooLarge = () => bodyTooLarge(limitBytes, what);
  const declared = Number(incoming.headers["content-length"] ?? 0);
  if (declared > limitBytes) return Promise.reject(tooLarge());
  return readIncoming(incoming, limitBytes, tooLarge);
}

/**
 * Reads node:http's request stream directly (no WHATWG Request or stream; see direct-answer.ts).
 * Past the limit, the rest of the body is discarded as it arrives, so the 413 can be answered
 * on a connection that stays usable.
 */
function readIncoming(
  incoming: IncomingMessage,
  limitBytes: number,
  tooLarge: () => HttpFailure,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limitBytes) {
        incoming.off("data", onData);
        incoming.resume();
        finish(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const finish = (error: Error | null) => {
      incoming.off("end", onEnd);
      incoming.off("error", onError);
      incoming.off("close", onClose);
      if (error === null) resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, bytes));
      else reject(error);
    };
    const onEnd = () => finish(null);
    const onError = (error: Error) => finish(error);
    const onClose = () => {
      if (!incoming.complete)
        finish(new Error("the client closed the connection before the body was complete"));
    };
    incoming.on("data", onData);
    incoming.once("end", onEnd);
    incoming.once("error", onError);
    incoming.once("close", onClose);
  });
}

/** The body parsed as JSON (at most `limitBytes`); 400 when it is not JSON. */
export async function readJsonBody(
  request: RouteRequest,
  limitBytes: number,
  what: string,
): Promise<unknown> {
  const bytes = await request.bodyBytes(limitBytes, what);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new HttpFailure(400, "CONCLAVE_BAD_JSON", `the body is not valid JSON: ${reason}`);
  }
}

/** A non-negative integer query parameter, or `fallback` when absent; 400 when malformed. */
export function integerParam(request: RouteRequest, name: string, fallback: number): number;
export function integerParam(request: RouteRequest, name: string, fallback: null): number | null;
export function integerParam(request: RouteRequest, name: string, fallback: number | null): number | null {
  const text = request.query(name);
  if (text === undefined || text === "") return fallback;
  if (!/^\d{1,15}$/.test(text)) {
    throw new HttpFailure(
      400,
      "CONCLAVE_BAD_REQUEST",
      `${name} must be a non-negative integer, not ${JSON.stringify(text)}`,
    );
  }
  return Number(text);
}
