/**
 * Log commands that change the cluster's own metadata (`kind: "cluster"`): the member list with
 * each member's addresses and preferences, the tombstones of force-removed members, the
 * cluster-wide settings, and the API token's hash. They are replicated like any other command so
 * that every member shows the same list in the same order and agrees on the settings; they are
 * never accepted from the HTTP data API (src/admin proposes them only from operator routes and
 * the node's own tasks).
 *
 * @example
 * ```ts
 * encodeCommand({ kind: "cluster", op: "member-leave", raftId: "n3", force: false });
 * ```
 */
import { z } from "zod";

/** Longest URL or host name stored for a member. */
export const memberTextCharsMax = 300;
/** Longest recovery message. */
export const recoveryMessageCharsMax = 2000;

const raftIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, "is not a valid member name");
const nodeIdSchema = z.string().regex(/^[0-9a-f]{32}$/, "must be 32 lowercase hex digits");

/** A member as the cluster records it. */
export const memberRecordSchema = z.object({
  raftId: raftIdSchema,
  nodeId: nodeIdSchema,
  /** `name@host`: the name the transport authenticates. */
  nodeName: z.string().min(3).max(memberTextCharsMax),
  clusterHost: z.string().min(1).max(memberTextCharsMax),
  clusterPort: z.number().int().min(1).max(65535),
  /** Where this member's HTTP API answers (`http://host:port`), or null when unknown. */
  httpUrl: z.string().max(memberTextCharsMax).nullable(),
  role: z.enum(["voter", "standby"]),
  neverPrimary: z.boolean(),
  priority: z.number().int().min(0).max(100),
  segment: z.number().int().min(1).max(9),
  /** Position in a configured static member list (0-based); joiners go after, in join order. */
  configuredPosition: z.number().int().min(0).max(1000).nullable(),
});

/** Settings every member must agree on. */
export const clusterSettingsSchema = z.object({
  syncTimeoutMs: z.number().int().min(100).max(600_000).optional(),
  recoveryMessage: z.string().max(recoveryMessageCharsMax).optional(),
});

export const clusterOperationSchema = z.discriminatedUnion("op", [
  /** A node asks to join: recorded as JOINING; the primary adds it to the Raft membership. */
  z.object({ op: z.literal("member-join"), member: memberRecordSchema }),
  /** A member (re)states its own addresses and preferences. */
  z.object({ op: z.literal("member-announce"), member: memberRecordSchema }),
  /** The primary marks a joiner as fully joined (voter, or caught-up standby). */
  z.object({ op: z.literal("member-active"), raftId: raftIdSchema }),
  /** A member is to leave (or, `force`, to be removed while down); the primary carries it out. */
  z.object({ op: z.literal("member-leave"), raftId: raftIdSchema, force: z.boolean() }),
  /** The member is out of the Raft membership: its row goes; a forced removal leaves a tombstone. */
  z.object({ op: z.literal("member-remove"), raftId: raftIdSchema }),
  z.object({ op: z.literal("settings-set"), settings: clusterSettingsSchema }),
  /** SHA-256 (hex) of the API token, and the token sealed with a key derived from the cookie. */
  z.object({
    op: z.literal("token-set"),
    tokenSha256: z.string().regex(/^[0-9a-f]{64}$/),
    sealed: z.instanceof(Uint8Array).nullable(),
  }),
]);

export const clusterCommandSchema = z.intersection(
  z.object({ kind: z.literal("cluster") }),
  clusterOperationSchema,
);

/** A member record (see {@link memberRecordSchema}). */
export type MemberRecord = z.infer<typeof memberRecordSchema>;
/** Cluster settings (see {@link clusterSettingsSchema}). */
export type ClusterSettingsUpdate = z.infer<typeof clusterSettingsSchema>;
/** One cluster metadata operation. */
export type ClusterOperation = z.infer<typeof clusterOperationSchema>;
/** A cluster metadata command. */
export type ClusterCommand = { readonly kind: "cluster" } & ClusterOperation;
