/**
 * One call to a node's HTTP API for the operator commands: JSON in, JSON out, the API token in
 * `Authorization`, and every failure turned into one plain ConclaveError (an unreachable node,
 * a refused token, a refused operation with the node's own explanation).
 */
import { readFileSync } from "node:fs";
import { ConclaveError } from "../lib/errors.ts";

/** The HTTP API of a node started with the defaults. */
export const adminEndpointDefault = "http://127.0.0.1:4380";

/** Where a command sends its request. */
export interface AdminTarget {
  readonly endpoint: string;
  readonly token: string | undefined;
}

/** The token from `--token`, `--token-file`, or `CONCLAVE_TOKEN`, in that order. */
export function resolveToken(options: { token?: string; tokenFile?: string }): string | undefined {
  if (options.token !== undefined) return options.token;
  if (options.tokenFile !== undefined) {
    try {
      return readFileSync(options.tokenFile, "utf8").trim();
    } catch (error) {
      throw new ConclaveError(
        "CONCLAVE_USAGE",
        `cannot read the token file ${options.tokenFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
  }
  const fromEnvironment = process.env.CONCLAVE_TOKEN;
  return fromEnvironment === undefined || fromEnvironment === "" ? undefined : fromEnvironment;
}

/** Calls `method path` on the node; resolves with the JSON answer of a 2xx. */
export async function adminRequest(
  target: AdminTarget,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  timeoutMs = 60_000,
): Promise<Record<string, unknown>> {
  let url: URL;
  try {
    url = new URL(path, target.endpoint);
  } catch {
    throw new ConclaveError(
      "CONCLAVE_USAGE",
      `--endpoint must be a URL such as ${adminEndpointDefault}, not "${target.endpoint}"`,
    );
  }
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (target.token !== undefined) headers.authorization = `Bearer ${target.token}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const reason = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    throw new ConclaveError(
      "CONCLAVE_UNREACHABLE",
      `cannot reach the node at ${target.endpoint} (${reason}); is it running, and is --endpoint its HTTP address?`,
    );
  }
  const text = await response.text();
  let answer: Record<string, unknown>;
  try {
    answer = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new ConclaveError(
      "CONCLAVE_BAD_ANSWER",
      `${target.endpoint} answered ${response.status} with something that is not JSON; is it a Conclave node?`,
    );
  }
  if (response.status === 401) {
    throw new ConclaveError(
      "CONCLAVE_UNAUTHORIZED",
      `${String(answer.error ?? "the token was refused")} (give the token with --token, --token-file or CONCLAVE_TOKEN)`,
    );
  }
  if (!response.ok)
    throw new ConclaveError(
      String(answer.code ?? "CONCLAVE_REFUSED"),
      String(answer.error ?? `HTTP ${response.status}`),
    );
  return answer;
}
