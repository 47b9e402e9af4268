/**
 * Every `/v1/*` route needs the cluster's API token (`Authorization: Bearer <token>`); health
 * routes (`/health/*`) do not, since load balancers call them. A missing or wrong token is a 401
 * that says where the token is, never which part was wrong.
 */
import type { MiddlewareHandler } from "hono";
import type { AdminContext } from "./admin-context.ts";

const bearerPattern = /^Bearer ([\x21-\x7e]{1,256})$/;

/** The middleware for `/v1/*`. */
export function requireApiToken(context: AdminContext): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header("authorization");
    const presented = header === undefined ? undefined : bearerPattern.exec(header)?.[1];
    if (context.apiToken.check(presented)) return next();
    c.header("WWW-Authenticate", 'Bearer realm="conclave"');
    const message =
      header === undefined
        ? "this API needs the cluster's token: send Authorization: Bearer <token> (the token is in the token file of any member, <data_dir>/admin-token by default)"
        : "the token was refused: it is not this cluster's API token (see <data_dir>/admin-token on any member)";
    return c.json({ error: message, code: "CONCLAVE_UNAUTHORIZED" }, 401);
  };
}
