/**
 * parseRequestTarget must give plain routes exactly what `new URL(target, base)` gives (path,
 * query parameters), on every target, while skipping URL parsing for the plain ones.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parseRequestTarget } from "../../src/admin/request-target.ts";

/** What plain routes read from a URL: its path and its query parameters. */
function byUrl(target: string): { path: string; params: [string, string][] } | null {
  try {
    const url = new URL(target, "http://localhost");
    return { path: url.pathname, params: [...url.searchParams] };
  } catch {
    return null;
  }
}

function byParser(target: string): { path: string; params: [string, string][] } | null {
  const parsed = parseRequestTarget(target);
  return parsed === null ? null : { path: parsed.path, params: [...new URLSearchParams(parsed.search)] };
}

// Pieces that URL parsing treats specially (dot segments, escapes, fragments) mixed with plain ones.
const piece = fc.constantFrom(
  "a",
  "kv",
  "config",
  "/",
  "//",
  ".",
  "..",
  "/./",
  "/../",
  "%2e",
  "%2E",
  "%2e%2E",
  ".%2e",
  "%41",
  "%zz",
  "%",
  "?",
  "&",
  "=",
  "+",
  "#",
  " ",
  "\\",
  "'",
  '"',
  "<",
  ">",
  "`",
  "{",
  "}",
  "é",
  "日",
  "\t",
  "~",
  "@",
  ":",
  ";",
  "!",
);
const target = fc.array(piece, { maxLength: 12 }).map((pieces) => `/v1/${pieces.join("")}`);

describe("request targets of plain routes", () => {
  it("agree with new URL on random targets, dot segments and escapes included", () => {
    fc.assert(
      fc.property(target, (t) => {
        assert.deepEqual(byParser(t), byUrl(t), t);
      }),
      { numRuns: 5000 },
    );
  });

  it("read plain targets without URL parsing and resolve the rest as URL does", () => {
    assert.deepEqual(parseRequestTarget("/v1/kv/config/a?consistency=none"), {
      path: "/v1/kv/config/a",
      search: "?consistency=none",
    });
    assert.deepEqual(parseRequestTarget("/v1/kv/a/../b"), { path: "/v1/kv/b", search: "" });
    assert.deepEqual(parseRequestTarget("/v1/kv/a/%2e%2e/b?x=1#frag"), { path: "/v1/kv/b", search: "?x=1" });
    assert.deepEqual(parseRequestTarget("/v1/kv/a b"), { path: "/v1/kv/a%20b", search: "" });
  });
});
