// `npm run docs`: rewrites the generated tables of docs/ (settings, exit statuses) from the code
// (scripts/docs.ts). `npm run docs -- --check` only reports pages that are out of date (exit 1).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GENERATED, regenerate } from './docs.ts';

const root = new URL('..', import.meta.url).pathname;
const check = process.argv.includes('--check');
let stale = 0;
for (const page of Object.keys(GENERATED)) {
  const file = join(root, page);
  const text = readFileSync(file, 'utf8');
  const next = regenerate(page, text);
  if (next === text) continue;
  stale += 1;
  if (check) {
    process.stderr.write(`${page} is out of date: run npm run docs\n`);
  } else {
    writeFileSync(file, next);
    process.stderr.write(`${page} updated\n`);
  }
}
if (check && stale > 0) process.exit(1);
