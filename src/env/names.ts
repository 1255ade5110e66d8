/**
 * A set of variable names given by the user, each exact or a prefix pattern `PREFIX*` (e.g. VAULTRUN_PASSTHROUGH
 * `CI_*,GITLAB_*`: every variable whose name starts with CI_ or GITLAB_). Only a final `*` is special.
 */
export interface NameSet {
  has(name: string): boolean;
}

export class NamePatterns implements NameSet, Iterable<string> {
  private readonly entries: string[];
  private readonly exact = new Set<string>();
  private readonly prefixes: string[] = [];

  constructor(entries: Iterable<string> = []) {
    this.entries = [...entries];
    for (const entry of this.entries) {
      if (entry.endsWith('*')) this.prefixes.push(entry.slice(0, -1));
      else this.exact.add(entry);
    }
  }

  has(name: string): boolean {
    return this.exact.has(name) || this.prefixes.some((prefix) => name.startsWith(prefix));
  }

  /** The entries as given. */
  [Symbol.iterator](): Iterator<string> {
    return this.entries[Symbol.iterator]();
  }
}

/** A NameSet and more exact names: what `base` holds, or one of `more`. */
export function withNames(base: NameSet, more: ReadonlySet<string>): NameSet {
  return { has: (name) => base.has(name) || more.has(name) };
}
