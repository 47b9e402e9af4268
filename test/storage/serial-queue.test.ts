/** The storage's serial queue: one operation at a time, in call order, started at once when idle. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SerialQueue } from "../../src/adapters/storage/serial-queue.ts";

describe("SerialQueue", () => {
  it("starts an operation at once when idle, so a write begins before its caller yields", async () => {
    const queue = new SerialQueue();
    const started: string[] = [];
    const done = queue.run(async () => {
      started.push("first");
    });
    assert.deepEqual(started, ["first"], "started inside run()");
    await done;
  });

  it("runs operations one at a time in call order, each only after the one before settled", async () => {
    const queue = new SerialQueue();
    const log: string[] = [];
    let release = (): void => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = queue.run(async () => {
      log.push("first start");
      await gate;
      log.push("first end");
      return 1;
    });
    const second = queue.run(async () => {
      log.push("second");
      throw new Error("second fails");
    });
    const third = queue.run(async () => {
      log.push("third");
      return 3;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(log, ["first start"], "the others wait for the running one");
    release();
    assert.equal(await first, 1);
    await assert.rejects(second, /second fails/);
    assert.equal(await third, 3, "a failed operation does not stop the next");
    assert.deepEqual(log, ["first start", "first end", "second", "third"]);
    // Idle again: the next one starts at once.
    let startedAtOnce = false;
    const fourth = queue.run(async () => {
      startedAtOnce = true;
    });
    assert.equal(startedAtOnce, true);
    await fourth;
  });

  it("an operation queued from inside a running one waits for it", async () => {
    const queue = new SerialQueue();
    const log: string[] = [];
    let inner: Promise<void> | null = null;
    await queue.run(async () => {
      log.push("outer start");
      inner = queue.run(async () => {
        log.push("inner");
      });
      await new Promise((resolve) => setImmediate(resolve));
      log.push("outer end");
    });
    await inner;
    assert.deepEqual(log, ["outer start", "outer end", "inner"]);
  });

  it("turns an operation that throws before returning its promise into a rejection", async () => {
    const queue = new SerialQueue();
    const thrown = queue.run((() => {
      throw new Error("synchronous");
    }) as () => Promise<void>);
    await assert.rejects(thrown, /synchronous/);
    assert.equal(await queue.run(async () => "after"), "after");
  });
});
