/**
 * The set of operations already linearized on the current search path, as a fixed-size bitset
 * with a hash kept up to date on every change, and the memo cache of configurations that stores
 * compact snapshots of such sets.
 */

/** A 32-bit mix of an operation index (murmur3's finalizer): the hash is the XOR of these. */
function mixIndex(index: number): number {
  let z = Math.imul(index + 1, 0x9e3779b1) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** A bitset of operation indices with an incrementally maintained hash. */
export class LinearizedSet {
  readonly words: Uint32Array;
  #hash = 0;

  constructor(size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32));
  }

  /** A hash of the members, equal for equal sets whatever the order of insertion. */
  get hash(): number {
    return this.#hash;
  }

  has(index: number): boolean {
    return ((this.words[index >>> 5] as number) & (1 << (index & 31))) !== 0;
  }

  add(index: number): void {
    if (this.has(index)) return;
    this.words[index >>> 5] = (this.words[index >>> 5] as number) | (1 << (index & 31));
    this.#hash = (this.#hash ^ mixIndex(index)) >>> 0;
  }

  delete(index: number): void {
    if (!this.has(index)) return;
    this.words[index >>> 5] = (this.words[index >>> 5] as number) & ~(1 << (index & 31));
    this.#hash = (this.#hash ^ mixIndex(index)) >>> 0;
  }

  /**
   * A compact copy: the count of leading all-ones words, then (index, word) pairs for the other
   * non-zero words. The search numbers operations by call time with unknown-outcome ones last,
   * so a linearized set is a full prefix, a window about as wide as the concurrency, and the
   * unknown-outcome tail: a few words per configuration instead of one bit per operation.
   */
  snapshot(): Uint32Array {
    const words = this.words;
    let fullWords = 0;
    while (fullWords < words.length && words[fullWords] === 0xffffffff) fullWords++;
    let nonZeroWords = 0;
    for (let i = fullWords; i < words.length; i++) if (words[i] !== 0) nonZeroWords++;
    const snapshot = new Uint32Array(1 + nonZeroWords * 2);
    snapshot[0] = fullWords;
    let at = 1;
    for (let i = fullWords; i < words.length; i++) {
      const word = words[i] as number;
      if (word === 0) continue;
      snapshot[at++] = i;
      snapshot[at++] = word;
    }
    return snapshot;
  }
}

function equalSnapshots(a: Uint32Array, b: Uint32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Rough heap cost of a Map entry with its array, and of a typed array object (V8, 64-bit). */
const bucketOverheadBytes = 120;
const snapshotOverheadBytes = 80;

/**
 * Lowe's memoization: the (linearized set, model state) configurations already explored. A
 * configuration seen once cannot lead to a linearization the second time either.
 */
export class ConfigurationCache {
  readonly #buckets = new Map<string, Uint32Array[]>();
  #entryCount = 0;
  #bytes = 0;

  get entryCount(): number {
    return this.#entryCount;
  }

  /** Approximate bytes held by the stored bitsets. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Adds the configuration; false when it was already present. */
  addIfAbsent(linearized: LinearizedSet, stateKey: string): boolean {
    const bucketKey = `${linearized.hash}|${stateKey}`;
    const snapshot = linearized.snapshot();
    let bucket = this.#buckets.get(bucketKey);
    if (bucket === undefined) {
      bucket = [];
      this.#buckets.set(bucketKey, bucket);
      this.#bytes += bucketOverheadBytes + bucketKey.length * 2;
    } else if (bucket.some((stored) => equalSnapshots(stored, snapshot))) {
      return false;
    }
    bucket.push(snapshot);
    this.#entryCount++;
    this.#bytes += snapshot.byteLength + snapshotOverheadBytes;
    return true;
  }
}
