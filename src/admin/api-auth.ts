/**
 * Every `/v1/*` route needs the cluster's API token (`Authorization: Bearer <token>`); health
 * routes (`/health/*`) do not, since load balancers call them. A missing or wrong token is a 401
 * that says where the token is, never which part was wrong.
 */
import type { MiddlewareHandler } from "hono";
import type { AdminContext } from "./admin-context.ts";

const bearerPattern = /^Bearer ([\x21-\x7e]{1,256})$/;

/** The header a 401 carries (RFC 6750). */
export const unauthorizedHeader = { name: "WWW-Authenticate", value: 'Bearer realm="conclave"' } as const;

/** The 401 body for a request with this `Authorization` header, or null when its token is right. */
export function tokenRefusal(
  context: AdminContext,
  header: string | undefined,
): { readonly error: string; readonly code: "CONCLAVE_UNAUTHORIZED" } | null {
  const presented = header === undefined ? undefined : bearerPattern.exec(header)?.[1];
  if (context.apiToken.check(presented)) return null;
  const error =
    header === undefined
      ? "this API needs the cluster's token: send Authorization: Bearer <token> (the token is in the token file of any member, <data_dir>/admin-token by default)"
      : "the token was refused: it is not this cluster's API token (see <data_dir>/admin-token on any member)";
  return { error, code: "CONCLAVE_UNAUTHORIZED" };
}

/** The middleware for `/v1/*` on Hono (the plain router checks the same, plain-router.ts). */
export function requireApiToken(context: AdminContext): MiddlewareHandler {
  return async (c, next) => {
    const refusal = tokenRefusal(context, c.req.header("authorization"));
    if (refusal === null) return next();
    c.header(unauthorizedHeader.name, unauthorizedHeader.value);
    return c.json(refusal, 401);
  };
}
