/**
 * `GET /v1/debug/db-hash` → `{ sha256, appliedIndex }`: the SHA-256 of a compact copy of this
 * member's database (`VACUUM INTO`, with the header fixed as for snapshots). Members at the same
 * applied index must answer the same hash; tests use it to prove the replicas are byte-identical.
 * It copies the whole database (and blocks applies while `VACUUM INTO` runs), so one runs at a
 * time; a second concurrent request gets 503.
 */
import type { RouteModule } from "./admin-context.ts";
import { HttpFailure } from "./http-failure.ts";

export const registerDebugRoutes: RouteModule = (app, context) => {
  let running = false;
  app.get("/v1/debug/db-hash", async (c) => {
    if (running)
      throw new HttpFailure(503, "CONCLAVE_BUSY", "a database hash is being computed already; retry shortly");
    running = true;
    try {
      return c.json(await context.database.contentHash());
    } finally {
      running = false;
    }
  });
};
