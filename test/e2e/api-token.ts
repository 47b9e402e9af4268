/**
 * The API token of test clusters. Every node a test starts is given the same token file (the
 * operator's way to choose the token up front), so tests can call `/v1/*` routes on any member
 * at once; the token's own rules (generated file, 401s, replication to joiners) have their own
 * tests in test/admin/api-token.test.ts.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

/** This test process's API token. */
export const testApiToken = `test_${randomBytes(24).toString("base64url")}`;

/** Writes the token file into `directory` (mode 0600) and returns its path. */
export function writeTestTokenFile(directory: string): string {
  const path = join(directory, "api-token");
  writeFileSync(path, `${testApiToken}\n`, { mode: 0o600 });
  return path;
}

/** `fetch` with `Authorization: Bearer <test token>` unless the caller set one. */
export function authorizedFetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has("authorization")) headers.set("authorization", `Bearer ${testApiToken}`);
  return fetch(input, { ...init, headers });
}
