/**
 * Pure helpers for "did you mean …?" hints: the closest of a few known names (keys of a secret, flags) to
 * what the user typed. Only names are compared and printed, never values.
 */

/** Levenshtein edit distance (insertions, deletions, substitutions; a swap of neighbours counts 1). */
export function editDistance(a: string, b: string): number {
  // Optimal string alignment: Levenshtein plus transpositions of adjacent characters ("pasword"/"psasword").
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => d[i]?.[j] ?? 0;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, at(i - 2, j - 2) + 1);
      }
      (d[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

/**
 * The candidate closest to `typed`, if it is close enough to be a likely typo: the same name in another case,
 * or at most a third of the longer name's letters apart (at most 3; so names under 3 letters only by case).
 * Ties: the first candidate.
 */
export function closest(typed: string, candidates: readonly string[]): string | undefined {
  const lower = typed.toLowerCase();
  const sameCase = candidates.find((c) => c !== typed && c.toLowerCase() === lower);
  if (sameCase !== undefined) return sameCase;
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    if (name === typed) continue;
    const distance = editDistance(lower, name.toLowerCase());
    const limit = Math.min(3, Math.floor(Math.max(typed.length, name.length) / 3));
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

/** "did you mean "x"? " or "" — for the front of a hint. */
export function didYouMean(typed: string, candidates: readonly string[]): string {
  const near = closest(typed, candidates);
  return near === undefined ? '' : `did you mean "${near}"? `;
}

/** The hint for a key that is not in a secret: the closest key, then the keys there (names only). */
export function missingKeyHint(key: string, known: readonly string[]): string {
  if (known.length === 0) return 'the secret has no keys';
  return `${didYouMean(key, known)}keys there: ${known.join(', ')}`;
}
