import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// The house keeps its arrows pointing down: no file under src/ imports (even for a type, even dynamically)
// a file that imports it back, directly or through others. A cycle means a shared name belongs lower down.

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** File → the files of src/ it imports (import, import type, export … from, import()), as paths from the root. */
function importGraph(files: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = importedFiles
      .map((imported) => imported.fileName)
      .filter((name) => name.startsWith('.'))
      .map((name) => relative(root, resolve(dirname(file), name.replace(/\.js$/, '.ts'))));
    graph.set(relative(root, file), [...new Set(targets)].sort());
  }
  return graph;
}

/** Every cycle's files, one strongly connected component of more than one file (or a self-import) each. */
function importCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's algorithm.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter++;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node) ?? 0, low.get(next) ?? 0));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node) ?? 0, index.get(next) ?? 0));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string | undefined;
    do {
      member = stack.pop();
      if (member === undefined) break;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || graph.get(node)?.includes(node)) cycles.push(component.sort());
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return cycles;
}

describe('imports', () => {
  const graph = importGraph(sourceFiles(src));

  it('are read from every kind of import statement', () => {
    expect(graph.get('src/main.ts')).toEqual(['src/cli.ts', 'src/run/node-env.ts']);
    expect(graph.get('src/index.ts')).toContain('src/resolve.ts'); // export … from
    expect(graph.get('src/commands/check.ts')).toContain('src/config.ts'); // import type
  });

  it.each<[string, Record<string, string[]>, string[][]]>([
    ['a line', { a: ['b'], b: ['c'], c: [] }, []],
    ['a diamond', { a: ['b', 'c'], b: ['d'], c: ['d'], d: [] }, []],
    ['two files importing each other', { a: ['b'], b: ['a'] }, [['a', 'b']]],
    ['a loop through three files', { a: ['b'], b: ['c'], c: ['a'], d: ['a'] }, [['a', 'b', 'c']]],
    ['a file importing itself', { a: ['a'], b: [] }, [['a']]],
    [
      'two separate loops',
      { a: ['b'], b: ['a'], c: ['d'], d: ['c'] },
      [
        ['a', 'b'],
        ['c', 'd'],
      ],
    ],
  ])('cycles are found in %s', (_name, edges, cycles) => {
    expect(importCycles(new Map(Object.entries(edges)))).toEqual(cycles);
  });

  it('of src/ form no cycle: no file imports a file that imports it', () => {
    expect(importCycles(graph)).toEqual([]);
  });
});
