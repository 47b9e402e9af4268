/**
 * Status (health endpoints: health-routes.ts):
 * - `GET /v1/status` → the node's status (name, id, state, role, term, leader, commit, applied,
 *   lastIndex, membership). `conclave dev` and the tests read it.
 */
import type { RouteModule } from "./admin-context.ts";

export const registerStatusRoutes: RouteModule = (app, context) => {
  app.get("/v1/status", (c) => c.json({ ...context.node.status() }));
};
