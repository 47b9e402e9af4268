/**
 * Configuration of a Conclave node: the TOML file and `CONCLAVE_*` overrides, the cluster
 * cookie rules, node names and the node identity kept in the data directory.
 */
export {
  assertStrongCookie,
  type CookieCheck,
  type CookieRefusal,
  type CookieSettings,
  checkCookie,
  cookieAlphabetSize,
  cookieEntropyBitsMin,
  estimateCookieEntropyBits,
  generateCookie,
  readCookieFile,
  resolveClusterCookie,
  secretsEqual,
} from "./cookie.ts";
export { envPrefix } from "./environment.ts";
export { configFileBytesMax, type LoadConfigOptions, loadConfig } from "./load.ts";
export type {
  ClusterMember,
  ClusterSettings,
  HttpSettings,
  LogSettings,
  NodeConfig,
  NodeSettings,
  TlsSettings,
} from "./node-config.ts";
export {
  identityFileName,
  type NodeIdentity,
  type OpenedIdentity,
  type OpenIdentityOptions,
  openNodeIdentity,
  readNodeIdentity,
  recordClusterId,
} from "./node-identity.ts";
export {
  formatMemberAddress,
  formatNodeName,
  type HostKind,
  type MemberAddress,
  type NodeName,
  type ParseResult,
  parseHost,
  parseMemberAddress,
  parseNodeName,
} from "./node-name.ts";
export type { ConfigProblem } from "./problems.ts";
export { configSchema, type SettingKey, settingKeys } from "./schema.ts";
export { type TimingProfile, type TimingProfileName, timingProfile, timingProfileMs } from "./timing.ts";
