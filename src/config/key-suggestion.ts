/**
 * "Did you mean …?" for unknown configuration keys: the closest known name by edit distance,
 * when it is close enough to be a plausible typo.
 */

/** Names longer than this are not compared (no key is near this long; it bounds the work). */
const nameLengthMax = 128;

/** Levenshtein distance between two short strings (insert, delete, substitute: cost 1 each). */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * The candidate closest to `word`, if within a typo's reach: at most a third of the word's
 * length, and at least 2 edits allowed (so `prot` finds `port`).
 *
 * @example closestName("sync_timeot_ms", ["sync_timeout_ms", "port"]) // "sync_timeout_ms"
 */
export function closestName(word: string, candidates: readonly string[]): string | undefined {
  if (word.length > nameLengthMax) return undefined;
  const lower = word.toLowerCase();
  const reach = Math.max(2, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = reach + 1;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}
