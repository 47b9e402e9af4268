/** LruMap: what the SQL caches rely on — bounded size, and the least recently used goes first. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LruMap } from "../../src/lib/lru-map.ts";

describe("LruMap", () => {
  it("drops the least recently used entry beyond its capacity; a read counts as a use", () => {
    const cache = new LruMap<string, number>(2);
    cache.set("a", 1);
    cache.set("b", 2);
    assert.equal(cache.get("a"), 1);
    cache.set("c", 3);
    assert.equal(cache.size, 2);
    assert.equal(cache.get("b"), undefined, "b was the least recently used");
    assert.equal(cache.get("a"), 1);
    assert.equal(cache.get("c"), 3);
  });

  it("replaces a value in place, and forgets on delete and clear", () => {
    const cache = new LruMap<string, number>(2);
    cache.set("a", 1);
    cache.set("a", 2);
    assert.equal(cache.size, 1);
    assert.equal(cache.get("a"), 2);
    cache.delete("a");
    assert.equal(cache.get("a"), undefined);
    cache.set("b", 3);
    cache.clear();
    assert.equal(cache.size, 0);
  });
});
