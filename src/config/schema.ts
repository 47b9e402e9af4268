/**
 * The node configuration: what an operator writes (snake_case TOML keys, `CONCLAVE_*`
 * variables) and what the code reads (the camelCase {@link NodeConfig}).
 *
 * The file shape is declared once, key by key, with zod; each key carries a short help text
 * (what it expects, an example) that error messages and the docs test use. Each section's
 * schema maps its snake_case keys to camelCase fields, so `cluster.sync_timeout_ms` in the file
 * is `config.cluster.syncTimeoutMs` in code: one mechanical rule, no exceptions. Unknown keys
 * are errors (strict objects): they are nearly always typos.
 */
import { z } from "zod";
import { checkCookie, cookieLengthMax } from "./cookie.ts";
import type { ClusterMember, LogSettings, NodeConfig, NodeSettings, TlsSettings } from "./node-config.ts";
import {
  formatNodeName,
  type MemberAddress,
  memberAddressLengthMax,
  parseHost,
  parseMemberAddress,
  parseNodeName,
} from "./node-name.ts";

/** What a key expects and an example value, in TOML syntax; shown in errors and docs. */
export interface SettingHelp {
  readonly expects: string;
  readonly example: string;
}

const settingHelp = new WeakMap<z.ZodType, SettingHelp>();

function setting<T extends z.ZodType>(schema: T, expects: string, example: string): T {
  settingHelp.set(schema, { expects, example });
  return schema;
}

/** Longest path accepted in any path setting. */
export const pathLengthMax = 4096;
/** Most entries in `cluster.members`. */
export const membersCountMax = 64;
/** Largest `port_offset`. */
export const portOffsetMax = 10_000;

const nodeNameText = z
  .string()
  .max(memberAddressLengthMax)
  .transform((text, ctx) => {
    const parsed = parseNodeName(text);
    if (parsed.ok) return formatNodeName(parsed.value);
    ctx.issues.push({ code: "custom", message: parsed.message, input: text });
    return z.NEVER;
  });

const memberText = z
  .string()
  .max(memberAddressLengthMax)
  .transform((text, ctx): MemberAddress => {
    const parsed = parseMemberAddress(text);
    if (parsed.ok) return parsed.value;
    ctx.issues.push({ code: "custom", message: parsed.message, input: text });
    return z.NEVER;
  });

const bindAddress = z
  .string()
  .max(253)
  .refine((text) => parseHost(text).ok, {
    message: 'not an IP address or host name; use e.g. "0.0.0.0" (every interface), "127.0.0.1" or "::"',
  });

const path = z.string().min(1).max(pathLengthMax);
const port = z.int().min(1).max(65535);
const portExpects = "a port number from 1 to 65535";

/** `node` section: who this node is. */
export const nodeSectionShape = {
  name: setting(nodeNameText.optional(), "a node name name@host (required in cluster mode)", '"n1@10.0.0.5"'),
  data_dir: setting(path.default("./data"), "a directory path", '"/var/lib/conclave"'),
  role: setting(z.enum(["voter", "standby"]).default("voter"), '"voter" or "standby"', '"voter"'),
  never_primary: setting(z.boolean().default(false), "true or false", "false"),
  primary_priority: setting(z.int().min(0).max(100).default(0), "a whole number from 0 to 100", "50"),
  segment: setting(z.int().min(1).max(9).default(1), "a whole number from 1 to 9", "1"),
  cpu_scheduling: setting(
    z.enum(["batch", "inherit"]).default("batch"),
    '"batch" (Linux SCHED_BATCH for `conclave start`) or "inherit" (the policy it was started with)',
    '"batch"',
  ),
};

/** `cluster` section: the cluster this node belongs to. */
export const clusterSectionShape = {
  mode: setting(
    z.enum(["standalone", "cluster"]).default("cluster"),
    '"standalone" or "cluster"',
    '"cluster"',
  ),
  id: setting(
    z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, "a cluster id is 1 to 64 letters, digits, '.', '_' or '-'")
      .optional(),
    "1 to 64 letters, digits, '.', '_' or '-'",
    '"prod-eu-1"',
  ),
  cookie: setting(
    z.string().max(cookieLengthMax).optional(),
    "the cluster secret (run `conclave cookie`)",
    '"…"',
  ),
  cookie_file: setting(
    path.optional(),
    "the path of a file (mode 600) holding the cookie",
    '"/etc/conclave/cookie"',
  ),
  members: setting(
    z.array(memberText).max(membersCountMax).default([]),
    `a list of up to ${membersCountMax} "name@host" or "name@host:port" entries`,
    '["n1@10.0.0.5", "n2@10.0.0.6", "n3@10.0.0.7"]',
  ),
  bootstrap: setting(z.boolean().default(false), "true or false", "false"),
  port: setting(port.default(4370), portExpects, "4370"),
  bind: setting(bindAddress.default("0.0.0.0"), "an IP address or host name to listen on", '"0.0.0.0"'),
  timing: setting(z.enum(["lan", "wan"]).default("lan"), '"lan" or "wan"', '"lan"'),
  sync_timeout_ms: setting(
    z.int().min(100).max(600_000).default(15_000),
    "milliseconds from 100 to 600000",
    "15000",
  ),
  snapshot_every_entries: setting(
    z.int().min(64).max(1_000_000).default(8192),
    "a whole number of log entries from 64 to 1000000",
    "8192",
  ),
  snapshot_every_mib: setting(
    z.int().min(1).max(4096).default(64),
    "a whole number of MiB from 1 to 4096",
    "64",
  ),
  apply_commit_interval_ms: setting(
    z.int().min(0).max(1000).default(100),
    "milliseconds from 0 to 1000 (0: commit after every batch)",
    "100",
  ),
  group_commit_ms: setting(
    z.int().min(0).max(10).default(0),
    "milliseconds from 0 to 10 (0: never wait)",
    "0",
  ),
  commit_wait_ms: setting(
    z.int().min(0).max(10).default(1),
    "milliseconds from 0 to 10 (0: never wait)",
    "1",
  ),
};

/** `http` section: the HTTP API and health endpoints. */
export const httpSectionShape = {
  port: setting(port.default(4380), portExpects, "4380"),
  bind: setting(bindAddress.default("127.0.0.1"), "an IP address or host name to listen on", '"127.0.0.1"'),
  token_file: setting(path.optional(), "the path of a file holding the API token", '"/etc/conclave/token"'),
};

/** `tls` section: TLS for the cluster port (and HTTP when enabled). */
export const tlsSectionShape = {
  enabled: setting(z.boolean().default(false), "true or false", "true"),
  cert: setting(path.optional(), "the path of a PEM certificate", '"/etc/conclave/node.crt"'),
  key: setting(path.optional(), "the path of a PEM private key", '"/etc/conclave/node.key"'),
  ca: setting(path.optional(), "the path of a PEM CA bundle", '"/etc/conclave/ca.crt"'),
  require_client_cert: setting(z.boolean().default(false), "true or false", "true"),
};

/** `log` section. */
export const logSectionShape = {
  level: setting(
    z.enum(["trace", "debug", "info", "warn", "error"]).default("info"),
    '"trace", "debug", "info", "warn" or "error"',
    '"info"',
  ),
  slow_request_ms: setting(
    z.int().min(0).max(3_600_000).default(1000),
    "a whole number of milliseconds from 0 (every request) to 3600000",
    "1000",
  ),
  slow_request_logs_per_second: setting(
    z.int().min(1).max(100_000).default(10),
    "a whole number from 1 to 100000",
    "10",
  ),
};

/** Keys outside any section. */
export const topLevelShape = {
  port_offset: setting(
    z.int().min(0).max(portOffsetMax).default(0),
    `a whole number from 0 to ${portOffsetMax}, added to both ports`,
    "0",
  ),
};

/** Every section and its keys, in documentation order. */
export const configSectionShapes = {
  node: nodeSectionShape,
  cluster: clusterSectionShape,
  http: httpSectionShape,
  tls: tlsSectionShape,
  log: logSectionShape,
} as const;

/** The name of a configuration section. */
export type ConfigSectionName = keyof typeof configSectionShapes;

const nodeSection = z.strictObject(nodeSectionShape).transform(
  (s): NodeSettings => ({
    name: s.name,
    dataDir: s.data_dir,
    role: s.role,
    neverPrimary: s.never_primary,
    primaryPriority: s.primary_priority,
    segment: s.segment,
    cpuScheduling: s.cpu_scheduling,
  }),
);

const clusterSection = z.strictObject(clusterSectionShape).transform((s) => ({
  mode: s.mode,
  id: s.id,
  cookie: s.cookie,
  cookieFile: s.cookie_file,
  members: s.members,
  bootstrap: s.bootstrap,
  port: s.port,
  bind: s.bind,
  timing: s.timing,
  syncTimeoutMs: s.sync_timeout_ms,
  snapshotEveryEntries: s.snapshot_every_entries,
  snapshotEveryBytes: s.snapshot_every_mib * 1024 * 1024,
  applyCommitIntervalMs: s.apply_commit_interval_ms,
  groupCommitMs: s.group_commit_ms,
  commitWaitMs: s.commit_wait_ms,
}));

const httpSection = z
  .strictObject(httpSectionShape)
  .transform((s) => ({ port: s.port, bind: s.bind, tokenFile: s.token_file }));

const tlsSection = z.strictObject(tlsSectionShape).transform(
  (s): TlsSettings => ({
    enabled: s.enabled,
    cert: s.cert,
    key: s.key,
    ca: s.ca,
    requireClientCert: s.require_client_cert,
  }),
);

const logSection = z.strictObject(logSectionShape).transform(
  (s): LogSettings => ({
    level: s.level,
    slowRequestMs: s.slow_request_ms,
    slowRequestLogsPerSecond: s.slow_request_logs_per_second,
  }),
);

const fileShape = z.strictObject({
  node: nodeSection.prefault({}),
  cluster: clusterSection.prefault({}),
  http: httpSection.prefault({}),
  tls: tlsSection.prefault({}),
  log: logSection.prefault({}),
  ...topLevelShape,
});

type ParsedFile = z.output<typeof fileShape>;

interface IssueSink {
  addIssue(issue: { code: "custom"; path: PropertyKey[]; message: string; input: unknown }): void;
}

function report(ctx: IssueSink, path: PropertyKey[], input: unknown, message: string): void {
  ctx.addIssue({ code: "custom", path, message, input });
}

function checkClusterMode(file: ParsedFile, ctx: IssueSink): void {
  const { cluster, node } = file;
  if (cluster.cookie !== undefined && cluster.cookieFile !== undefined) {
    report(
      ctx,
      ["cluster", "cookie"],
      "(set)",
      "both cluster.cookie and cluster.cookie_file are set; keep only one",
    );
  }
  if (cluster.mode !== "cluster") return;
  if (node.name === undefined) {
    report(
      ctx,
      ["node", "name"],
      undefined,
      'node.name is required in cluster mode. Set it, e.g. name = "n1@10.0.0.5" under [node] or CONCLAVE_NODE__NAME=n1@10.0.0.5, or set cluster.mode = "standalone"',
    );
  }
  if (cluster.cookieFile === undefined) {
    const cookie = checkCookie(cluster.cookie);
    if (!cookie.ok) report(ctx, ["cluster", "cookie"], cluster.cookie, cookie.message);
  }
}

function checkPorts(file: ParsedFile, ctx: IssueSink): void {
  const offset = file.port_offset;
  for (const [section, port] of [
    ["cluster", file.cluster.port],
    ["http", file.http.port],
  ] as const) {
    if (port + offset > 65535) {
      report(
        ctx,
        ["port_offset"],
        offset,
        `${section}.port ${port} + port_offset ${offset} = ${port + offset} is above 65535; lower port_offset or ${section}.port`,
      );
    }
  }
  if (file.cluster.port === file.http.port) {
    report(
      ctx,
      ["http", "port"],
      file.http.port,
      `http.port and cluster.port are both ${file.http.port}; give them different ports (defaults: 4380 and 4370)`,
    );
  }
}

function checkMembersAndTls(file: ParsedFile, ctx: IssueSink): void {
  const seen = new Map<string, number>();
  file.cluster.members.forEach((member, index) => {
    const first = seen.get(member.name);
    if (first !== undefined) {
      report(
        ctx,
        ["cluster", "members", index],
        formatNodeName(member),
        `the name "${member.name}" is already used by entry ${first + 1}; every member needs its own name`,
      );
    } else {
      seen.set(member.name, index);
    }
  });
  const { tls } = file;
  if (tls.enabled && (tls.cert === undefined || tls.key === undefined)) {
    report(
      ctx,
      ["tls", "enabled"],
      true,
      "TLS is enabled but tls.cert or tls.key is missing; set both paths",
    );
  }
  if (tls.requireClientCert && tls.ca === undefined) {
    report(
      ctx,
      ["tls", "require_client_cert"],
      true,
      "mutual TLS needs tls.ca, the CA that signed the peers' certificates; set tls.ca",
    );
  }
}

function finish(file: ParsedFile): NodeConfig {
  const offset = file.port_offset;
  const clusterPort = file.cluster.port + offset;
  const members = file.cluster.members.map(
    (member): ClusterMember => ({
      ...member,
      port: member.port ?? clusterPort,
      nodeName: formatNodeName(member),
    }),
  );
  return {
    node: file.node,
    cluster: { ...file.cluster, port: clusterPort, members },
    http: { ...file.http, port: file.http.port + offset },
    tls: file.tls,
    log: file.log,
    portOffset: offset,
  };
}

/**
 * The whole configuration: parses a snake_case object (as read from TOML, with overrides
 * merged) into a {@link NodeConfig}. Cross-key rules (name and cookie in cluster mode, port
 * ranges after the offset, unique member names, TLS files) run once every key is valid.
 *
 * @example configSchema.parse({ cluster: { mode: "standalone" } }).http.port // 4380
 */
export const configSchema = fileShape
  .superRefine((file, ctx) => {
    checkClusterMode(file, ctx);
    checkPorts(file, ctx);
    checkMembersAndTls(file, ctx);
  })
  .transform(finish);

/** One key of the configuration, for docs, errors and environment variables. */
export interface SettingKey {
  /** `null` for a top-level key. */
  readonly section: ConfigSectionName | null;
  readonly key: string;
  /** `cluster.sync_timeout_ms`, or `port_offset`. */
  readonly path: string;
  /** `CONCLAVE_CLUSTER__SYNC_TIMEOUT_MS`. */
  readonly envName: string;
  /** How an environment value is read for this key. */
  readonly kind: SettingKind;
  readonly help: SettingHelp;
}

/** How an environment value for a key is read: verbatim text, a TOML value, or a list. */
export type SettingKind = "string" | "number" | "boolean" | "array";

/** Unwraps optional/default/pipe wrappers to find what a key finally holds. */
function kindOf(schema: z.ZodType): SettingKind {
  let current: z.ZodType = schema;
  for (let depth = 0; depth < 8; depth++) {
    const def = current.def as { type: string; innerType?: z.ZodType; in?: z.ZodType };
    if (def.innerType !== undefined) current = def.innerType;
    else if (def.type === "pipe" && def.in !== undefined) current = def.in;
    else if (def.type === "number" || def.type === "boolean" || def.type === "array") return def.type;
    else return "string";
  }
  return "string";
}

/** The environment variable that overrides a key. */
export function envNameOf(section: string | null, key: string): string {
  return section === null
    ? `CONCLAVE_${key.toUpperCase()}`
    : `CONCLAVE_${section.toUpperCase()}__${key.toUpperCase()}`;
}

function describeKey(section: ConfigSectionName | null, key: string, schema: z.ZodType): SettingKey {
  const help = settingHelp.get(schema) ?? { expects: "a value", example: '""' };
  const path = section === null ? key : `${section}.${key}`;
  return { section, key, path, envName: envNameOf(section, key), kind: kindOf(schema), help };
}

/** Every key of the configuration, sections in documentation order, top-level keys last. */
export const settingKeys: readonly SettingKey[] = [
  ...Object.entries(configSectionShapes).flatMap(([section, shape]) =>
    Object.entries(shape).map(([key, schema]) => describeKey(section as ConfigSectionName, key, schema)),
  ),
  ...Object.entries(topLevelShape).map(([key, schema]) => describeKey(null, key, schema)),
];
