// Fails when a test file focuses or skips tests in a way biome's noFocusedTests/noSkippedTests do not see:
// it.skipIf / it.runIf / it.todo / describe.skipIf …, x-prefixed aliases, and a test skipping itself
// (ctx.skip(), context.skip()). CI also fails when a run reports a skipped test (see .ci/run).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const PATTERN =
  /\b(?:it|test|describe|suite|bench)(?:\.\w+)*\.(?:only|skip|skipIf|runIf|todo)\b|\bx(?:it|test|describe)\s*\(|\b(?:ctx|context|task)\.skip\s*\(/;

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return files(path);
    return /\.(?:ts|mts|js|mjs)$/.test(entry.name) ? [path] : [];
  });
}

const found = [];
for (const file of files('test')) {
  for (const [i, line] of readFileSync(file, 'utf8').split('\n').entries()) {
    if (PATTERN.test(line)) found.push(`${file}:${i + 1}: ${line.trim()}`);
  }
}
if (found.length > 0) {
  console.error(`focused or skipped tests (every test must run):\n${found.join('\n')}`);
  process.exit(1);
}
