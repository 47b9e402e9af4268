/**
 * The operator's cluster routes (the CLI's `status`, `join`, `leave`, `force-leave`,
 * `set-primary`, `assume-primary` call them):
 * - `GET  /v1/cluster/status` → members in order with state, lag, contact, clock offset; quorum facts;
 * - `GET  /v1/node` → this node's subsystems (storage and disk use, transport peers, apply lag);
 * - `POST /v1/cluster/join {target, timeoutMs?}` on the new node → 200 `{ joined }`;
 * - `POST /v1/cluster/leave {force?}` on the leaving node → 202 `{ leaving }` (the primary carries it out);
 * - `POST /v1/cluster/force-leave {member, force?}` → 202 `{ removing }`;
 * - `POST /v1/cluster/set-primary {member}` → 200 `{ primary, durationMs }` once it is primary;
 *   on a secondary the request is passed to the primary's HTTP API (from the member list);
 * - `POST /v1/cluster/assume-primary` → set-primary to this node;
 * - `GET|POST /v1/cluster/settings {syncTimeoutMs?, recoveryMessage?}` → the replicated settings.
 * Refusals are 409 (quorum at risk, transfer refused, already a member), 404 (unknown member),
 * 400 (bad body), 502/504 (join target silent), each with a message naming the fix.
 */
import type { Context } from "hono";
import { isConclaveError } from "../lib/errors.ts";
import type { AdminContext, RouteModule } from "./admin-context.ts";
import { HttpFailure, runtimeFailure } from "./http-failure.ts";
import { readJsonBody } from "./request-body.ts";
import { honoRequest } from "./route-request.ts";

const bodyBytesMax = 4096;
const joinTimeoutMsDefault = 30_000;
const joinTimeoutMsMax = 300_000;

/** Status per cluster operation error code. */
const statusByCode: Readonly<Record<string, number>> = {
  CONCLAVE_USAGE: 400,
  CONCLAVE_MEMBER_UNKNOWN: 404,
  CONCLAVE_NOT_MEMBER: 409,
  CONCLAVE_ALREADY_MEMBER: 409,
  CONCLAVE_QUORUM_AT_RISK: 409,
  CONCLAVE_TRANSFER_REFUSED: 409,
  CONCLAVE_JOIN_BUSY: 409,
  CONCLAVE_JOIN_REFUSED: 409,
  CONCLAVE_MEMBER_REMOVED: 409,
  CONCLAVE_MEMBER_NAME_TAKEN: 409,
  CONCLAVE_MEMBER_RENAMED: 409,
  CONCLAVE_REFUSED: 409,
  CONCLAVE_JOIN_TIMEOUT: 504,
};

export const registerClusterAdminRoutes: RouteModule = (app, context) => {
  app.get("/v1/cluster/status", (c) => c.json(context.cluster.status()));
  app.get("/v1/node", async (c) => c.json(await context.node.details()));

  app.get("/v1/cluster/settings", (c) => c.json(publicSettings(context)));
  app.post("/v1/cluster/settings", async (c) => {
    const body = await objectBody(c);
    const settings: { syncTimeoutMs?: number; recoveryMessage?: string } = {};
    if (body.syncTimeoutMs !== undefined) settings.syncTimeoutMs = body.syncTimeoutMs as number;
    if (body.recoveryMessage !== undefined) settings.recoveryMessage = body.recoveryMessage as string;
    const data = await run(context, async () =>
      context.database.encodeCommand({ kind: "cluster", op: "settings-set", settings }),
    );
    const { result } = await run(context, () => context.runtime.propose(data, { forward: true }));
    const outcome = result as { ok: boolean; error?: { code: string; message: string } };
    if (!outcome.ok)
      throw new HttpFailure(
        409,
        outcome.error?.code ?? "CONCLAVE_REFUSED",
        outcome.error?.message ?? "refused",
      );
    await run(context, () => context.runtime.readIndex({ forward: true }));
    return c.json(publicSettings(context));
  });

  app.post("/v1/cluster/join", async (c) => {
    const body = await objectBody(c);
    const target = stringField(body, "target", "the member to join, as name@host or name@host:port");
    const timeoutMs = body.timeoutMs ?? joinTimeoutMsDefault;
    if (
      typeof timeoutMs !== "number" ||
      !Number.isInteger(timeoutMs) ||
      timeoutMs < 1000 ||
      timeoutMs > joinTimeoutMsMax
    ) {
      throw new HttpFailure(
        400,
        "CONCLAVE_BAD_REQUEST",
        `timeoutMs must be a whole number of milliseconds from 1000 to ${joinTimeoutMsMax}`,
      );
    }
    return c.json(await run(context, () => context.cluster.operations.join(target, timeoutMs)));
  });

  app.post("/v1/cluster/leave", async (c) => {
    const body = await objectBody(c);
    return c.json(
      await run(context, () => context.cluster.operations.leave({ force: flag(body, "force") })),
      202,
    );
  });

  app.post("/v1/cluster/force-leave", async (c) => {
    const body = await objectBody(c);
    const member = stringField(body, "member", "the member to remove, as name or name@host");
    return c.json(
      await run(context, () => context.cluster.operations.forceLeave(member, { force: flag(body, "force") })),
      202,
    );
  });

  app.post("/v1/cluster/set-primary", async (c) => {
    const body = await objectBody(c);
    const member = stringField(body, "member", "the member to make primary, as name or name@host");
    return setPrimary(c, context, member);
  });

  app.post("/v1/cluster/assume-primary", async (c) =>
    setPrimary(c, context, String(context.node.status().raftId)),
  );
};

/** The settings without the token's hash and sealed copy. */
function publicSettings(context: AdminContext): {
  syncTimeoutMs: number | null;
  recoveryMessage: string | null;
} {
  const { syncTimeoutMs, recoveryMessage } = context.database.cluster.settings();
  return { syncTimeoutMs, recoveryMessage };
}

async function setPrimary(c: Context, context: AdminContext, member: string): Promise<Response> {
  try {
    return c.json(await context.cluster.operations.setPrimary(member));
  } catch (error) {
    if (!isConclaveError(error) || error.code !== "CONCLAVE_NOT_PRIMARY") throw failure(context, error);
    await run(context, async () => context.cluster.operations.precheckTransfer(member));
    return passToPrimary(c, context, member);
  }
}

/** Sends set-primary to the primary's HTTP API (its address from the member list). */
async function passToPrimary(c: Context, context: AdminContext, member: string): Promise<Response> {
  // Right after an election the new primary's row may lack its address for a moment.
  let primary: { name: string; httpUrl: string | null } | undefined;
  for (let attempt = 0; attempt < 30; attempt++) {
    const status = context.cluster.status();
    primary = status.members.find((row) => row.name === status.primary && !row.self);
    if (primary?.httpUrl != null) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (primary?.httpUrl == null) {
    throw new HttpFailure(
      503,
      "CONCLAVE_NOT_PRIMARY",
      "no primary is known, or its HTTP address is not; try again in a moment",
    );
  }
  const headers: Record<string, string> = { "content-type": "application/json" };
  const authorization = c.req.header("authorization");
  if (authorization !== undefined) headers.authorization = authorization;
  try {
    const response = await fetch(`${primary.httpUrl}/v1/cluster/set-primary`, {
      method: "POST",
      headers,
      body: JSON.stringify({ member }),
      signal: AbortSignal.timeout(20_000),
    });
    return c.json((await response.json()) as object, response.status as 200);
  } catch (error) {
    throw new HttpFailure(
      502,
      "CONCLAVE_PRIMARY_UNREACHABLE",
      `the primary ${primary.name} (${primary.httpUrl}) did not answer: ${String(error)}`,
    );
  }
}

async function run<T>(context: AdminContext, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw failure(context, error);
  }
}

function failure(context: AdminContext, error: unknown): HttpFailure {
  if (isConclaveError(error) && statusByCode[error.code] !== undefined) {
    return new HttpFailure(statusByCode[error.code] as number, error.code, error.message);
  }
  return runtimeFailure(context, error);
}

async function objectBody(c: Context): Promise<Record<string, unknown>> {
  if ((c.req.header("content-length") ?? "0") === "0" && c.req.raw.body === null) return {};
  const body = await readJsonBody(honoRequest(c), bodyBytesMax, "cluster commands");
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpFailure(400, "CONCLAVE_BAD_REQUEST", "the body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

function stringField(body: Record<string, unknown>, name: string, what: string): string {
  const value = body[name];
  if (typeof value !== "string" || value.length === 0 || value.length > 400) {
    throw new HttpFailure(400, "CONCLAVE_BAD_REQUEST", `"${name}" is required: ${what}`);
  }
  return value;
}

function flag(body: Record<string, unknown>, name: string): boolean {
  const value = body[name] ?? false;
  if (typeof value !== "boolean")
    throw new HttpFailure(400, "CONCLAVE_BAD_REQUEST", `"${name}" must be true or false`);
  return value;
}
