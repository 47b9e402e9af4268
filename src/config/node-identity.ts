/**
 * A node's identity, kept in its data directory as `identity.json`: its name, a permanent node
 * id generated at first start, the cluster id once known, when it was created, and the file's
 * format version.
 *
 * The node id, not the address, is what the cluster knows a node by, so that a node can move to
 * a new address and stay the same node. The short name (the part of `name@host` before `@`) is
 * fixed: a start under another short name is refused, because it almost always means a wrong
 * data directory or a wrong config file, and running on would make one node impersonate another.
 * A start under the same short name on another host is accepted and recorded (a re-addressed
 * node); the caller is told the previous name so it can announce the new address. A standalone
 * node started without a name (`nodeName: null`) takes a name at its first named start — the
 * caller first moves its stored Raft membership to the new id (src/adapters/storage/
 * adopt-standalone.ts), so that the name is recorded only once the data is ready for it — and a
 * named node is never started without a name again ({@link refuseUnnamingNamedNode}).
 *
 * Writes are atomic and durable: a temporary file is written, fsynced, then linked (first start,
 * so two racing first starts cannot both win) or renamed (updates) into place, and the directory
 * is fsynced. The file has mode 0600 and the data directory is created with mode 0700.
 */
import { randomBytes } from "node:crypto";
import { link, mkdir, open, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { ConclaveError } from "../lib/errors.ts";
import { parseNodeName } from "./node-name.ts";

/** The file name of a node's identity inside its data directory. */
export const identityFileName = "identity.json";
/** The format version this code writes and reads. */
export const identityFormatVersion = 1;
/** Largest identity file read. */
export const identityFileBytesMax = 64 * 1024;

/** What `identity.json` holds. */
export interface NodeIdentity {
  readonly formatVersion: 1;
  /** 16 random bytes in hex, generated at first start and never changed. */
  readonly nodeId: string;
  /** `name@host`, or `null` for a standalone node started without a name. */
  readonly nodeName: string | null;
  /** The cluster this node belongs to, once known. */
  readonly clusterId: string | null;
  /** ISO 8601 time of the first start. */
  readonly createdAt: string;
}

const clusterIdPattern = /^[A-Za-z0-9._-]{1,64}$/;

const identitySchema = z.strictObject({
  formatVersion: z.literal(identityFormatVersion),
  nodeId: z.string().regex(/^[0-9a-f]{32}$/, "must be 32 lowercase hex digits"),
  nodeName: z
    .string()
    .refine((name) => parseNodeName(name).ok, "is not a valid name@host")
    .nullable(),
  clusterId: z.string().regex(clusterIdPattern, "is not a valid cluster id").nullable(),
  createdAt: z.iso.datetime(),
});

/** The outcome of opening a node's identity at start. */
export interface OpenedIdentity {
  readonly identity: NodeIdentity;
  /** True on the first start in this data directory. */
  readonly created: boolean;
  /** The previously recorded name when the node now runs on another host under the same short name. */
  readonly previousNodeName: string | undefined;
}

function identityPath(dataDir: string): string {
  return join(dataDir, identityFileName);
}

function corrupt(file: string, why: string): ConclaveError {
  return new ConclaveError(
    "CONCLAVE_IDENTITY_CORRUPT",
    `The node identity file ${file} is damaged: ${why}. It holds this node's permanent id: restore it from a backup; or, only if this node's data is no longer needed, move the data directory away so that the node starts as a new node (it must then join its cluster as a new member).`,
    { file },
  );
}

/** Reads the identity of a data directory, or `undefined` when there is none yet. */
export async function readNodeIdentity(dataDir: string): Promise<NodeIdentity | undefined> {
  const file = identityPath(dataDir);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw corrupt(file, `it cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
  let text: string;
  try {
    const buffer = Buffer.alloc(identityFileBytesMax + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > identityFileBytesMax)
      throw corrupt(file, `it is larger than ${identityFileBytesMax} bytes`);
    text = buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await handle.close();
  }
  return parseIdentity(text, file);
}

function parseIdentity(text: string, file: string): NodeIdentity {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw corrupt(file, "it is not valid JSON");
  }
  const version = (json as { formatVersion?: unknown } | null)?.formatVersion;
  if (typeof version === "number" && version > identityFormatVersion) {
    throw new ConclaveError(
      "CONCLAVE_IDENTITY_CORRUPT",
      `The node identity file ${file} has format version ${version}, newer than this Conclave reads (${identityFormatVersion}). Run the newer Conclave version that wrote it.`,
      { file },
    );
  }
  const parsed = identitySchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? "" : `"${issue.path.join(".")}" `;
    throw corrupt(file, `${where}${issue?.message ?? "unexpected content"}`);
  }
  return parsed.data;
}

async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === "win32") return;
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `identity` durably. With `replace: false` the file must not exist yet: returns false,
 * writing nothing, when another process created it first.
 */
async function writeIdentity(dataDir: string, identity: NodeIdentity, replace: boolean): Promise<boolean> {
  const target = identityPath(dataDir);
  const temporary = join(dataDir, `${identityFileName}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const handle = await open(temporary, "wx", 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(`${JSON.stringify(identity, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  let written = true;
  try {
    if (replace) await rename(temporary, target);
    else await link(temporary, target);
  } catch (error) {
    if (replace || (error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    written = false;
  } finally {
    if (!replace) await unlink(temporary);
  }
  await syncDirectory(dataDir);
  return written;
}

async function ensureDataDir(dataDir: string): Promise<void> {
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    throw new ConclaveError(
      "CONCLAVE_DATA_DIR_UNUSABLE",
      `Cannot create the data directory ${dataDir} (${code}). Check node.data_dir and the permissions of its parent directory.`,
      { dataDir },
    );
  }
  if (!(await stat(dataDir)).isDirectory()) {
    throw new ConclaveError(
      "CONCLAVE_DATA_DIR_UNUSABLE",
      `The data directory ${dataDir} exists but is not a directory. Point node.data_dir at a directory.`,
      { dataDir },
    );
  }
}

function shortName(nodeName: string): string {
  const parsed = parseNodeName(nodeName);
  return parsed.ok ? parsed.value.name : nodeName;
}

function mismatch(dataDir: string, identity: NodeIdentity, nodeName: string): ConclaveError {
  const owner = identity.nodeName ?? "(unnamed)";
  return new ConclaveError(
    "CONCLAVE_IDENTITY_MISMATCH",
    `The data directory ${dataDir} belongs to node ${owner} (node id ${identity.nodeId}), but this node was started as ${nodeName}. Either start it with node.name = "${owner}", or give it another data directory (node.data_dir), or, only if the data in this directory is no longer needed, wipe it to make a new node (which must then join its cluster as a new member).`,
    { dataDir, recordedName: identity.nodeName, nodeId: identity.nodeId, givenName: nodeName },
  );
}

/**
 * Refuses a start without a name in a data directory whose node has one: the node would run
 * under the standalone Raft id, which is not a member of its stored cluster (it would wait as a
 * standby forever). A name, once taken, is kept; only its host part may change.
 *
 * @example
 * ```ts
 * refuseUnnamingNamedNode(dataDir, await readNodeIdentity(dataDir), config.node.name);
 * ```
 * @throws ConclaveError `CONCLAVE_IDENTITY_MISMATCH`
 */
export function refuseUnnamingNamedNode(
  dataDir: string,
  identity: NodeIdentity | undefined,
  nodeName: string | undefined,
): void {
  if (nodeName !== undefined || identity === undefined || identity.nodeName === null) return;
  throw new ConclaveError(
    "CONCLAVE_IDENTITY_MISMATCH",
    `The data directory ${dataDir} belongs to node ${identity.nodeName} (node id ${identity.nodeId}), but this node was started without a name (node.name is not set). A named node cannot become unnamed again: set node.name = "${identity.nodeName}" (its host part may change), or give this node another data directory (node.data_dir).`,
    { dataDir, recordedName: identity.nodeName, nodeId: identity.nodeId, givenName: null },
  );
}

/** Options of {@link openNodeIdentity}. */
export interface OpenIdentityOptions {
  readonly dataDir: string;
  /** The configured `node.name`; `undefined` for a standalone node without a name. */
  readonly nodeName: string | undefined;
  /** The clock, for `createdAt` (tests pass a fixed one). */
  readonly now?: () => Date;
}

/**
 * Opens the identity of a data directory at node start: creates it at first start (and the
 * directory, mode 0700), reads it afterwards, and refuses a start under another short name.
 *
 * @example
 * ```ts
 * const { identity } = await openNodeIdentity({ dataDir: config.node.dataDir, nodeName: config.node.name });
 * identity.nodeId; // "9f86d081884c7d659a2feaa0c55ad015"
 * ```
 * @throws ConclaveError `CONCLAVE_IDENTITY_MISMATCH`, `CONCLAVE_IDENTITY_CORRUPT`, `CONCLAVE_DATA_DIR_UNUSABLE`
 */
export async function openNodeIdentity(options: OpenIdentityOptions): Promise<OpenedIdentity> {
  const { dataDir, nodeName } = options;
  await ensureDataDir(dataDir);
  const existing = await readNodeIdentity(dataDir);
  if (existing === undefined) {
    const identity: NodeIdentity = {
      formatVersion: 1,
      nodeId: randomBytes(16).toString("hex"),
      nodeName: nodeName ?? null,
      clusterId: null,
      createdAt: (options.now?.() ?? new Date()).toISOString(),
    };
    if (await writeIdentity(dataDir, identity, false)) {
      return { identity, created: true, previousNodeName: undefined };
    }
    // Another process created it between our read and our link: judge its identity instead.
    const winner = await readNodeIdentity(dataDir);
    if (winner === undefined)
      throw corrupt(identityPath(dataDir), "it vanished while this node was starting");
    return judgeExisting(dataDir, winner, nodeName);
  }
  return judgeExisting(dataDir, existing, nodeName);
}

async function judgeExisting(
  dataDir: string,
  existing: NodeIdentity,
  nodeName: string | undefined,
): Promise<OpenedIdentity> {
  if (nodeName === undefined || existing.nodeName === nodeName) {
    return { identity: existing, created: false, previousNodeName: undefined };
  }
  if (existing.nodeName !== null && shortName(existing.nodeName) !== shortName(nodeName)) {
    throw mismatch(dataDir, existing, nodeName);
  }
  const renamed: NodeIdentity = { ...existing, nodeName };
  await writeIdentity(dataDir, renamed, true);
  return { identity: renamed, created: false, previousNodeName: existing.nodeName ?? undefined };
}

/**
 * Records the cluster this node belongs to, once known (at bootstrap or join). Recording the
 * same id again is a no-op; a different one is refused with `CONCLAVE_CLUSTER_MISMATCH`.
 */
export async function recordClusterId(dataDir: string, clusterId: string): Promise<NodeIdentity> {
  if (!clusterIdPattern.test(clusterId)) {
    throw new ConclaveError(
      "CONCLAVE_CONFIG_INVALID",
      `"${clusterId}" is not a valid cluster id: use 1 to 64 letters, digits, '.', '_' or '-'.`,
    );
  }
  const file = identityPath(dataDir);
  const identity = await readNodeIdentity(dataDir);
  if (identity === undefined) throw corrupt(file, "it is missing (it is written at the node's first start)");
  if (identity.clusterId === clusterId) return identity;
  if (identity.clusterId !== null) {
    throw new ConclaveError(
      "CONCLAVE_CLUSTER_MISMATCH",
      `The data directory ${dataDir} belongs to cluster ${identity.clusterId}, not ${clusterId}. A node belongs to one cluster: use another data directory for the new cluster, or remove this node from its cluster and wipe this directory first.`,
      { dataDir, recordedClusterId: identity.clusterId, givenClusterId: clusterId },
    );
  }
  const updated: NodeIdentity = { ...identity, clusterId };
  await writeIdentity(dataDir, updated, true);
  return updated;
}
