/**
 * Lease routes. Lease times are the primary's wall clock carried in the commands, and leases
 * expire only through `lease-expire` entries the primary proposes (src/cluster/lease-expiry.ts),
 * so every member deletes the same keys at the same index.
 * - `POST /v1/leases` `{ ttlMs }` → `{ leaseId, expiresAtMs, revision }`
 * - `POST /v1/leases/:id/keepalive` → `{ leaseId, expiresAtMs }` (404 when expired or unknown)
 * - `DELETE /v1/leases/:id` → `{ deletedKeys, revision }` (its keys are deleted)
 * Each may carry an `Idempotency-Key` (database-writes.ts): a retried grant gets the lease it
 * already granted instead of a second one.
 */
import type { Context } from "hono";
import { z } from "zod";
import type { RouteModule } from "./admin-context.ts";
import { proposeKv } from "./database-writes.ts";
import { HttpFailure } from "./http-failure.ts";
import { readJsonBody } from "./request-body.ts";
import { honoRequest } from "./route-request.ts";
import { parseBody } from "./sql-routes.ts";

const leaseBodyBytesMax = 4096;
const grantSchema = z.strictObject({ ttlMs: z.number().int().positive() });

function leaseIdOf(c: Context): number {
  const text = c.req.param("id") ?? "";
  if (!/^[1-9]\d{0,14}$/.test(text)) {
    throw new HttpFailure(
      400,
      "CONCLAVE_BAD_REQUEST",
      `a lease id is a positive integer, not ${JSON.stringify(text)}`,
    );
  }
  return Number(text);
}

export const registerLeaseRoutes: RouteModule = (app, context) => {
  app.post("/v1/leases", async (c) => {
    const { ttlMs } = parseBody(
      grantSchema,
      await readJsonBody(honoRequest(c), leaseBodyBytesMax, "a lease request"),
      "lease",
    );
    // The key's request is what the client sent, not the primary's clock reading.
    const { result } = await proposeKv(
      context,
      { op: "lease-grant", ttlMs, nowMs: context.leaseClockMs() },
      { from: honoRequest(c), request: { op: "lease-grant", ttlMs } },
    );
    return c.json({ leaseId: result.leaseId, expiresAtMs: result.expiresAtMs, ttlMs });
  });

  app.post("/v1/leases/:id/keepalive", async (c) => {
    const leaseId = leaseIdOf(c);
    const { result } = await proposeKv(
      context,
      { op: "lease-keepalive", leaseId, nowMs: context.leaseClockMs() },
      { from: honoRequest(c), request: { op: "lease-keepalive", leaseId } },
    );
    return c.json({ leaseId, expiresAtMs: result.expiresAtMs });
  });

  app.delete("/v1/leases/:id", async (c) => {
    const leaseId = leaseIdOf(c);
    const { result } = await proposeKv(context, { op: "lease-revoke", leaseId }, { from: honoRequest(c) });
    return c.json({ leaseId, deletedKeys: result.deletedKeys, revision: result.revision });
  });
};
