// The demo's "app": prints which variables it received, with values masked, and what it did not get.
const interesting = Object.keys(process.env)
  .filter((k) => /SECRET|PASSWORD|KEY|URL|_FILE$|^DB_|^REDIS/.test(k))
  .sort();
const mask = (v) => `${'•'.repeat(Math.min(v.length, 12))} (${v.length} chars)`;
console.log(`demo app (pid ${process.pid}) received:`);
for (const k of interesting) {
  const v = process.env[k] ?? '';
  const shown = k.endsWith('_FILE')
    ? v
    : k === 'CELERY_BROKER_URL'
      ? v.replace(/:[^@/]+@/, ':••••@')
      : mask(v);
  console.log(`  ${k.padEnd(26)} ${shown}`);
}
const leaked = Object.keys(process.env).filter((k) => k.startsWith('VAULT') || k.startsWith('BAO_'));
console.log(
  `Vault credentials/settings in the app's environment: ${leaked.length ? leaked.join(', ') : 'none'}`,
);
