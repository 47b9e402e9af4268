import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { generateCookie } from "../../src/config/cookie.ts";
import { configFileBytesMax, loadConfig } from "../../src/config/load.ts";
import { isConclaveError } from "../../src/lib/errors.ts";

const cookie = generateCookie();
const clusterEnv = { CONCLAVE_NODE__NAME: "n1@10.0.0.5", CONCLAVE_CLUSTER__COOKIE: cookie };

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "conclave-config-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileCount = 0;
async function tomlFile(text: string): Promise<string> {
  fileCount++;
  const path = join(dir, `conclave-${fileCount}.toml`);
  await writeFile(path, text);
  return path;
}

/** Loads and expects CONCLAVE_CONFIG_INVALID; returns the message after checking it has no stack. */
async function invalidMessage(options: Parameters<typeof loadConfig>[0]): Promise<string> {
  try {
    await loadConfig(options);
  } catch (error) {
    assert.ok(isConclaveError(error, "CONCLAVE_CONFIG_INVALID"), `unexpected error: ${String(error)}`);
    assert.doesNotMatch(error.message, /\n\s+at /, "no stack trace in the message");
    return error.message;
  }
  assert.fail("expected the configuration to be refused");
}

describe("defaults", () => {
  it("a standalone node needs nothing and gets the documented defaults", async () => {
    const config = await loadConfig({ env: { CONCLAVE_CLUSTER__MODE: "standalone" } });
    assert.deepEqual(config, {
      node: {
        name: undefined,
        dataDir: "./data",
        role: "voter",
        neverPrimary: false,
        primaryPriority: 0,
        segment: 1,
        cpuScheduling: "batch",
      },
      cluster: {
        mode: "standalone",
        id: undefined,
        cookie: undefined,
        cookieFile: undefined,
        members: [],
        bootstrap: false,
        port: 4370,
        bind: "0.0.0.0",
        timing: "lan",
        syncTimeoutMs: 15000,
        snapshotEveryEntries: 8192,
        snapshotEveryBytes: 64 * 1024 * 1024,
        applyCommitIntervalMs: 100,
        groupCommitMs: 0,
        commitWaitMs: 1,
      },
      http: { port: 4380, bind: "127.0.0.1", tokenFile: undefined },
      tls: { enabled: false, cert: undefined, key: undefined, ca: undefined, requireClientCert: false },
      log: { level: "info", slowRequestMs: 1000, slowRequestLogsPerSecond: 10 },
      portOffset: 0,
    });
  });

  it("cluster mode is the default and needs a name and a cookie", async () => {
    const message = await invalidMessage({ env: {} });
    assert.match(message, /2 problems/);
    assert.match(message, /node\.name \(not set\): node\.name is required in cluster mode/);
    assert.match(message, /CONCLAVE_NODE__NAME/);
    assert.match(message, /cluster\.cookie \(not set\): No cluster cookie is set.*conclave cookie/);
    const config = await loadConfig({ env: clusterEnv });
    assert.equal(config.cluster.mode, "cluster");
    assert.equal(config.node.name, "n1@10.0.0.5");
  });
});

describe("a full file", () => {
  it("maps every key to the camelCase config, with the port offset applied", async () => {
    const file = await tomlFile(`
port_offset = 10

[node]
name = "n2@10.0.0.6"
data_dir = "/var/lib/conclave"
role = "standby"
never_primary = true
primary_priority = 40
segment = 2
cpu_scheduling = "inherit"

[cluster]
mode = "cluster"
id = "prod-eu-1"
cookie_file = "/etc/conclave/cookie"
members = ["n1@10.0.0.5", "n2@10.0.0.6:5000", "n3@[fd00::7]"]
bootstrap = true
port = 4000
bind = "10.0.0.6"
timing = "wan"
sync_timeout_ms = 5000
snapshot_every_entries = 100000
snapshot_every_mib = 16
apply_commit_interval_ms = 0
group_commit_ms = 2
commit_wait_ms = 0

[http]
port = 8080
bind = "::"
token_file = "/etc/conclave/token"

[tls]
enabled = true
cert = "/etc/conclave/node.crt"
key = "/etc/conclave/node.key"
ca = "/etc/conclave/ca.crt"
require_client_cert = true

[log]
level = "debug"
slow_request_ms = 0
slow_request_logs_per_second = 500
`);
    const config = await loadConfig({ file, env: {} });
    assert.deepEqual(config.node, {
      name: "n2@10.0.0.6",
      dataDir: "/var/lib/conclave",
      role: "standby",
      neverPrimary: true,
      primaryPriority: 40,
      segment: 2,
      cpuScheduling: "inherit",
    });
    assert.equal(config.cluster.id, "prod-eu-1");
    assert.equal(config.cluster.cookieFile, "/etc/conclave/cookie");
    assert.equal(config.cluster.bootstrap, true);
    assert.equal(config.cluster.port, 4010, "cluster port + port_offset");
    assert.equal(config.http.port, 8090, "http port + port_offset");
    assert.equal(config.cluster.bind, "10.0.0.6");
    assert.equal(config.cluster.timing, "wan");
    assert.equal(config.cluster.syncTimeoutMs, 5000);
    assert.equal(config.cluster.snapshotEveryEntries, 100_000);
    assert.equal(config.cluster.snapshotEveryBytes, 16 * 1024 * 1024);
    assert.equal(config.cluster.applyCommitIntervalMs, 0);
    assert.equal(config.cluster.groupCommitMs, 2);
    assert.equal(config.cluster.commitWaitMs, 0);
    assert.deepEqual(
      config.cluster.members.map((m) => [m.nodeName, m.host, m.port]),
      [
        ["n1@10.0.0.5", "10.0.0.5", 4010],
        ["n2@10.0.0.6", "10.0.0.6", 5000],
        ["n3@[fd00::7]", "fd00::7", 4010],
      ],
      "members keep their order; a member without a port gets this node's cluster port",
    );
    assert.deepEqual(config.http, { port: 8090, bind: "::", tokenFile: "/etc/conclave/token" });
    assert.deepEqual(config.tls, {
      enabled: true,
      cert: "/etc/conclave/node.crt",
      key: "/etc/conclave/node.key",
      ca: "/etc/conclave/ca.crt",
      requireClientCert: true,
    });
    assert.deepEqual(config.log, { level: "debug", slowRequestMs: 0, slowRequestLogsPerSecond: 500 });
    assert.equal(config.portOffset, 10);
  });
});

describe("bad values name the key, the value, where it came from and the fix", () => {
  it("a wrong type", async () => {
    const file = await tomlFile(`[cluster]\nport = "abc"\n`);
    const message = await invalidMessage({ file, env: clusterEnv });
    assert.match(
      message,
      new RegExp(`cluster\\.port = "abc" \\(${file}\\): expected number, received string`),
    );
    assert.match(
      message,
      /Expected a port number from 1 to 65535, e\.g\. cluster\.port = 4370 \(or CONCLAVE_CLUSTER__PORT\)/,
    );
  });

  it("a section written as a value", async () => {
    const file = await tomlFile(`node = 5\n`);
    const message = await invalidMessage({ file, env: clusterEnv });
    assert.match(
      message,
      /node = 5 \(.*\): "node" is a section, not a value\. Write \[node\] on a line of its own/,
    );
  });

  it("out of range, above and below", async () => {
    const file = await tomlFile(
      `[node]\nprimary_priority = 101\nsegment = 0\n[cluster]\nsnapshot_every_entries = 10\nsnapshot_every_mib = 0\n`,
    );
    const message = await invalidMessage({ file, env: clusterEnv });
    assert.match(
      message,
      /node\.primary_priority = 101 .*must be at most 100\. Expected a whole number from 0 to 100/,
    );
    assert.match(message, /node\.segment = 0 .*must be at least 1\. Expected a whole number from 1 to 9/);
    assert.match(
      message,
      /cluster\.snapshot_every_entries = 10 .*must be at least 64\. Expected a whole number of log entries from 64 to 1000000/,
    );
    assert.match(
      message,
      /cluster\.snapshot_every_mib = 0 .*must be at least 1\. Expected a whole number of MiB from 1 to 4096/,
    );
  });

  it("a value outside an enumeration", async () => {
    const file = await tomlFile(`[node]\nrole = "boss"\n`);
    const message = await invalidMessage({ file, env: clusterEnv });
    assert.match(message, /node\.role = "boss" .*expected one of "voter"\|"standby"/);
  });

  it("an unknown key, with the closest valid name and the valid keys", async () => {
    const file = await tomlFile(`[cluster]\nsync_timeot_ms = 5000\n`);
    const message = await invalidMessage({ file, env: clusterEnv });
    assert.match(
      message,
      new RegExp(`cluster\\.sync_timeot_ms \\(${file}\\): unknown key "sync_timeot_ms" in \\[cluster\\]`),
    );
    assert.match(message, /Did you mean "sync_timeout_ms"\?/);
    assert.match(message, /Valid keys in \[cluster\]: mode, id, cookie, cookie_file, members/);
  });

  it("an unknown section, and a key put in the wrong section", async () => {
    const file = await tomlFile(`[htp]\nport = 1\n[node]\nport_offset = 3\n`);
    const message = await invalidMessage({ file, env: clusterEnv });
    assert.match(message, /unknown key "htp" at the top level\. Did you mean "http"\?/);
    assert.match(
      message,
      /unknown key "port_offset" in \[node\]\. "port_offset" is a key of the top level\./,
    );
  });

  it("a bad node name and a bad member entry", async () => {
    const file = await tomlFile(
      `[node]\nname = "n1"\n[cluster]\nmembers = ["n1@10.0.0.5", "n2@host:99999"]\n`,
    );
    const message = await invalidMessage({ file, env: { CONCLAVE_CLUSTER__COOKIE: cookie } });
    assert.match(message, /node\.name = "n1" .*bad node name "n1": there is no "@".*n1@10\.0\.0\.5/);
    assert.match(
      message,
      /cluster\.members\[1\] = "n2@host:99999" .*the port "99999" is not a whole number from 1 to 65535/,
    );
  });

  it("reports every problem at once", async () => {
    const file = await tomlFile(`[node]\nrole = "boss"\nsegment = 10\n[cluster]\nport = -1\nbogus = 1\n`);
    const message = await invalidMessage({ file, env: { ...clusterEnv, CONCLAVE_LOG__LEVEL: "loud" } });
    assert.match(message, /5 problems/);
    assert.match(message, /CONCLAVE_LOG__LEVEL="loud" \(log\.level\)/);
  });

  it("rules between keys", async () => {
    const file = await tomlFile(`
[cluster]
cookie_file = "/etc/conclave/cookie"
members = ["n1@a", "n1@b"]
port = 4380
[tls]
enabled = true
require_client_cert = true
`);
    const message = await invalidMessage({ file, env: clusterEnv });
    assert.match(message, /both cluster\.cookie and cluster\.cookie_file are set; keep only one/);
    assert.match(message, /the name "n1" is already used by entry 1/);
    assert.match(message, /http\.port and cluster\.port are both 4380/);
    assert.match(message, /TLS is enabled but tls\.cert or tls\.key is missing/);
    assert.match(message, /mutual TLS needs tls\.ca/);
  });

  it("a port offset that pushes a port past 65535", async () => {
    const message = await invalidMessage({
      env: { ...clusterEnv, CONCLAVE_HTTP__PORT: "65000", CONCLAVE_PORT_OFFSET: "1000" },
    });
    assert.match(message, /http\.port 65000 \+ port_offset 1000 = 66000 is above 65535/);
  });

  it("a weak cookie is refused and never shown", async () => {
    const file = await tomlFile(`[node]\nname = "n1@h"\n[cluster]\ncookie = "changeme"\n`);
    const message = await invalidMessage({ file, env: {} });
    assert.match(message, /cluster\.cookie = \(hidden, 8 characters\)/);
    assert.match(message, /well-known default.*conclave cookie/);
    assert.doesNotMatch(message, /changeme/);
  });
});

describe("the file itself", () => {
  it("a TOML syntax error names the file, line and column", async () => {
    const file = await tomlFile(`[node]\nname = "n1@h"\n[cluster\nport = 1\n`);
    const message = await invalidMessage({ file, env: {} });
    assert.match(message, new RegExp(`${file} is not valid TOML: line 3, column \\d+`));
    assert.match(message, /\[cluster/, "shows the offending line");
  });

  it("refuses a file over 1 MiB", async () => {
    const file = await tomlFile(`# ${"x".repeat(configFileBytesMax)}\n`);
    const message = await invalidMessage({ file, env: {} });
    assert.match(message, /the limit is 1048576 bytes \(1 MiB\)/);
  });

  it("a missing file is CONCLAVE_CONFIG_UNREADABLE", async () => {
    await assert.rejects(loadConfig({ file: join(dir, "absent.toml"), env: {} }), (error: unknown) => {
      assert.ok(isConclaveError(error, "CONCLAVE_CONFIG_UNREADABLE"));
      assert.match(error.message, /absent\.toml: there is no such file/);
      return true;
    });
  });
});

describe("CONCLAVE_* environment overrides", () => {
  it("set nested keys, numbers, booleans and arrays", async () => {
    const config = await loadConfig({
      env: {
        ...clusterEnv,
        CONCLAVE_CLUSTER__SYNC_TIMEOUT_MS: "5000",
        CONCLAVE_CLUSTER__BOOTSTRAP: "true",
        CONCLAVE_NODE__NEVER_PRIMARY: "true",
        CONCLAVE_CLUSTER__MEMBERS: '["n1@10.0.0.5", "n2@10.0.0.6:4371"]',
        CONCLAVE_PORT_OFFSET: "2",
        HOME: "/root",
      },
    });
    assert.equal(config.cluster.syncTimeoutMs, 5000);
    assert.equal(config.cluster.bootstrap, true);
    assert.equal(config.node.neverPrimary, true);
    assert.deepEqual(
      config.cluster.members.map((m) => [m.nodeName, m.port]),
      [
        ["n1@10.0.0.5", 4372],
        ["n2@10.0.0.6", 4371],
      ],
    );
    assert.equal(config.portOffset, 2);
  });

  it("a list may also be comma-separated", async () => {
    const config = await loadConfig({ env: { ...clusterEnv, CONCLAVE_CLUSTER__MEMBERS: "n1@a, n2@b,n3@c" } });
    assert.deepEqual(
      config.cluster.members.map((m) => m.nodeName),
      ["n1@a", "n2@b", "n3@c"],
    );
  });

  it("a text key keeps a value made of digits as text", async () => {
    const digits = "31415926535897932384626433832795028841971693993751058209749445";
    const config = await loadConfig({ env: { ...clusterEnv, CONCLAVE_CLUSTER__COOKIE: digits } });
    assert.equal(config.cluster.cookie, digits);
  });

  it("win over the file, and overrides win over the environment", async () => {
    const file = await tomlFile(`[cluster]\nsync_timeout_ms = 1000\nport = 5000\n[log]\nlevel = "warn"\n`);
    const config = await loadConfig({
      file,
      env: { ...clusterEnv, CONCLAVE_CLUSTER__SYNC_TIMEOUT_MS: "2000", CONCLAVE_LOG__LEVEL: "debug" },
      overrides: { log: { level: "error" } },
    });
    assert.equal(config.cluster.syncTimeoutMs, 2000, "env over file");
    assert.equal(config.cluster.port, 5000, "file value kept where env is silent");
    assert.equal(config.log.level, "error", "overrides over env");
  });

  it("a bad value names the variable", async () => {
    const file = await tomlFile(`[cluster]\nsync_timeout_ms = 1000\n`);
    const message = await invalidMessage({
      file,
      env: { ...clusterEnv, CONCLAVE_CLUSTER__SYNC_TIMEOUT_MS: "soon" },
    });
    assert.match(
      message,
      /CONCLAVE_CLUSTER__SYNC_TIMEOUT_MS="soon" \(cluster\.sync_timeout_ms\): expected number/,
    );
    assert.doesNotMatch(
      message,
      new RegExp(file),
      "the file's value was overridden, so the file is not blamed",
    );
  });

  it("an unknown variable is refused with the closest name", async () => {
    const message = await invalidMessage({
      env: { ...clusterEnv, CONCLAVE_CLUSTER_SYNC_TIMEOUT_MS: "5000" },
    });
    assert.match(
      message,
      /CONCLAVE_CLUSTER_SYNC_TIMEOUT_MS is not a Conclave setting\. Did you mean CONCLAVE_CLUSTER__SYNC_TIMEOUT_MS\?/,
    );
  });

  it("empty variables count as unset", async () => {
    const config = await loadConfig({ env: { ...clusterEnv, CONCLAVE_LOG__LEVEL: "", CONCLAVE_NOPE: "" } });
    assert.equal(config.log.level, "info");
  });
});
