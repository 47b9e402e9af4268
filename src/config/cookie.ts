/**
 * The cluster cookie: the shared secret every member must hold. In cluster mode a node refuses
 * to start without one, with a well-known default, or with one too weak to resist guessing.
 *
 * Strength is an estimate: `length × log2(alphabet size)`, where the alphabet is inferred from
 * the character classes the cookie uses (digits 10, hex 16, one-case letters 26, one-case
 * letters and digits 36, letters 52, letters and digits 62, base64 / base64url 64, any other
 * printable ASCII 95). For a cookie drawn at random from that alphabet (what `conclave cookie`
 * prints) this is its true entropy; for a phrase a person made up it is an over-estimate, which
 * is why well-known defaults and repeated patterns are checked first. 128 bits is the floor:
 * 32 hex characters, or 22 base64url characters.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { open } from "node:fs/promises";
import { ConclaveError } from "../lib/errors.ts";

/** Least estimated entropy a cookie must have, in bits. */
export const cookieEntropyBitsMin = 128;
/** Longest cookie accepted, in characters (it is never sent; this just bounds what is read and hashed). */
export const cookieLengthMax = 1024;
/** Largest cookie file read, in bytes. */
export const cookieFileBytesMax = 4096;

/** How to get a good cookie; every cookie error ends with it. */
export const cookieFix =
  "Run `conclave cookie` to print a new random one, and give the same cookie to every member " +
  "(cluster.cookie, CONCLAVE_CLUSTER__COOKIE, or a file named by cluster.cookie_file with mode 600)";

/**
 * Cookies that ship as defaults or examples somewhere, compared case-insensitively and ignoring
 * punctuation. Most are also too short, but naming them as defaults makes the error clearer.
 */
const knownDefaultCookies = new Set([
  "changeme",
  "changeit",
  "secret",
  "secretcookie",
  "cookie",
  "emqxsecretcookie",
  "conclave",
  "conclavecookie",
  "conclavesecret",
  "password",
  "passw0rd",
  "default",
  "admin",
  "test",
  "example",
  "letmein",
  "qwerty",
  "123456",
  "12345678",
  "1234567890",
  "monkey",
  "nocookie",
  "erlangcookie",
]);

/** Why a cookie was refused. */
export type CookieRefusal = "missing" | "bad-characters" | "too-long" | "known-default" | "repeated" | "weak";

/** The verdict on a cookie: its estimated strength, or why it is refused and how to fix it. */
export type CookieCheck =
  | { readonly ok: true; readonly entropyBits: number }
  | { readonly ok: false; readonly refusal: CookieRefusal; readonly message: string };

/** Prints a new cookie: 32 random bytes (256 bits), base64url, 43 characters. */
export function generateCookie(): string {
  return randomBytes(32).toString("base64url");
}

/** Alphabet size inferred from the character classes `text` uses (see the module comment). */
export function cookieAlphabetSize(text: string): number {
  if (/^[0-9]*$/.test(text)) return 10;
  if (/^[0-9a-f]*$/.test(text) || /^[0-9A-F]*$/.test(text)) return 16;
  if (/^[a-z]*$/.test(text) || /^[A-Z]*$/.test(text)) return 26;
  if (/^[a-z0-9]*$/.test(text) || /^[A-Z0-9]*$/.test(text)) return 36;
  if (/^[A-Za-z]*$/.test(text)) return 52;
  if (/^[A-Za-z0-9]*$/.test(text)) return 62;
  if (/^[A-Za-z0-9_-]*$/.test(text) || /^[A-Za-z0-9+/]*=*$/.test(text)) return 64;
  return 95;
}

/** Estimated entropy of a cookie in bits: length × log2(alphabet size). */
export function estimateCookieEntropyBits(cookie: string): number {
  return cookie.length * Math.log2(cookieAlphabetSize(cookie));
}

/** Smallest period of `text` (`abcabcab` → 3), or its length when it does not repeat. */
function smallestPeriod(text: string): number {
  // Knuth–Morris–Pratt failure function: period = length − longest proper border.
  const border = new Array<number>(text.length).fill(0);
  for (let i = 1, k = 0; i < text.length; i++) {
    while (k > 0 && text[i] !== text[k]) k = border[k - 1] ?? 0;
    if (text[i] === text[k]) k++;
    border[i] = k;
  }
  return text.length - (border[text.length - 1] ?? 0);
}

function refuse(refusal: CookieRefusal, problem: string): CookieCheck {
  return { ok: false, refusal, message: `${problem}. ${cookieFix}.` };
}

/**
 * Judges a cookie by the rules above. A typed result, not an exception: the configuration
 * loader reports a refusal next to the key it came from.
 *
 * @example checkCookie("changeme") // { ok: false, refusal: "known-default", message: "…" }
 */
export function checkCookie(cookie: string | undefined): CookieCheck {
  if (cookie === undefined || cookie.length === 0) return refuse("missing", "No cluster cookie is set");
  if (cookie.length > cookieLengthMax) {
    return refuse(
      "too-long",
      `The cookie is ${cookie.length} characters long; at most ${cookieLengthMax} are allowed`,
    );
  }
  if (!/^[\x21-\x7e]+$/.test(cookie)) {
    return refuse(
      "bad-characters",
      "The cookie may hold only printable ASCII characters without spaces (letters, digits, punctuation)",
    );
  }
  if (knownDefaultCookies.has(cookie.toLowerCase().replace(/[^a-z0-9]/g, ""))) {
    return refuse("known-default", "The cookie is a well-known default that anyone could guess");
  }
  const period = smallestPeriod(cookie);
  if (period === 1) return refuse("repeated", "The cookie is one character repeated");
  const unitBits = estimateCookieEntropyBits(cookie.slice(0, period));
  if (period <= cookie.length / 2 && unitBits < cookieEntropyBitsMin) {
    return refuse(
      "repeated",
      `The cookie repeats a ${period}-character pattern (about ${Math.floor(unitBits)} bits)`,
    );
  }
  const entropyBits = estimateCookieEntropyBits(cookie);
  if (entropyBits < cookieEntropyBitsMin) {
    return refuse(
      "weak",
      `The cookie is too weak: about ${Math.floor(entropyBits)} bits of entropy, at least ${cookieEntropyBitsMin} are needed (e.g. 32 hex or 22 base64url random characters)`,
    );
  }
  return { ok: true, entropyBits };
}

/**
 * Throws unless `cookie` passes {@link checkCookie}. `where` names its source in the message
 * (e.g. `"cluster.cookie in /etc/conclave.toml"`).
 */
export function assertStrongCookie(cookie: string | undefined, where: string): asserts cookie is string {
  const check = checkCookie(cookie);
  if (check.ok) return;
  const code = check.refusal === "missing" ? "CONCLAVE_COOKIE_MISSING" : "CONCLAVE_COOKIE_WEAK";
  throw new ConclaveError(code, `Refusing to start in cluster mode (${where}): ${check.message}`, {
    refusal: check.refusal,
  });
}

function describeMode(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, "0")}`;
}

function unreadable(path: string, why: string): ConclaveError {
  return new ConclaveError(
    "CONCLAVE_COOKIE_FILE_UNREADABLE",
    `Cannot read the cookie file ${path}: ${why}.`,
    {
      path,
    },
  );
}

/**
 * Reads a cookie file. Refuses, as SSH does for private keys, a file that group or others may
 * access (fix: `chmod 600 <file>`); trims surrounding whitespace (a trailing newline is normal)
 * and checks the cookie's strength.
 */
export async function readCookieFile(path: string): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw unreadable(path, code === "ENOENT" ? "there is no such file" : `${code ?? "error"}`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw unreadable(path, "it is not a regular file");
    if (process.platform !== "win32" && (stat.mode & 0o077) !== 0) {
      throw new ConclaveError(
        "CONCLAVE_COOKIE_FILE_INSECURE",
        `The cookie file ${path} is accessible by group or others (mode ${describeMode(stat.mode)}), so another user of this machine could read the cluster secret. Run \`chmod 600 ${path}\` and start again.`,
        { path, mode: stat.mode & 0o777 },
      );
    }
    if (stat.size > cookieFileBytesMax) {
      throw unreadable(
        path,
        `it is ${stat.size} bytes; a cookie file holds one cookie (at most ${cookieFileBytesMax} bytes)`,
      );
    }
    const buffer = Buffer.alloc(cookieFileBytesMax + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const cookie = buffer.subarray(0, Math.min(bytesRead, cookieFileBytesMax)).toString("utf8").trim();
    assertStrongCookie(cookie, `cookie file ${path}`);
    return cookie;
  } finally {
    await handle.close();
  }
}

/** The cookie settings of a node, as in `NodeConfig.cluster`. */
export interface CookieSettings {
  readonly mode: "standalone" | "cluster";
  readonly cookie: string | undefined;
  readonly cookieFile: string | undefined;
}

/**
 * The cookie a node starts with: the inline one, or the one read from `cookieFile`. In cluster
 * mode a missing or weak cookie throws; in standalone mode no cookie is needed (`undefined`).
 */
export async function resolveClusterCookie(settings: CookieSettings): Promise<string | undefined> {
  if (settings.cookieFile !== undefined) return readCookieFile(settings.cookieFile);
  if (settings.mode === "standalone") return settings.cookie;
  assertStrongCookie(settings.cookie, "cluster.cookie");
  return settings.cookie;
}

/**
 * Compares two secrets (cookies, MACs) in time that does not depend on where they differ, so a
 * peer cannot guess a secret byte by byte from response times. Both sides are hashed first, so
 * the time does not reveal the length either.
 */
export function secretsEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  const digestA = createHash("sha256").update(a).digest();
  const digestB = createHash("sha256").update(b).digest();
  return timingSafeEqual(digestA, digestB);
}
