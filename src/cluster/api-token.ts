/**
 * The HTTP API token: one per cluster, so the same token works on every member.
 *
 * - Each node has a token file (`http.token_file`, default `<data_dir>/admin-token`, mode 0600).
 *   At start, a missing file is filled with a fresh random token; a file the operator wrote is
 *   used as it is (so several nodes can be given the same token up front).
 * - The cluster's token is kept in the replicated settings as its SHA-256 and as a copy sealed
 *   with AES-256-GCM under a key derived from the cluster cookie (HKDF), so only members can
 *   read it. The first primary of a cluster without one proposes its own file's token; every
 *   member then writes the cluster's token into its file — a joiner takes the primary's token,
 *   as in the product docs where joiners take the primary's password.
 * - A request is checked against the cluster's hash (constant-time), or, before the node has a
 *   cluster token (a standby not yet joined), against its own file's token.
 *
 * @example
 * ```ts
 * const keeper = new ApiTokenKeeper({ path, cookie, runtime, metadata, encode, logger });
 * await keeper.load();   // reads or creates the token file
 * keeper.start();
 * keeper.check(request.headers.authorization?.slice(7)); // true / false
 * ```
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";
import { ConclaveError } from "../lib/errors.ts";
import type { ClusterCommand, ClusterMetadata } from "../ports/cluster-metadata.ts";
import type { Logger } from "../ports/logger.ts";
import type { RaftRuntime } from "../runtime/raft-runtime.ts";

/** Longest token accepted (in a file or a header). */
export const tokenCharsMax = 256;
const tokenPattern = /^[\x21-\x7e]{16,256}$/;

/** A fresh token: 32 random bytes, base64url, with a recognisable prefix. */
export function generateToken(): string {
  return `cnc_${randomBytes(32).toString("base64url")}`;
}

export function tokenSha256(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

function sealingKey(cookie: string): Buffer {
  return Buffer.from(
    hkdfSync("sha256", Buffer.from(cookie, "utf8"), Buffer.alloc(0), "conclave api token v1", 32),
  );
}

/** The token sealed under the cookie: nonce (12) ‖ tag (16) ‖ ciphertext. */
export function sealToken(token: string, cookie: string): Uint8Array {
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", sealingKey(cookie), nonce);
  const body = Buffer.concat([cipher.update(token, "utf8"), cipher.final()]);
  return new Uint8Array(Buffer.concat([nonce, cipher.getAuthTag(), body]));
}

/** The sealed token, or null when it does not open with this cookie. */
export function unsealToken(sealed: Uint8Array, cookie: string): string | null {
  if (sealed.byteLength < 28 || sealed.byteLength > 28 + tokenCharsMax) return null;
  try {
    const bytes = Buffer.from(sealed);
    const decipher = createDecipheriv("aes-256-gcm", sealingKey(cookie), bytes.subarray(0, 12));
    decipher.setAuthTag(bytes.subarray(12, 28));
    return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString("utf8");
  } catch {
    return null;
  }
}

export interface ApiTokenKeeperOptions {
  readonly path: string;
  /** The cluster cookie; undefined in standalone mode (nothing to share the token with). */
  readonly cookie: string | undefined;
  readonly runtime: Pick<RaftRuntime, "status" | "running" | "propose">;
  readonly metadata: ClusterMetadata;
  readonly encode: (command: ClusterCommand) => Uint8Array;
  readonly logger: Logger;
}

const checkIntervalMs = 1000;

/** Keeps the token file and the replicated token in step. See the module comment. */
export class ApiTokenKeeper {
  readonly #options: ApiTokenKeeperOptions;
  #localToken: string | null = null;
  /** The last token that checked out, with the hash it matched (see check). */
  #verified: { readonly sha256: string; readonly token: Buffer } | null = null;
  #timer: NodeJS.Timeout | null = null;
  #busy = false;

  constructor(options: ApiTokenKeeperOptions) {
    this.#options = options;
  }

  /** Reads the token file, creating it with a fresh token when missing. */
  async load(): Promise<void> {
    const { path, logger } = this.#options;
    const existing = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return null;
      throw new ConclaveError(
        "CONCLAVE_TOKEN_FILE",
        `cannot read the API token file ${path}: ${error.code ?? String(error)}`,
      );
    });
    if (existing !== null) {
      const token = existing.trim();
      if (!tokenPattern.test(token)) {
        throw new ConclaveError(
          "CONCLAVE_TOKEN_FILE",
          `the API token file ${path} must hold one token of 16 to 256 visible ASCII characters; fix it, or delete it to have a new token generated`,
        );
      }
      this.#localToken = token;
      return;
    }
    this.#localToken = generateToken();
    await writeSecretFile(path, this.#localToken);
    logger.info(
      { tokenFile: path },
      "generated an API token (owner-only file); clients send it as Authorization: Bearer <token>",
    );
  }

  start(): void {
    this.#timer ??= setInterval(() => this.sync(), checkIntervalMs);
    this.#timer.unref();
    this.sync();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** True when `presented` is the cluster's token (or, before there is one, this node's). */
  check(presented: string | undefined): boolean {
    if (presented === undefined || presented.length > tokenCharsMax) return false;
    const expected =
      this.#options.metadata.settings().tokenSha256 ??
      (this.#localToken === null ? null : tokenSha256(this.#localToken));
    if (expected === null) return false;
    // Every request carries the token: once one hashed to the expected value, later ones are
    // compared with it directly (still in constant time), which skips a SHA-256 per request.
    const verified = this.#verified;
    if (verified !== null && verified.sha256 === expected) {
      const bytes = Buffer.from(presented, "utf8");
      return bytes.length === verified.token.length && timingSafeEqual(bytes, verified.token);
    }
    const ok = timingSafeEqual(Buffer.from(tokenSha256(presented), "hex"), Buffer.from(expected, "hex"));
    if (ok) this.#verified = { sha256: expected, token: Buffer.from(presented, "utf8") };
    return ok;
  }

  /** Proposes this node's token when the cluster has none (primary), or writes the cluster's into the file. */
  sync(): void {
    if (this.#busy || !this.#options.runtime.running) return;
    const settings = this.#options.metadata.settings();
    this.#busy = true;
    const step =
      settings.tokenSha256 === null
        ? this.#proposeOwn()
        : this.#adoptClusterToken(settings.tokenSha256, settings.tokenSealed);
    step
      .catch((error: unknown) =>
        this.#options.logger.warn({ error: String(error) }, "could not sync the API token; retrying"),
      )
      .finally(() => {
        this.#busy = false;
      });
  }

  async #proposeOwn(): Promise<void> {
    const { runtime, cookie, encode } = this.#options;
    const token = this.#localToken;
    if (token === null || runtime.status().role !== "leader") return;
    const command: ClusterCommand = {
      kind: "cluster",
      op: "token-set",
      tokenSha256: tokenSha256(token),
      sealed: cookie === undefined ? null : sealToken(token, cookie),
    };
    await runtime.propose(encode(command), { timeoutMs: 5000 });
  }

  async #adoptClusterToken(hash: string, sealed: Uint8Array | null): Promise<void> {
    if (this.#localToken !== null && tokenSha256(this.#localToken) === hash) return;
    const { cookie, path, logger } = this.#options;
    const token = sealed === null || cookie === undefined ? null : unsealToken(sealed, cookie);
    if (token === null || tokenSha256(token) !== hash) return; // cannot open it: keep checking against the hash
    await writeSecretFile(path, token);
    this.#localToken = token;
    logger.info({ tokenFile: path }, "wrote the cluster's API token into the token file");
  }
}

/** Writes `text` to `path` with mode 0600 through a temporary file and a rename. */
async function writeSecretFile(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.tmp`;
  const handle = await open(temporary, "w", 0o600);
  try {
    await handle.writeFile(`${text}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
}
