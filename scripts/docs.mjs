// `npm run docs`: rewrites the generated tables of docs/ (settings, exit statuses) from the code
// (scripts/docs.ts). `npm run docs -- --check` only reports pages that are out of date (exit 1).
// scripts/docs.ts is bundled with esbuild first, so that it can import src/ whatever src/ itself imports.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const bundle = await build({
  entryPoints: [join(root, 'scripts/docs.ts')],
  bundle: true,
  format: 'esm',
  platform: 'node',
  write: false,
  logLevel: 'warning',
});
const code = bundle.outputFiles[0]?.text ?? '';
const { GENERATED, regenerate } = await import(
  `data:text/javascript;base64,${Buffer.from(code).toString('base64')}`
);

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
