import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  checkCookie,
  cookieAlphabetSize,
  estimateCookieEntropyBits,
  generateCookie,
  readCookieFile,
  resolveClusterCookie,
  secretsEqual,
} from "../../src/config/cookie.ts";
import { isConclaveError } from "../../src/lib/errors.ts";

function refusalOf(cookie: string | undefined): { refusal: string; message: string } {
  const check = checkCookie(cookie);
  assert.equal(check.ok, false, `expected ${JSON.stringify(cookie)} to be refused`);
  return check as { refusal: string; message: string };
}

describe("cookie strength", () => {
  it("generateCookie gives a fresh 256-bit base64url cookie that passes", () => {
    const first = generateCookie();
    assert.match(first, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(first, generateCookie());
    const check = checkCookie(first);
    assert.ok(check.ok);
    assert.ok(check.entropyBits >= 250, `estimated ${check.entropyBits} bits`);
  });

  it("refuses a missing cookie and says how to make one", () => {
    for (const missing of [undefined, ""]) {
      const { refusal, message } = refusalOf(missing);
      assert.equal(refusal, "missing");
      assert.match(message, /conclave cookie/);
    }
  });

  it("refuses well-known defaults, whatever their case and punctuation", () => {
    for (const cookie of [
      "changeme",
      "Change-Me",
      "secret",
      "cookie",
      "emqxsecretcookie",
      "conclave",
      "PASSWORD",
    ]) {
      const { refusal, message } = refusalOf(cookie);
      assert.equal(refusal, "known-default", cookie);
      assert.match(message, /well-known default/);
      assert.match(message, /conclave cookie/);
    }
  });

  it("refuses one character repeated, however long", () => {
    const { refusal, message } = refusalOf("x".repeat(200));
    assert.equal(refusal, "repeated");
    assert.match(message, /one character repeated/);
  });

  it("refuses a short pattern repeated to look long", () => {
    const cookie = "changeme1".repeat(20); // 180 characters: the naive estimate (930 bits) would pass
    assert.ok(estimateCookieEntropyBits(cookie) > 128);
    assert.equal(refusalOf(cookie).refusal, "repeated");
  });

  it("draws the line at 128 bits: 31 hex characters fail, 32 pass", () => {
    const hex = "9f86d081884c7d659a2feaa0c55ad015";
    assert.equal(refusalOf(hex.slice(0, 31)).refusal, "weak");
    assert.match(refusalOf(hex.slice(0, 31)).message, /about 124 bits/);
    assert.equal(checkCookie(hex).ok, true);
  });

  it("refuses spaces, control and non-ASCII characters", () => {
    assert.equal(refusalOf(`${generateCookie()} x`).refusal, "bad-characters");
    assert.equal(refusalOf(`${generateCookie()}é`).refusal, "bad-characters");
  });

  it("infers the alphabet from the character classes used", () => {
    assert.equal(cookieAlphabetSize("0123"), 10);
    assert.equal(cookieAlphabetSize("deadbeef01"), 16);
    assert.equal(cookieAlphabetSize("DEADBEEF01"), 16);
    assert.equal(cookieAlphabetSize("hello"), 26);
    assert.equal(cookieAlphabetSize("hello9z"), 36);
    assert.equal(cookieAlphabetSize("HelloWorld"), 52);
    assert.equal(cookieAlphabetSize("Hello9"), 62);
    assert.equal(cookieAlphabetSize("Hello_9-x"), 64);
    assert.equal(cookieAlphabetSize("Hello+9/x=="), 64);
    assert.equal(cookieAlphabetSize("Hello!9"), 95);
    assert.equal(estimateCookieEntropyBits("z".repeat(10)), 10 * Math.log2(26));
  });
});

describe("cookie files", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "conclave-cookie-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function cookieFile(name: string, content: string, mode: number): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, content);
    await chmod(path, mode);
    return path;
  }

  it("reads a mode-600 file and drops the trailing newline", async () => {
    const cookie = generateCookie();
    const path = await cookieFile("good", `${cookie}\n`, 0o600);
    assert.equal(await readCookieFile(path), cookie);
  });

  for (const mode of [0o644, 0o640, 0o604, 0o660]) {
    it(`refuses a file with mode 0${mode.toString(8)} and names chmod 600`, async () => {
      const path = await cookieFile(`open-${mode.toString(8)}`, generateCookie(), mode);
      await assert.rejects(readCookieFile(path), (error: unknown) => {
        assert.ok(isConclaveError(error, "CONCLAVE_COOKIE_FILE_INSECURE"));
        assert.match(error.message, new RegExp(`chmod 600 ${path}`));
        assert.match(error.message, new RegExp(`mode 0${mode.toString(8)}`));
        return true;
      });
    });
  }

  it("refuses a weak cookie in a file and names the file", async () => {
    const path = await cookieFile("weak", "changeme\n", 0o600);
    await assert.rejects(readCookieFile(path), (error: unknown) => {
      assert.ok(isConclaveError(error, "CONCLAVE_COOKIE_WEAK"));
      assert.match(error.message, new RegExp(path));
      assert.match(error.message, /conclave cookie/);
      return true;
    });
  });

  it("a missing file is a clear error", async () => {
    await assert.rejects(readCookieFile(join(dir, "absent")), (error: unknown) => {
      assert.ok(isConclaveError(error, "CONCLAVE_COOKIE_FILE_UNREADABLE"));
      assert.match(error.message, /no such file/);
      return true;
    });
  });

  it("resolveClusterCookie refuses to start a cluster node without a cookie, not a standalone one", async () => {
    await assert.rejects(
      resolveClusterCookie({ mode: "cluster", cookie: undefined, cookieFile: undefined }),
      (error: unknown) =>
        isConclaveError(error, "CONCLAVE_COOKIE_MISSING") && /conclave cookie/.test(error.message),
    );
    assert.equal(
      await resolveClusterCookie({ mode: "standalone", cookie: undefined, cookieFile: undefined }),
      undefined,
    );
    const cookie = generateCookie();
    const path = await cookieFile("resolved", cookie, 0o600);
    assert.equal(
      await resolveClusterCookie({ mode: "cluster", cookie: undefined, cookieFile: path }),
      cookie,
    );
  });
});

describe("secretsEqual", () => {
  it("is true only for identical secrets, of any length", () => {
    const cookie = generateCookie();
    assert.equal(secretsEqual(cookie, `${cookie}`), true);
    assert.equal(secretsEqual(cookie, generateCookie()), false);
    assert.equal(secretsEqual(cookie, cookie.slice(0, -1)), false);
    assert.equal(secretsEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
    assert.equal(secretsEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
  });
});
