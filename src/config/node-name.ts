/**
 * Node names (`name@host`) and member addresses (`name@host:port`).
 *
 * The part before `@` is the node's short name: it identifies the node and never changes. The
 * host is where the node is reached: an IPv4 address, an IPv6 address (in brackets,
 * `n1@[fd00::5]`; bare IPv6 is accepted in a node name, where no port can follow) or a host name
 * per RFC 1123. Parsing returns a typed result: a bad name is an expected outcome, and the caller
 * decides which error to raise with the message given here.
 */
import { isIPv4, isIPv6 } from "node:net";

/** What kind of host a node name holds. */
export type HostKind = "ipv4" | "ipv6" | "hostname";

/** A parsed `name@host`. `host` holds an IPv6 address without its brackets. */
export interface NodeName {
  /** The short name, `[A-Za-z0-9_-]{1,64}`. */
  readonly name: string;
  readonly host: string;
  readonly hostKind: HostKind;
}

/** A parsed member list entry: a node name with an optional port. */
export interface MemberAddress extends NodeName {
  /** The port when the entry gave one (`n1@host:4370`), else `undefined`. */
  readonly port: number | undefined;
}

/** Result of parsing: the value, or a message that says what is wrong and shows a valid example. */
export type ParseResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly message: string };

/** Longest short name (the part before `@`). */
export const nodeShortNameLengthMax = 64;
/** Longest host name (RFC 1123 / RFC 1035). */
export const hostnameLengthMax = 253;
/** Longest label of a host name. */
export const hostnameLabelLengthMax = 63;
/** Longest text accepted as a member entry: name, `@`, bracketed IPv6 with zone, `:port`. */
export const memberAddressLengthMax = nodeShortNameLengthMax + 1 + hostnameLengthMax + 2 + 6;

const shortNamePattern = /^[A-Za-z0-9_-]{1,64}$/;
const hostnameLabelPattern = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;
const portPattern = /^[0-9]{1,5}$/;

const nodeNameExamples = "n1@10.0.0.5, n1@db1.example.com or n1@[fd00::5]";
const memberExamples = "n1@10.0.0.5:4370, n1@db1.example.com or n1@[fd00::5]:4370";

function fail<T>(message: string): ParseResult<T> {
  return { ok: false, message };
}

/**
 * Checks a host: IPv4, IPv6 (without brackets) or an RFC 1123 host name (labels of letters,
 * digits and inner hyphens, each at most 63 characters, 253 in all).
 *
 * @example parseHost("db1.example.com") // { ok: true, value: { host: "db1.example.com", hostKind: "hostname" } }
 */
export function parseHost(host: string): ParseResult<{ host: string; hostKind: HostKind }> {
  if (host.length === 0) return fail("the host is empty");
  if (isIPv4(host)) return { ok: true, value: { host, hostKind: "ipv4" } };
  if (isIPv6(host)) return { ok: true, value: { host, hostKind: "ipv6" } };
  if (/^[0-9.]+$/.test(host)) return fail(`"${host}" is not a valid IPv4 address`);
  if (host.includes(":")) return fail(`"${host}" is not a valid IPv6 address`);
  if (host.length > hostnameLengthMax) {
    return fail(`the host name is ${host.length} characters long; at most ${hostnameLengthMax} are allowed`);
  }
  for (const label of host.split(".")) {
    if (label.length === 0)
      return fail(`the host name "${host}" has an empty label (two dots, or a dot at an end)`);
    if (label.length > hostnameLabelLengthMax) {
      return fail(`the host name label "${label}" is longer than ${hostnameLabelLengthMax} characters`);
    }
    if (!hostnameLabelPattern.test(label)) {
      return fail(
        `the host name label "${label}" may hold only letters, digits and hyphens, and may not start or end with a hyphen`,
      );
    }
  }
  return { ok: true, value: { host, hostKind: "hostname" } };
}

function parseShortName(name: string, text: string): ParseResult<string> {
  if (shortNamePattern.test(name)) return { ok: true, value: name };
  if (name.length === 0) return fail(`"${text}" has nothing before the "@"`);
  if (name.length > nodeShortNameLengthMax) {
    return fail(
      `the name before "@" is ${name.length} characters long; at most ${nodeShortNameLengthMax} are allowed`,
    );
  }
  return fail(`the name before "@" ("${name}") may hold only letters, digits, "_" and "-"`);
}

/** Splits `name@host` at its only `@`. */
function splitAtSign(text: string): ParseResult<{ name: string; rest: string }> {
  const at = text.indexOf("@");
  if (at < 0) return fail(`there is no "@" (write name@host)`);
  if (text.indexOf("@", at + 1) >= 0) return fail(`"${text}" has more than one "@"; write it as name@host`);
  return { ok: true, value: { name: text.slice(0, at), rest: text.slice(at + 1) } };
}

function withExample<T>(result: ParseResult<T>, text: string, examples: string): ParseResult<T> {
  if (result.ok) return result;
  const what = examples === memberExamples ? "member entry" : "node name";
  return fail(`bad ${what} "${text}": ${result.message}. A valid one looks like ${examples}`);
}

/**
 * Parses a node name `name@host`. A bracketed or bare IPv6 host is accepted.
 *
 * @example parseNodeName("n1@10.0.0.5") // { ok: true, value: { name: "n1", host: "10.0.0.5", hostKind: "ipv4" } }
 */
export function parseNodeName(text: string): ParseResult<NodeName> {
  const split = splitAtSign(text);
  if (!split.ok) return withExample(split, text, nodeNameExamples);
  const name = parseShortName(split.value.name, text);
  if (!name.ok) return withExample(name, text, nodeNameExamples);
  const rest = split.value.rest;
  const bracketed = rest.startsWith("[") && rest.endsWith("]");
  const hostText = bracketed ? rest.slice(1, -1) : rest;
  if (bracketed && !isIPv6(hostText)) {
    return withExample(fail(`"${hostText}" in brackets is not an IPv6 address`), text, nodeNameExamples);
  }
  if (!bracketed && /:[0-9]+$/.test(rest) && !isIPv6(rest)) {
    return withExample(fail("a node name has no port (ports go in cluster.members)"), text, nodeNameExamples);
  }
  const host = parseHost(hostText);
  if (!host.ok) return withExample(host, text, nodeNameExamples);
  return { ok: true, value: { name: name.value, ...host.value } };
}

function parsePort(text: string): ParseResult<number> {
  const port = portPattern.test(text) ? Number(text) : Number.NaN;
  if (Number.isInteger(port) && port >= 1 && port <= 65535) return { ok: true, value: port };
  return fail(`the port "${text}" is not a whole number from 1 to 65535`);
}

/** Splits the host part of a member entry into host text and port text. */
function splitHostPort(rest: string): ParseResult<{ hostText: string; portText: string | undefined }> {
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) return fail(`"${rest}" opens a "[" that is never closed`);
    const after = rest.slice(close + 1);
    if (after !== "" && !after.startsWith(":")) return fail(`unexpected "${after}" after the "]"`);
    const hostText = rest.slice(1, close);
    if (!isIPv6(hostText)) return fail(`"${hostText}" in brackets is not an IPv6 address`);
    return { ok: true, value: { hostText, portText: after === "" ? undefined : after.slice(1) } };
  }
  if (isIPv6(rest) || (rest.match(/:/g)?.length ?? 0) > 1) {
    return fail(`put an IPv6 address in brackets, e.g. n1@[${rest}]:4370`);
  }
  const colon = rest.indexOf(":");
  if (colon < 0) return { ok: true, value: { hostText: rest, portText: undefined } };
  return { ok: true, value: { hostText: rest.slice(0, colon), portText: rest.slice(colon + 1) } };
}

/**
 * Parses a member list entry, `name@host` or `name@host:port`. IPv6 hosts must be bracketed
 * (`n1@[fd00::5]:4370`): bare, the last group could be read as a port.
 *
 * @example parseMemberAddress("n2@10.0.0.6:4371") // port 4371
 */
export function parseMemberAddress(text: string): ParseResult<MemberAddress> {
  if (text.length > memberAddressLengthMax) {
    return fail(
      `a member entry is at most ${memberAddressLengthMax} characters long; this one has ${text.length}`,
    );
  }
  const split = splitAtSign(text);
  if (!split.ok) return withExample(split, text, memberExamples);
  const name = parseShortName(split.value.name, text);
  if (!name.ok) return withExample(name, text, memberExamples);
  const hostPort = splitHostPort(split.value.rest);
  if (!hostPort.ok) return withExample(hostPort, text, memberExamples);
  const host = parseHost(hostPort.value.hostText);
  if (!host.ok) return withExample(host, text, memberExamples);
  const { portText } = hostPort.value;
  if (portText === undefined)
    return { ok: true, value: { name: name.value, ...host.value, port: undefined } };
  const port = parsePort(portText);
  if (!port.ok) return withExample(port, text, memberExamples);
  return { ok: true, value: { name: name.value, ...host.value, port: port.value } };
}

function formatHost(host: string, hostKind: HostKind): string {
  return hostKind === "ipv6" ? `[${host}]` : host;
}

/** The canonical text of a node name: IPv6 hosts in brackets. Parses back to the same value. */
export function formatNodeName(nodeName: NodeName): string {
  return `${nodeName.name}@${formatHost(nodeName.host, nodeName.hostKind)}`;
}

/** The canonical text of a member entry, with `:port` when it has one. */
export function formatMemberAddress(member: MemberAddress): string {
  const base = formatNodeName(member);
  return member.port === undefined ? base : `${base}:${member.port}`;
}
